/**
 * The window ops' project kernels (`lib/kernels.ts`) as differentiable functions. Each runs its
 * kernel on the active backend, so a caller uses one only where `backendHasKernel(name)` holds
 * (`windows.ts`, `conv.ts` say so at each call); elsewhere the op compositions compute the same
 * function. Each result has its exact derivative in differentiable ops, so second-order autodiff
 * through them stays correct:
 * - dW(x, dy) of conv2d is bilinear: ∂/∂x = conv2dTranspose(dy, G), ∂/∂dy = conv2d(x, G)
 *   (`tf.customGrad`).
 * - dx(dy, x) of max-pool is linear in dy and piecewise constant in x: ∂/∂dy picks G at each
 *   window's first maximum (a gather at the arg-max indices), ∂/∂x = 0 (`tf.customGrad`).
 * - The gather and the scatter-add are linear and each other's adjoint, the arg-max has a zero
 *   gradient: gradients the backend registers with those kernels (TF.js's `registerGradient`).
 * @module
 */
import { tf } from "../lib/_deps.ts";
import {
  CONV2D_FILTER_GRAD_KERNEL,
  GATHER_FLAT_KERNEL,
  MAX_POOL_ARG_MAX_KERNEL,
  MAX_POOL_GRAD_KERNEL,
  MAX_POOL_WITH_ARG_MAX_KERNEL,
  SCATTER_ADD_FLAT_KERNEL,
} from "../lib/kernels.ts";
import type { Padding } from "./windows.ts";

/**
 * For each output element of a NHWC max-pool, the flat index into x of the element its cotangent
 * goes to (int32, the output's shape), by `MlhfMaxPoolArgMax`: the first maximum of the window in
 * row-major window order (docs/algorithm.md#max-pool-ties), exactly where `MlhfMaxPoolGrad` sends it.
 */
export const maxPoolArgMax = (
  x: tf.Tensor4D,
  filterSize: readonly [number, number],
  strides: readonly [number, number],
  padding: Padding,
): tf.Tensor4D =>
  tf.engine().runKernel(MAX_POOL_ARG_MAX_KERNEL, { x }, {
    filterSize: [filterSize[0], filterSize[1]],
    strides: [strides[0], strides[1]],
    pad: padding,
    dimRoundingMode: undefined,
  } as unknown as tf.NamedAttrMap) as tf.Tensor4D;

/**
 * Max-pool's values and {@link maxPoolArgMax}'s indices in one pass over x, by
 * `MlhfMaxPoolWithArgMax` (float32 x): [y, indices]. Differentiable in x through y (its registered
 * gradient scatters y's cotangent to the indices).
 */
export const maxPoolWithArgMax = (
  x: tf.Tensor4D,
  filterSize: readonly [number, number],
  strides: readonly [number, number],
  padding: Padding,
): [tf.Tensor4D, tf.Tensor4D] =>
  tf.engine().runKernel(MAX_POOL_WITH_ARG_MAX_KERNEL, { x }, {
    filterSize: [filterSize[0], filterSize[1]],
    strides: [strides[0], strides[1]],
    pad: padding,
    dimRoundingMode: undefined,
  } as unknown as tf.NamedAttrMap) as unknown as [tf.Tensor4D, tf.Tensor4D];

/**
 * out[o] = x.flat[indices[o]], shaped like `indices` (max-pool's J·v at its arg-max indices), by
 * `MlhfGatherFlat`. Differentiable: ∂/∂x is {@link scatterAddFlat}.
 */
export const gatherFlat = (x: tf.Tensor, indices: tf.Tensor): tf.Tensor =>
  tf.engine().runKernel(GATHER_FLAT_KERNEL, { x, indices }, {}) as tf.Tensor;

/**
 * The adjoint of {@link gatherFlat}: zeros of `shape`, then out.flat[indices[o]] += updates[o]
 * (max-pool's Jᵀ·u at its arg-max indices), by `MlhfScatterAddFlat`.
 */
export const scatterAddFlat = (
  updates: tf.Tensor,
  indices: tf.Tensor,
  shape: readonly number[],
): tf.Tensor =>
  tf.engine().runKernel(SCATTER_ADD_FLAT_KERNEL, { updates, indices }, {
    shape: [...shape],
  } as unknown as tf.NamedAttrMap) as tf.Tensor;

/** The filter gradient of a NHWC conv2d (no dilation) by `MlhfConv2DBackpropFilter`. */
export const conv2dFilterGradKernel = (
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  filterShape: readonly [number, number, number, number],
  strides: readonly [number, number],
  padding: Padding,
): tf.Tensor4D => {
  const s: [number, number] = [strides[0], strides[1]];
  const f = tf.customGrad((xi, dyi, save) => {
    const x4 = xi as tf.Tensor4D, dy4 = dyi as tf.Tensor4D;
    (save as tf.GradSaveFunc)([x4, dy4]);
    const value = tf.engine().runKernel(CONV2D_FILTER_GRAD_KERNEL, { x: x4, dy: dy4 }, {
      strides: s,
      pad: padding,
      dataFormat: "NHWC",
      dimRoundingMode: undefined,
      filterShape: [...filterShape],
    } as unknown as tf.NamedAttrMap) as tf.Tensor4D;
    return {
      value,
      gradFunc: (g: tf.Tensor4D, saved: tf.Tensor[]) => {
        const [xs, dys] = saved as [tf.Tensor4D, tf.Tensor4D];
        return [tf.conv2dTranspose(dys, g, xs.shape, s, padding), tf.conv2d(xs, g, s, padding)];
      },
    };
  });
  return f(x, dy) as tf.Tensor4D;
};

/**
 * The input gradient of a NHWC max-pool (cotangent to the first maximum of each window, row-major)
 * by `MlhfMaxPoolGrad`.
 */
export const maxPoolGradKernel = (
  dy: tf.Tensor4D,
  x: tf.Tensor4D,
  filterSize: readonly [number, number],
  strides: readonly [number, number],
  padding: Padding,
): tf.Tensor4D => {
  const fs: [number, number] = [filterSize[0], filterSize[1]];
  const s: [number, number] = [strides[0], strides[1]];
  const f = tf.customGrad((dyi, xi, save) => {
    const dy4 = dyi as tf.Tensor4D, x4 = xi as tf.Tensor4D;
    (save as tf.GradSaveFunc)([x4]);
    // The kernel's `output` input is only read by fallbacks (for its dtype).
    const value = tf.engine().runKernel(MAX_POOL_GRAD_KERNEL, { dy: dy4, input: x4, output: x4 }, {
      filterSize: fs,
      strides: s,
      pad: padding,
      dimRoundingMode: undefined,
    } as unknown as tf.NamedAttrMap) as tf.Tensor4D;
    return {
      value,
      gradFunc: (g: tf.Tensor4D, saved: tf.Tensor[]) => {
        const [xs] = saved as [tf.Tensor4D];
        const ddy = tf.tidy(() => gatherFlat(g, maxPoolArgMax(xs, fs, s, padding)));
        return [ddy as tf.Tensor4D, tf.zerosLike(xs)];
      },
    };
  });
  return f(dy, x) as tf.Tensor4D;
};
