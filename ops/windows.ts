/**
 * Window geometry and patch extraction for conv and pooling, written only with ops whose
 * first-order gradients TF.js has on every backend (pad, slice, reshape, concat, matMul).
 *
 * Why this exists: stock wasm has no Conv2DBackpropFilter kernel, stock cpu's takes ~50 s on a
 * CIFAR-size layer, and wasm's MaxPoolGrad is wrong for all-negative windows (docs/tfjs-notes.md#conv2d-filter-gradient, docs/tfjs-notes.md#wasm-maxpoolgrad).
 * The filter gradient is therefore an im2col + matMul, and max-pool routes tangents and cotangents
 * through an explicit first-arg-max mask (docs/algorithm.md#max-pool-ties: first maximum in row-major window order).
 * Where the active backend registers the project's window kernels (`lib/kernels.ts`; the native
 * backend does), the two gradients run as those kernels instead (`window_kernels.ts`).
 *
 * Public within the project: the conv and pooling rules (`conv.ts`), the gradient fixes
 * (`lib/backend/gradient_fixes.ts`) and K-FAC's conv factors (`lib/optim/kfac/layers.ts`) use it.
 * @module
 */
import { tf } from "../lib/_deps.ts";
import {
  backendHasKernel,
  CONV2D_FILTER_GRAD_KERNEL,
  MAX_POOL_GRAD_KERNEL,
} from "../lib/kernels.ts";
import { matMulT } from "./_matmul.ts";
import { conv2dFilterGradKernel, maxPoolGradKernel } from "./window_kernels.ts";

/** Padding mode of a window op (TF semantics). */
export type Padding = "same" | "valid";

/** Output size and leading pad of one spatial axis, with TF's SAME/VALID rules. */
export interface AxisGeometry {
  readonly out: number;
  readonly padBefore: number;
  readonly padAfter: number;
}

/** TF's rule: SAME gives ceil(n/s) outputs with the extra pad after; VALID gives floor((n-k)/s)+1. */
export const axisGeometry = (n: number, k: number, s: number, padding: Padding): AxisGeometry => {
  if (padding === "valid") {
    if (n < k) {
      throw new RangeError(`window ${k} is larger than the input size ${n} (VALID padding)`);
    }
    return { out: Math.floor((n - k) / s) + 1, padBefore: 0, padAfter: 0 };
  }
  const out = Math.ceil(n / s);
  const total = Math.max((out - 1) * s + k - n, 0);
  const padBefore = Math.floor(total / 2);
  return { out, padBefore, padAfter: total - padBefore };
};

/** The full geometry of a 2-D window op on an NHWC input. */
export interface WindowGeometry {
  readonly kh: number;
  readonly kw: number;
  readonly sh: number;
  readonly sw: number;
  readonly h: AxisGeometry;
  readonly w: AxisGeometry;
  readonly inH: number;
  readonly inW: number;
}

export const windowGeometry = (
  inH: number,
  inW: number,
  [kh, kw]: readonly [number, number],
  [sh, sw]: readonly [number, number],
  padding: Padding,
): WindowGeometry => ({
  kh,
  kw,
  sh,
  sw,
  inH,
  inW,
  h: axisGeometry(inH, kh, sh, padding),
  w: axisGeometry(inW, kw, sw, padding),
});

/** Extra rows/cols after the input so that every strided slab of length s·out fits. */
const slabPad = (a: AxisGeometry, k: number, s: number, n: number): number =>
  Math.max(0, (k - 1) + s * a.out - (a.padBefore + n + a.padAfter));

/**
 * The kh·kw shifted, strided views of x (NHWC), in row-major window order: patch (i, j) holds
 * x_padded[n, i + sh·p, j + sw·q, c]. Padding uses `padValue` (0 for conv, −∞ for max-pool).
 */
