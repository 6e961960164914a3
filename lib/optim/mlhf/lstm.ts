/**
 * The coordinatewise meta-network of MLHF (docs/algorithm.md#lstm-meta-networks): two stacked LSTM cells with 4 units
 * (TF 1.7's LSTMBlockCell: gates [i, ĉ, f, o] = [x, h]·W + b, c = σ(i)·tanh(ĉ) + c·σ(f + 1),
 * h = tanh(c)·σ(o); no peepholes, no clip) and a 4 → 1 dense head. Every scalar parameter is one
 * batch row, so an input of shape [N, 3] runs N independent sequences sharing the weights.
 * `tf.basicLSTMCell` is exactly this cell with forget bias 1. `lstmCell` and `lstmNetStep` run the
 * project's fused kernels `MlhfLstmCell` and `MlhfLstmNet` where the active backend registers them
 * (the native backend's single-pass kernels, `lstm_kernel.ts`) and the inputs fit, and the op
 * compositions (`lstmCellComposed`, `lstmNetStepComposed`) otherwise.
 * @module
 */
import { tf } from "../../_deps.ts";
import { backendHasKernel, LSTM_CELL_KERNEL, LSTM_NET_KERNEL } from "../../kernels.ts";
import { type Key, split, uniform } from "../../prng.ts";
import {
  lstmCellKernel,
  lstmCellKernelFits,
  lstmNetKernelFits,
  lstmNetStepKernel,
} from "./lstm_kernel.ts";

/** Units per LSTM layer (`rnn_layers=(4,4)`). */
export const LSTM_UNITS = 4;
/** Input features per coordinate (three tanh-squashed values, docs/algorithm.md#features). */
export const LSTM_INPUTS = 3;

/** Weights of one meta-network: 277 scalars (128 + 144 + 5). */
export interface LstmNetWeights {
  readonly layers: readonly { readonly kernel: tf.Tensor2D; readonly bias: tf.Tensor1D }[];
  readonly head: { readonly kernel: tf.Tensor2D; readonly bias: tf.Tensor1D };
}

/** Per-coordinate recurrent state: c and h of each layer, each [N, 4]. */
export interface LstmState {
  readonly c: readonly tf.Tensor2D[];
  readonly h: readonly tf.Tensor2D[];
}

/** Glorot-uniform [fanIn, fanOut] matrix (TF's default kernel initializer). */
const glorotUniform = (key: Key, fanIn: number, fanOut: number): tf.Tensor2D => {
  const limit = Math.sqrt(6 / (fanIn + fanOut));
  return tf.tensor2d(uniform(key, fanIn * fanOut, -limit, limit), [fanIn, fanOut]);
};

/**
 * Initial weights: glorot-uniform kernels, zero biases (TF 1.x defaults,
 * docs/algorithm.md#meta-network-initialization).
 */
export const initLstmNet = (key: Key, inputs = LSTM_INPUTS): LstmNetWeights => {
  const [k1, k2, k3] = split(key, 3);
  return {
    layers: [
      {
        kernel: glorotUniform(k1, inputs + LSTM_UNITS, 4 * LSTM_UNITS),
        bias: tf.zeros([4 * LSTM_UNITS]),
      },
      {
        kernel: glorotUniform(k2, 2 * LSTM_UNITS, 4 * LSTM_UNITS),
        bias: tf.zeros([4 * LSTM_UNITS]),
      },
    ],
    head: { kernel: glorotUniform(k3, LSTM_UNITS, 1), bias: tf.zeros([1]) },
  };
};

/** The zero state for n coordinates. */
export const zeroLstmState = (n: number, layers = 2): LstmState => ({
  c: Array.from({ length: layers }, () => tf.zeros([n, LSTM_UNITS]) as tf.Tensor2D),
  h: Array.from({ length: layers }, () => tf.zeros([n, LSTM_UNITS]) as tf.Tensor2D),
});

