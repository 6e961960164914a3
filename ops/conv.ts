/**
 * Convolution and pooling (NHWC). conv2d is bilinear in (x, w); its transposes are
 * Conv2DBackpropInput and an im2col filter gradient (`ops/_windows.ts`). Max-pool's tangent follows
 * the first arg-max of each window (docs/algorithm.md#max-pool-ties), kept as masks or, where the
 * backend has the kernels (native), as indices; avg-pool is linear.
 * @module
 */
import { tf } from "../lib/_deps.ts";
import type { OpDef, Tangent } from "./types.ts";
import { addT } from "./_tangent.ts";
import {
  conv2dFilterGrad,
  conv2dForward,
  conv2dInputGrad,
  extractPatches,
  firstArgMaxMasks,
  type Padding,
  scatterPatches,
  windowFastPaths,
  type WindowGeometry,
  windowGeometry,
} from "./_windows.ts";

export interface Conv2dAttrs {
  readonly strides: readonly [number, number];
  readonly padding: Padding;
}

const T4 = (t: tf.Tensor) => t as tf.Tensor4D;

/** y = x ⊛ w (NHWC input, [kh, kw, cin, cout] filter). */
export const conv2d: OpDef<Conv2dAttrs> = {
  name: "conv2d",
  primal: ([x, w], a) => conv2dForward(T4(x), T4(w), a.strides, a.padding),
  jvp: ([x, w], _y, [dx, dw], a) =>
    addT(
      dx && conv2dForward(T4(dx), T4(w), a.strides, a.padding),
      dw && conv2dForward(T4(x), T4(dw), a.strides, a.padding),
    ),
  transpose: ([x, w], _y, ct, needs, a) => [
    needs[0] ? conv2dInputGrad(T4(ct), T4(w), T4(x).shape, a.strides, a.padding) : null,
    needs[1] ? conv2dFilterGrad(T4(x), T4(ct), T4(w).shape, a.strides, a.padding) : null,
  ],
};

export interface PoolAttrs {
  readonly filterSize: readonly [number, number];
  readonly strides: readonly [number, number];
  readonly padding: Padding;
}

const geometry = (x: tf.Tensor, a: PoolAttrs): WindowGeometry =>
  windowGeometry(x.shape[1]!, x.shape[2]!, a.filterSize, a.strides, a.padding);

/**
 * The first arg-max of each window: as flat indices into x when the backend has the index fast
 * paths (`maxPoolArgMax`; then J·v is one gather and Jᵀ·u one scatter-add), else as kh·kw one-hot
 * masks (every backend; J·v and Jᵀ·u then cost kh·kw patches, products and a sum).
 */
type MaxPoolRes =
  | { readonly idx: tf.Tensor4D }
  | { readonly idx?: undefined; readonly g: WindowGeometry; readonly masks: tf.Tensor4D[] };

/** A result of the index fast paths, which exist whenever `maxPoolArgMax` gave the indices. */
const viaIndices = (t: tf.Tensor | null | undefined, what: string): tf.Tensor => {
  if (!t) {
    throw new Error(
      `maxPool ${what}: the arg-max indices came from a backend fast path that is no longer ` +
        `active (backend ${tf.getBackend()}); linearize and apply on one backend`,
    );
  }
  return t;
};

/** Max-pool; tangents and cotangents route through the first arg-max of each window. */
export const maxPool: OpDef<PoolAttrs, MaxPoolRes> = {
  name: "maxPool",
  primal: ([x], a) => tf.maxPool(T4(x), [...a.filterSize], [...a.strides], a.padding),
  residuals: ([x], _y, a) => {
    const idx = windowFastPaths().maxPoolArgMax?.(T4(x), a.filterSize, a.strides, a.padding);
    if (idx) return { idx };
    const g = geometry(x, a);
    return { g, masks: firstArgMaxMasks(T4(x), g) };
  },
  jvp: (_xs, _y, [dx], _a, res): Tangent => {
    if (dx === null) return null;
    if (res.idx) return viaIndices(windowFastPaths().maxPoolGather?.(dx, res.idx), "J·v");
    const parts = extractPatches(T4(dx), res.g).map((p, k) => tf.mul(p, res.masks[k]));
    return tf.addN(parts);
  },
  transpose: ([x], _y, ct, needs, a, res) => {
    if (!needs[0]) return [null];
    if (res.idx) {
      return [viaIndices(windowFastPaths().maxPoolScatter?.(ct, res.idx, x.shape), "Jᵀ·u")];
    }
    return [
      windowFastPaths().maxPoolTranspose?.(T4(ct), T4(x), a.filterSize, a.strides, a.padding) ??
        scatterPatches(res.masks.map((m) => tf.mul(m, ct) as tf.Tensor4D), res.g),
    ];
  },
};

interface AvgPoolRes {
  readonly g: WindowGeometry;
  /** 1 / (number of in-bounds elements) per output position, [1, Ho, Wo, 1] (TF excludes padding). */
  readonly invCount: tf.Tensor4D;
}

/** Average pool (linear); SAME windows average only their in-bounds elements, as TF does. */
export const avgPool: OpDef<PoolAttrs, AvgPoolRes> = {
  name: "avgPool",
  primal: ([x], a) => tf.avgPool(T4(x), [...a.filterSize], [...a.strides], a.padding),
  residuals: ([x], _y, a) => {
    const g = geometry(x, a);
    const ones = tf.ones([1, g.inH, g.inW, 1]) as tf.Tensor4D;
    const count = tf.addN(extractPatches(ones, g));
    return { g, invCount: tf.reciprocal(count) as tf.Tensor4D };
  },
  jvp: (_xs, _y, [dx], a): Tangent =>
    dx && tf.avgPool(T4(dx), [...a.filterSize], [...a.strides], a.padding),
  transpose: (_xs, _y, ct, needs, _a, { g, invCount }) => {
    if (!needs[0]) return [null];
    const scaled = tf.mul(ct, invCount) as tf.Tensor4D;
    return [scatterPatches(Array.from({ length: g.kh * g.kw }, () => scaled), g)];
  },
};
