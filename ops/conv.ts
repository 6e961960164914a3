/**
 * Convolution and pooling (NHWC). conv2d is bilinear in (x, w); its transposes are
 * Conv2DBackpropInput and an im2col filter gradient (`ops/windows.ts`). Max-pool's tangent follows
 * the first arg-max of each window (docs/algorithm.md#r-forward-and-transpose-rules, docs/algorithm.md#max-pool-ties), kept as masks or, where the backend has the
 * kernels (native), as indices; avg-pool is linear.
 * @module
 */
import { tf } from "../lib/_deps.ts";
import type { OpDef, Tangent } from "./types.ts";
import { addT } from "./_tangent.ts";
import {
  backendHasKernel,
  GATHER_FLAT_KERNEL,
  MAX_POOL_ARG_MAX_KERNEL,
  MAX_POOL_WITH_ARG_MAX_KERNEL,
  SCATTER_ADD_FLAT_KERNEL,
} from "../lib/kernels.ts";
import {
  conv2dFilterGrad,
  conv2dForward,
  conv2dInputGrad,
  extractPatches,
  firstArgMaxMasks,
  maxPoolInputGrad,
  type Padding,
  scatterPatches,
  type WindowGeometry,
  windowGeometry,
} from "./windows.ts";
import { gatherFlat, maxPoolArgMax, maxPoolWithArgMax, scatterAddFlat } from "./window_kernels.ts";

/** The attributes of {@link conv2d}. */
export interface Conv2dAttrs {
  /** Strides along height and width. */
  readonly strides: readonly [number, number];
  /** TF's SAME or VALID padding. */
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

/** The attributes of {@link maxPool} and {@link avgPool}. */
export interface PoolAttrs {
  /** Window height and width. */
  readonly filterSize: readonly [number, number];
  /** Strides along height and width. */
  readonly strides: readonly [number, number];
  /** TF's SAME or VALID padding. */
  readonly padding: Padding;
}

const geometry = (x: tf.Tensor, a: PoolAttrs): WindowGeometry =>
  windowGeometry(x.shape[1]!, x.shape[2]!, a.filterSize, a.strides, a.padding);

/**
 * The first arg-max of each window: as flat indices into x when the backend registers the index
 * kernels (`MlhfMaxPoolArgMax`; then J·v is one `MlhfGatherFlat` and Jᵀ·u one
 * `MlhfScatterAddFlat`), else as kh·kw one-hot masks (every backend; J·v and Jᵀ·u then cost kh·kw
 * patches, products and a sum).
 */
type MaxPoolRes =
  | { readonly idx: tf.Tensor4D }
  | { readonly idx?: undefined; readonly g: WindowGeometry; readonly masks: tf.Tensor4D[] };

/** Runs `f`, an index kernel's function; the backend that gave the indices must still be active. */
const viaIndices = (kernel: string, what: string, f: () => tf.Tensor): tf.Tensor => {
  if (!backendHasKernel(kernel)) {
    throw new Error(
      `maxPool ${what}: the arg-max indices came from a backend kernel that is no longer ` +
        `active (backend ${tf.getBackend()} has no ${kernel}); linearize and apply on one backend`,
    );
  }
  return f();
};

/**
 * The arg-max indices computed with a max-pool output by `MlhfMaxPoolWithArgMax`, by that output
 * (they live as long as the output's scope keeps them, like batch norm's statistics).
 */
const argMaxOf = new WeakMap<tf.Tensor, tf.Tensor4D>();

/** Max-pool; tangents and cotangents route through the first arg-max of each window. */
export const maxPool: OpDef<PoolAttrs, MaxPoolRes> = {
  name: "maxPool",
  primal: ([x], a) => {
    if (x.dtype === "float32" && backendHasKernel(MAX_POOL_WITH_ARG_MAX_KERNEL)) {
      // One pass for the values and the indices the residuals would otherwise recompute.
      const [y, idx] = maxPoolWithArgMax(T4(x), a.filterSize, a.strides, a.padding);
      argMaxOf.set(y, idx);
      return y;
    }
    return tf.maxPool(T4(x), [...a.filterSize], [...a.strides], a.padding);
  },
  residuals: ([x], y, a) => {
    const kept = argMaxOf.get(y);
    if (kept && !kept.isDisposed) return { idx: kept };
    if (backendHasKernel(MAX_POOL_ARG_MAX_KERNEL)) {
      return { idx: maxPoolArgMax(T4(x), a.filterSize, a.strides, a.padding) };
    }
    const g = geometry(x, a);
    return { g, masks: firstArgMaxMasks(T4(x), g) };
  },
  jvp: (_xs, _y, [dx], _a, res): Tangent => {
    if (dx === null) return null;
    const idx = res.idx;
    if (idx) return viaIndices(GATHER_FLAT_KERNEL, "J·v", () => gatherFlat(dx, idx));
    const parts = extractPatches(T4(dx), res.g).map((p, k) => tf.mul(p, res.masks[k]));
    return tf.addN(parts);
  },
  transpose: ([x], _y, ct, needs, a, res) => {
    if (!needs[0]) return [null];
    const idx = res.idx;
    if (idx) {
      return [
        viaIndices(SCATTER_ADD_FLAT_KERNEL, "Jᵀ·u", () => scatterAddFlat(ct, idx, x.shape)),
      ];
    }
    return [maxPoolInputGrad(T4(ct), T4(x), a.filterSize, a.strides, a.padding, res.masks)];
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
