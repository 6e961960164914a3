/**
 * Fast paths the project's gradient overrides (`lib/backend/gradient_fixes.ts`) and the DSL's
 * rules can take when the active backend is `native`: the conv filter gradient and the max-pool
 * gradient as single kernels (`Conv2DBackpropFilter`, `MaxPoolGrad`) instead of op compositions
 * (im2col by pad/slice/concat + matMul; first-arg-max masks), and max-pool's linearization as
 * arg-max indices with a gather (J·v) and a scatter-add (Jᵀ·u) over them (`MlhfMaxPoolArgMax`,
 * `MlhfGatherFlat`, `MlhfScatterAddFlat`) instead of kh·kw masks, patches and sums per product.
 *
 * Each hook returns null on any other backend, so a caller writes `hook(...) ?? composition(...)`.
 * Each result has its exact derivative in differentiable ops, so second-order autodiff through the
 * hooks stays correct:
 * - dW(x, dy) is bilinear: ∂/∂x = conv2dTranspose(dy, G), ∂/∂dy = conv2d(x, G) (`tf.customGrad`).
 * - dx(dy, x) of max-pool is linear in dy and piecewise constant in x: ∂/∂dy picks G at each
 *   window's first maximum (a gather at the arg-max indices), ∂/∂x = 0 (`tf.customGrad`).
 * - The gather and the scatter-add are linear and each other's adjoint, the arg-max has a zero
 *   gradient (gradients registered with the kernels, `kernels/pool.ts`).
 * Importing this module loads no BLAS.
 * @module
 */
import { tf } from "../../_deps.ts";
import type { Padding } from "../../../ops/_windows.ts";
import { NATIVE_BACKEND } from "./backend.ts";
import { gatherFlat, scatterAddFlat } from "./kernels/pool.ts";

/** True when the active TF.js backend is the native one (the hooks then apply). */
export const onNativeBackend = (): boolean => tf.getBackend() === NATIVE_BACKEND;

/** Runs `MlhfMaxPoolArgMax` (the active backend must be native). */
const argMax = (
  x: tf.Tensor4D,
  filterSize: readonly [number, number],
  strides: readonly [number, number],
  padding: Padding,
): tf.Tensor4D =>
  tf.engine().runKernel("MlhfMaxPoolArgMax", { x }, {
    filterSize: [filterSize[0], filterSize[1]],
    strides: [strides[0], strides[1]],
    pad: padding,
    dimRoundingMode: undefined,
  } as unknown as tf.NamedAttrMap) as tf.Tensor4D;

/**
 * The filter gradient of a NHWC conv2d (no dilation) by the native `Conv2DBackpropFilter` kernel,
 * or null when the active backend is not `native`.
 */
export const nativeConv2dFilterGrad = (
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  filterShape: readonly [number, number, number, number],
  strides: readonly [number, number],
  padding: Padding,
): tf.Tensor4D | null => {
  if (!onNativeBackend()) return null;
  const s: [number, number] = [strides[0], strides[1]];
  const f = tf.customGrad((xi, dyi, save) => {
    const x4 = xi as tf.Tensor4D, dy4 = dyi as tf.Tensor4D;
    (save as tf.GradSaveFunc)([x4, dy4]);
    const value = tf.engine().runKernel("Conv2DBackpropFilter", { x: x4, dy: dy4 }, {
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
 * by the native `MaxPoolGrad` kernel, or null when the active backend is not `native`.
 */
export const nativeMaxPoolGrad = (
  dy: tf.Tensor4D,
  x: tf.Tensor4D,
  filterSize: readonly [number, number],
  strides: readonly [number, number],
  padding: Padding,
): tf.Tensor4D | null => {
  if (!onNativeBackend()) return null;
  const fs: [number, number] = [filterSize[0], filterSize[1]];
  const s: [number, number] = [strides[0], strides[1]];
  const f = tf.customGrad((dyi, xi, save) => {
    const dy4 = dyi as tf.Tensor4D, x4 = xi as tf.Tensor4D;
    (save as tf.GradSaveFunc)([x4]);
    // The kernel's `output` input is only read by the cpu fallback (for its dtype).
    const value = tf.engine().runKernel("MaxPoolGrad", { dy: dy4, input: x4, output: x4 }, {
      filterSize: fs,
      strides: s,
      pad: padding,
      dimRoundingMode: undefined,
    } as unknown as tf.NamedAttrMap) as tf.Tensor4D;
    return {
      value,
      gradFunc: (g: tf.Tensor4D, saved: tf.Tensor[]) => {
        const [xs] = saved as [tf.Tensor4D];
        const ddy = tf.tidy(() => gatherFlat(g, argMax(xs, fs, s, padding)));
        return [ddy as tf.Tensor4D, tf.zerosLike(xs)];
      },
    };
  });
  return f(dy, x) as tf.Tensor4D;
};

/**
 * For each output element of a NHWC max-pool, the flat index into x of the element its cotangent
 * goes to (int32, the output's shape): the first maximum of the window in row-major window order
 * (docs/algorithm.md#max-pool-ties), exactly where `MaxPoolGrad` sends it (NaN never wins; a window
 * with no value above −∞ gives its first in-bounds element). Null when the active backend is not
 * `native`.
 */
export const nativeMaxPoolArgMax = (
  x: tf.Tensor4D,
  filterSize: readonly [number, number],
  strides: readonly [number, number],
  padding: Padding,
): tf.Tensor4D | null => onNativeBackend() ? argMax(x, filterSize, strides, padding) : null;

/**
 * out[o] = x.flat[indices[o]], shaped like `indices` (max-pool's J·v at its arg-max indices), or
 * null when the active backend is not `native`. Differentiable: ∂/∂x is {@link nativeScatterAdd}.
 */
export const nativeGather = (x: tf.Tensor, indices: tf.Tensor): tf.Tensor | null =>
  onNativeBackend() ? gatherFlat(x, indices) : null;

/**
 * The adjoint of {@link nativeGather}: zeros of `shape`, then out.flat[indices[o]] += u[o] (max-pool's
 * Jᵀ·u at its arg-max indices), or null when the active backend is not `native`.
 */
export const nativeScatterAdd = (
  u: tf.Tensor,
  indices: tf.Tensor,
  shape: readonly number[],
): tf.Tensor | null => onNativeBackend() ? scatterAddFlat(u, indices, shape) : null;
