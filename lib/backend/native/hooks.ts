/**
 * Fast paths the project's gradient overrides (`lib/backend/gradient_fixes.ts`) and the DSL's
 * transpose rules can take when the active backend is `native`: the conv filter gradient and the
 * max-pool gradient as single kernels (`Conv2DBackpropFilter`, `MaxPoolGrad`) instead of op
 * compositions (im2col by pad/slice/concat + matMul; first-arg-max masks).
 *
 * Each hook returns null on any other backend, so a caller writes `hook(...) ?? composition(...)`.
 * Each result is wrapped in `tf.customGrad` with its exact derivative written in differentiable ops,
 * so second-order autodiff through the hooks stays correct:
 * - dW(x, dy) is bilinear: ∂/∂x = conv2dTranspose(dy, G), ∂/∂dy = conv2d(x, G).
 * - dx(dy, x) of max-pool is linear in dy and piecewise constant in x: ∂/∂dy picks G at each
 *   window's first maximum, ∂/∂x = 0.
 * Importing this module loads no BLAS.
 * @module
 */
import { tf } from "../../_deps.ts";
import {
  extractPatches,
  firstArgMaxMasks,
  type Padding,
  windowGeometry,
} from "../../../ops/_windows.ts";
import { NATIVE_BACKEND } from "./backend.ts";

/** True when the active TF.js backend is the native one (the hooks then apply). */
export const onNativeBackend = (): boolean => tf.getBackend() === NATIVE_BACKEND;

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
        const ddy = tf.tidy(() => {
          const geo = windowGeometry(xs.shape[1], xs.shape[2], fs, s, padding);
          const masks = firstArgMaxMasks(xs, geo);
          const picked = extractPatches(g, geo).map((p, k) => tf.mul(p, masks[k]));
          return picked.length === 1 ? picked[0] : tf.addN(picked);
        });
        return [ddy, tf.zerosLike(xs)];
      },
    };
  });
  return f(dy, x) as tf.Tensor4D;
};
