/** Reductions: mean, sum (linear) and log-sum-exp (ẏ = ⟨softmax(x), ẋ⟩ along the axis). @module */
import { tf } from "../lib/_deps.ts";
import type { OpDef, Tangent } from "./types.ts";

/** The attributes of {@link sum} and {@link mean}. */
export interface ReduceAttrs {
  /** The axes reduced (negative counts from the end). */
  readonly axes: readonly number[];
  /** Keep the reduced axes as size 1. */
  readonly keepDims: boolean;
}

const normAxes = (rank: number, axes: readonly number[]) => axes.map((a) => (a < 0 ? a + rank : a));

/** The shape of x with the reduced axes kept as size 1 (to broadcast a cotangent back). */
const keptShape = (x: tf.Tensor, axes: readonly number[]): number[] => {
  const ax = normAxes(x.rank, axes);
  return x.shape.map((d, i) => (ax.includes(i) ? 1 : d));
};

const count = (x: tf.Tensor, axes: readonly number[]) =>
  normAxes(x.rank, axes).reduce((n, a) => n * x.shape[a], 1);

/** Σ over the axes (linear). */
export const sum: OpDef<ReduceAttrs> = {
  name: "sum",
  primal: ([x], a) => tf.sum(x, [...a.axes], a.keepDims),
  jvp: (_xs, _y, [dx], a): Tangent => dx && tf.sum(dx, [...a.axes], a.keepDims),
  transpose: ([x], _y, ct, needs, a) => [
    needs[0] ? tf.broadcastTo(tf.reshape(ct, keptShape(x, a.axes)), x.shape) : null,
  ],
};

/** The mean over the axes (linear). */
export const mean: OpDef<ReduceAttrs> = {
  name: "mean",
  primal: ([x], a) => tf.mean(x, [...a.axes], a.keepDims),
  jvp: (_xs, _y, [dx], a): Tangent => dx && tf.mean(dx, [...a.axes], a.keepDims),
  transpose: ([x], _y, ct, needs, a) => [
    needs[0]
      ? tf.broadcastTo(tf.div(tf.reshape(ct, keptShape(x, a.axes)), count(x, a.axes)), x.shape)
      : null,
  ],
};

/** The attributes of an op along one axis. */
export interface AxisAttrs {
  /** The axis (negative counts from the end). */
  readonly axis: number;
}

/** log Σ exp(x) along one axis (kept as size 1). Residual: softmax(x) along that axis. */
export const logSumExp: OpDef<AxisAttrs, tf.Tensor> = {
  name: "logSumExp",
  primal: ([x], { axis }) => tf.logSumExp(x, axis, true),
  residuals: ([x], y) => tf.exp(tf.sub(x, y)),
  jvp: (_xs, _y, [dx], { axis }, p): Tangent => dx && tf.sum(tf.mul(p, dx), axis, true),
  transpose: (_xs, _y, ct, needs, _a, p) => [needs[0] ? tf.mul(p, ct) : null],
};