/**
 * TF 1.7's LSTMBlockCell with forget bias 1 (the math of `tf.basicLSTMCell`) as an op composition:
 * gates [i, ĉ, f, o] = [x, h]·W + b; c′ = σ(i)·tanh(ĉ) + c·σ(f + 1); h′ = tanh(c′)·σ(o). The small
 * kernel is split per gate instead of the [N, 16] product (splitting a wide tensor along axis 1 is
 * slow on the cpu backend: ~35× the whole cell's matMul at N = 16 000).
 */
export const lstmCellComposed = (
  kernel: tf.Tensor2D,
  bias: tf.Tensor1D,
  x: tf.Tensor2D,
  c: tf.Tensor2D,
  h: tf.Tensor2D,
): [tf.Tensor2D, tf.Tensor2D] => {
  const xh = tf.concat([x, h], 1);
  const ws = tf.split(kernel, 4, 1);
  const bs = tf.split(bias, 4, 0);
  const gate = (k: number) => tf.add(tf.matMul(xh, ws[k]), bs[k]);
  const i = tf.sigmoid(gate(0)), j = tf.tanh(gate(1));
  const f = tf.sigmoid(tf.add(gate(2), 1)), o = tf.sigmoid(gate(3));
  const cNext = tf.add(tf.mul(i, j), tf.mul(c, f)) as tf.Tensor2D;
  return [cNext, tf.mul(tf.tanh(cNext), o) as tf.Tensor2D];
};

/**
 * The LSTM cell (`lstmCellComposed`'s function): the backend's `MlhfLstmCell` kernel when it
 * registers one and the inputs fit it, else the composition.
 */
export const lstmCell = (
  kernel: tf.Tensor2D,
  bias: tf.Tensor1D,
  x: tf.Tensor2D,
  c: tf.Tensor2D,
  h: tf.Tensor2D,
): [tf.Tensor2D, tf.Tensor2D] =>
  backendHasKernel(LSTM_CELL_KERNEL) && lstmCellKernelFits(kernel, bias, x, c, h)
    ? lstmCellKernel(kernel, bias, x, c, h)
    : lstmCellComposed(kernel, bias, x, c, h);

/** `lstmNetStep` as an op composition (cells by `lstmCellComposed`). */
export const lstmNetStepComposed = (
  w: LstmNetWeights,
  state: LstmState,
  input: tf.Tensor2D,
): { readonly out: tf.Tensor1D; readonly state: LstmState } => {
  let x: tf.Tensor2D = input;
  const c: tf.Tensor2D[] = [], h: tf.Tensor2D[] = [];
  w.layers.forEach((layer, l) => {
    const [cl, hl] = lstmCellComposed(layer.kernel, layer.bias, x, state.c[l], state.h[l]);
    c.push(cl);
    h.push(hl);
    x = hl;
  });
  const out = tf.reshape(tf.add(tf.matMul(x, w.head.kernel), w.head.bias), [-1]) as tf.Tensor1D;
  return { out, state: { c, h } };
};

/**
 * One step of the network on inputs [N, 3]: returns the head's linear output [N] (before the
 * softplus of the λ and P roles) and the next state. Differentiable in the weights and the state.
 * Runs the backend's `MlhfLstmNet` kernel when it registers one and the inputs fit it (the native
 * backend's single-pass kernel), else the composition.
 */
export const lstmNetStep = (
  w: LstmNetWeights,
  state: LstmState,
  input: tf.Tensor2D,
): { readonly out: tf.Tensor1D; readonly state: LstmState } =>
  backendHasKernel(LSTM_NET_KERNEL) && lstmNetKernelFits(w, state, input)
    ? lstmNetStepKernel(w, state, input)
    : lstmNetStepComposed(w, state, input);

/** The scalars of a network's weights, in a fixed order (for norms, L2 terms and files). */
export const lstmNetTensors = (w: LstmNetWeights): tf.Tensor[] => [
  ...w.layers.flatMap((l) => [l.kernel, l.bias]),
  w.head.kernel,
  w.head.bias,
];
