/**
 * The layers the models share, each as an (init, apply) pair: dense and 2-D convolution (with an
 * optional bias), plus TF's `conv2d_fixed_padding`. Apply halves use only `nn` methods on
 * parameter-dependent values.
 * @module
 */
import type { tf } from "../lib/_deps.ts";
import type { Nn } from "../ops/nn.ts";
import type { Init, ParamFn, Tagged } from "./init.ts";

/** A dense layer's parameters: kernel [in, out] and bias [out]. */
export type DenseParams = { readonly kernel: tf.Tensor; readonly bias: tf.Tensor };

/** A biased conv layer's parameters: kernel [kh, kw, cin, cout] and bias [cout]. */
export type ConvParams = { readonly kernel: tf.Tensor; readonly bias: tf.Tensor };

/** Tagged dense parameters. */
export const denseParams = (
  param: ParamFn,
  inDim: number,
  outDim: number,
  kernelInit: Init,
  biasInit: Init,
): { kernel: Tagged; bias: Tagged } => ({
  kernel: param("dense/kernel", [inDim, outDim], kernelInit),
  bias: param("dense/bias", [outDim], biasInit),
});

/** Tagged conv parameters (square kernel). */
export const convParams = (
  param: ParamFn,
  size: number,
  inChannels: number,
  outChannels: number,
  kernelInit: Init,
  biasInit: Init,
): { kernel: Tagged; bias: Tagged } => ({
  kernel: param("conv2d/kernel", [size, size, inChannels, outChannels], kernelInit),
  bias: param("conv2d/bias", [outChannels], biasInit),
});

/** x·W + b. */
export const dense = (nn: Nn, p: DenseParams, x: tf.Tensor): tf.Tensor =>
  nn.dense(x, p.kernel, p.bias);

/** conv(x, W) + b with stride 1 and SAME padding. */
export const convSame = (nn: Nn, p: ConvParams, x: tf.Tensor): tf.Tensor =>
  nn.biasAdd(nn.conv2d(x, p.kernel, { strides: 1, padding: "same" }), p.bias);

/**
 * TF's `fixed_padding`: pads H and W by pad_total = k − 1, pad_beg = ⌊pad_total/2⌋ and
 * pad_end = pad_total − pad_beg, independently of the input size. No-op for k = 1.
 */
export const fixedPadding = (nn: Nn, x: tf.Tensor, kernelSize: number): tf.Tensor => {
  const total = kernelSize - 1;
  if (total === 0) return x;
  const beg = Math.floor(total / 2);
  const edge = [beg, total - beg] as const;
  return nn.pad(x, [[0, 0], edge, edge, [0, 0]]);
};

/**
 * `conv2d_fixed_padding` of `resnet_model.py` (no bias): SAME for stride 1; for stride > 1,
 * explicit fixed padding then VALID. The kernel is [k, k, cin, cout].
 */
export const conv2dFixedPadding = (
  nn: Nn,
  x: tf.Tensor,
  kernel: tf.Tensor,
  stride: number,
): tf.Tensor => {
  if (stride === 1) return nn.conv2d(x, kernel, { strides: 1, padding: "same" });
  const k = kernel.shape[0];
  return nn.conv2d(fixedPadding(nn, x, k), kernel, { strides: stride, padding: "valid" });
};