export const extractPatches = (
  x: tf.Tensor4D,
  g: WindowGeometry,
  padValue = 0,
): tf.Tensor4D[] => {
  const [n, , , c] = x.shape;
  const extraH = slabPad(g.h, g.kh, g.sh, g.inH);
  const extraW = slabPad(g.w, g.kw, g.sw, g.inW);
  const xp = tf.pad(x, [[0, 0], [g.h.padBefore, g.h.padAfter + extraH], [
    g.w.padBefore,
    g.w.padAfter + extraW,
  ], [0, 0]], padValue);
  const out: tf.Tensor4D[] = [];
  for (let i = 0; i < g.kh; i++) {
    for (let j = 0; j < g.kw; j++) {
      const slab = tf.slice(xp, [0, i, j, 0], [n, g.sh * g.h.out, g.sw * g.w.out, c]);
      if (g.sh === 1 && g.sw === 1) {
        out.push(slab as tf.Tensor4D);
        continue;
      }
      const r = tf.reshape(slab, [n * g.h.out, g.sh, g.w.out, g.sw * c]);
      const picked = tf.slice(r, [0, 0, 0, 0], [n * g.h.out, 1, g.w.out, c]);
      out.push(tf.reshape(picked, [n, g.h.out, g.w.out, c]));
    }
  }
  return out;
};

/**
 * The transpose of `extractPatches` (col2im): scatters kh·kw tensors of the output shape back onto
 * the input grid, summing where windows overlap. ⟨extractPatches(x), P⟩ = ⟨x, scatterPatches(P)⟩.
 */
export const scatterPatches = (
  patches: readonly tf.Tensor4D[],
  g: WindowGeometry,
): tf.Tensor4D => {
  const [n, , , c] = patches[0].shape;
  const extraH = slabPad(g.h, g.kh, g.sh, g.inH);
  const extraW = slabPad(g.w, g.kw, g.sw, g.inW);
  const hp = g.h.padBefore + g.inH + g.h.padAfter + extraH;
  const wp = g.w.padBefore + g.inW + g.w.padAfter + extraW;
  const placed: tf.Tensor4D[] = [];
  let k = 0;
  for (let i = 0; i < g.kh; i++) {
    for (let j = 0; j < g.kw; j++) {
      let slab: tf.Tensor4D = patches[k++];
      if (g.sh !== 1 || g.sw !== 1) {
        const r = tf.reshape(slab, [n * g.h.out, 1, g.w.out, c]);
        const spread = tf.pad(r, [[0, 0], [0, g.sh - 1], [0, 0], [0, (g.sw - 1) * c]]);
        slab = tf.reshape(spread, [n, g.sh * g.h.out, g.sw * g.w.out, c]);
      }
      placed.push(
        tf.pad(slab, [[0, 0], [i, hp - i - g.sh * g.h.out], [j, wp - j - g.sw * g.w.out], [0, 0]]),
      );
    }
  }
  const sum = placed.length === 1 ? placed[0] : tf.addN(placed);
  return tf.slice(sum, [0, g.h.padBefore, g.w.padBefore, 0], [n, g.inH, g.inW, c]);
};

/**
 * One-hot masks of the first maximum of each window, in window order
 * (docs/algorithm.md#max-pool-ties).
 */
export const firstArgMaxMasks = (x: tf.Tensor4D, g: WindowGeometry): tf.Tensor4D[] =>
  tf.tidy(() => {
    const patches = extractPatches(x, g, -Infinity);
    const idx = tf.argMax(tf.stack(patches), 0);
    return patches.map((_, k) => tf.cast(tf.equal(idx, k), "float32") as tf.Tensor4D);
  });

/**
 * Input gradient of a NHWC max-pool: each cotangent goes to the first maximum of its window in
 * row-major window order (docs/algorithm.md#max-pool-ties), also in all-negative windows. The backend's
 * `MlhfMaxPoolGrad` kernel when it registers one (`window_kernels.ts`), else the first-arg-max
 * masks (`masks` when the caller has them, else computed here) times dy, scattered back.
 */
export const maxPoolInputGrad = (
  dy: tf.Tensor4D,
  x: tf.Tensor4D,
  filterSize: readonly [number, number],
  strides: readonly [number, number],
  padding: Padding,
  masks?: readonly tf.Tensor4D[],
): tf.Tensor4D => {
  if (backendHasKernel(MAX_POOL_GRAD_KERNEL)) {
    return maxPoolGradKernel(dy, x, filterSize, strides, padding);
  }
  const g = windowGeometry(x.shape[1], x.shape[2], filterSize, strides, padding);
  return tf.tidy(() =>
    scatterPatches((masks ?? firstArgMaxMasks(x, g)).map((m) => tf.mul(m, dy) as tf.Tensor4D), g)
  );
};

/**
 * Filter gradient of a NHWC conv2d: the backend's `MlhfConv2DBackpropFilter` kernel when it
 * registers one (`window_kernels.ts`), else by im2col + matMul:
 * dW[i,j,ci,co] = Σ x_patch(i,j)[·,ci]·dy[·,co]. Linear in both x and dy, and differentiable by
 * TF.js first-order autodiff on every backend.
 */
export const conv2dFilterGrad = (
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  filterShape: readonly [number, number, number, number],
  strides: readonly [number, number],
  padding: Padding,
): tf.Tensor4D =>
  backendHasKernel(CONV2D_FILTER_GRAD_KERNEL)
    ? conv2dFilterGradKernel(x, dy, filterShape, strides, padding)
    : tf.tidy(() => {
      const [kh, kw, ci, co] = filterShape;
      const g = windowGeometry(x.shape[1], x.shape[2], [kh, kw], strides, padding);
      const patches = extractPatches(x, g);
      const m = x.shape[0] * g.h.out * g.w.out;
      const cols = tf.reshape(patches.length === 1 ? patches[0] : tf.concat(patches, 3), [
        m,
        kh * kw * ci,
      ]);
      const dW = matMulT(cols as tf.Tensor2D, tf.reshape(dy, [m, co]) as tf.Tensor2D, true, false);
      return tf.reshape(dW, [kh, kw, ci, co]);
    });

/**
 * Forward NHWC conv2d. With SAME padding and a stride larger than the kernel, TF's pad total
 * (out−1)·s + k − n can be negative; wasm's Conv2D does not clamp it and returns garbage (measured:
 * SAME, stride 3, 2×2 kernel on 3×3), so those cases run as an explicitly padded VALID conv.
 */
export const conv2dForward = (
  x: tf.Tensor4D,
  w: tf.Tensor4D,
  strides: readonly [number, number],
  padding: Padding,
): tf.Tensor4D => {
  const [kh, kw] = w.shape;
  if (padding === "valid" || (strides[0] <= kh && strides[1] <= kw)) {
    return tf.conv2d(x, w, [...strides], padding);
  }
  const g = windowGeometry(x.shape[1], x.shape[2], [kh, kw], strides, padding);
  const xp = tf.pad(x, [[0, 0], [g.h.padBefore, g.h.padAfter], [g.w.padBefore, g.w.padAfter], [
    0,
    0,
  ]]);
  return tf.conv2d(xp, w, [...strides], "valid");
};

/**
 * Input gradient of a NHWC conv2d: TF.js's Conv2DBackpropInput, except when a stride exceeds the
 * kernel size, where wasm's kernel is wrong (measured: SAME, stride 3, 2×2 kernel violates the
 * adjoint identity by orders of magnitude) and a col2im of dy·Wᵀ is used instead.
 */
export const conv2dInputGrad = (
  dy: tf.Tensor4D,
  w: tf.Tensor4D,
  inputShape: readonly [number, number, number, number],
  strides: readonly [number, number],
  padding: Padding,
): tf.Tensor4D => {
  const [kh, kw, ci, co] = w.shape;
  if (strides[0] <= kh && strides[1] <= kw) {
    return tf.conv2dTranspose(dy, w, [...inputShape], [...strides], padding);
  }
  return tf.tidy(() => {
    const g = windowGeometry(inputShape[1], inputShape[2], [kh, kw], strides, padding);
    const [n, ho, wo] = dy.shape;
    const cols = matMulT(
      tf.reshape(dy, [n * ho * wo, co]) as tf.Tensor2D,
      tf.reshape(w, [kh * kw * ci, co]) as tf.Tensor2D,
      false,
      true,
    );
    const parts = tf.split(
      tf.reshape(cols, [n, ho, wo, kh * kw * ci]),
      kh * kw,
      3,
    ) as tf.Tensor4D[];
    return scatterPatches(parts, g);
  });
};
