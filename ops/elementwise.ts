/**
 * Elementwise primitives. Binary ops broadcast (their transposes sum over broadcast axes); unary ops
 * share one rule shape: ẏ = f′(x) ⊙ ẋ with f′ computed once per linearization (JAX's defjvp2 reuses
 * the output the same way: sigmoid y(1−y), tanh 1−y², relu 1[y>0]).
 * @module
 */
import { tf } from "../lib/_deps.ts";
import type { OpDef, Tangent } from "./types.ts";
import { addT, unbroadcast } from "./_tangent.ts";
import { backendHasKernel, RELU_GRAD_KERNEL } from "../lib/kernels.ts";

/** The attributes of an op that has none. */
export type None = Record<never, never>;

/** a + b (broadcasting). */
export const add: OpDef<None> = {
  name: "add",
  primal: ([a, b]) => tf.add(a, b),
  jvp: (_xs, y, [da, db]) => {
    const s = addT(da, db);
    return s === null || tf.util.arraysEqual(s.shape, y.shape) ? s : tf.broadcastTo(s, y.shape);
  },
  transpose: ([a, b], _y, ct, needs) => [
    needs[0] ? unbroadcast(ct, a.shape) : null,
    needs[1] ? unbroadcast(ct, b.shape) : null,
  ],
};

/** a − b (broadcasting). */
export const sub: OpDef<None> = {
  name: "sub",
  primal: ([a, b]) => tf.sub(a, b),
  jvp: (_xs, y, [da, db]) => {
    const s = db === null ? da : da === null ? tf.neg(db) : tf.sub(da, db);
    return s === null || tf.util.arraysEqual(s.shape, y.shape) ? s : tf.broadcastTo(s, y.shape);
  },
  transpose: ([a, b], _y, ct, needs) => [
    needs[0] ? unbroadcast(ct, a.shape) : null,
    needs[1] ? unbroadcast(tf.neg(ct), b.shape) : null,
  ],
};

/** Bilinear: ẏ = ȧ⊙b + a⊙ḃ. */
export const mul: OpDef<None> = {
  name: "mul",
  primal: ([a, b]) => tf.mul(a, b),
  jvp: ([a, b], y, [da, db]) => {
    const s = addT(da && tf.mul(da, b), db && tf.mul(a, db));
    return s === null || tf.util.arraysEqual(s.shape, y.shape) ? s : tf.broadcastTo(s, y.shape);
  },
  transpose: ([a, b], _y, ct, needs) => [
    needs[0] ? unbroadcast(tf.mul(ct, b), a.shape) : null,
    needs[1] ? unbroadcast(tf.mul(ct, a), b.shape) : null,
  ],
};

/** A unary elementwise op defined by its primal and its derivative f′(x, y). */
const unary = (
  name: string,
  f: (x: tf.Tensor) => tf.Tensor,
  df: (x: tf.Tensor, y: tf.Tensor) => tf.Tensor,
): OpDef<None, tf.Tensor> => ({
  name,
  primal: ([x]) => f(x),
  residuals: ([x], y) => df(x, y),
  jvp: (_xs, _y, [dx], _a, d): Tangent => dx && tf.mul(dx, d),
  transpose: (_xs, _y, ct, needs, _a, d) => [needs[0] ? tf.mul(ct, d) : null],
});

/**
 * ReLU's residual: the 0/1 mask of y > 0, or, where the backend registers `MlhfReluGrad`
 * (`lib/kernels.ts`), y itself (kept anyway as the next op's input), which the kernel masks by in
 * one pass: the same products without the mask's two passes and array.
 */
type ReluRes = { readonly mask: tf.Tensor; readonly y?: undefined } | {
  readonly mask?: undefined;
  readonly y: tf.Tensor;
};

/** t ⊙ 1[y > 0] from relu's residual. */
const passPositive = (t: tf.Tensor, r: ReluRes): tf.Tensor => {
  if (r.mask) return tf.mul(t, r.mask);
  if (!backendHasKernel(RELU_GRAD_KERNEL)) {
    throw new Error(
      `relu: the residual is for ${RELU_GRAD_KERNEL}, which backend ${tf.getBackend()} does not ` +
        `register; linearize and apply on one backend`,
    );
  }
  return tf.engine().runKernel(RELU_GRAD_KERNEL, { dy: t, y: r.y }) as tf.Tensor;
};

/** ReLU; the tangent passes where y > 0 (TF's ReluGrad on the output, docs/algorithm.md#r-forward-and-transpose-rules). */
export const relu: OpDef<None, ReluRes> = {
  name: "relu",
  primal: ([x]) => tf.relu(x),
  residuals: (_xs, y) =>
    backendHasKernel(RELU_GRAD_KERNEL) && y.dtype === "float32"
      ? { y }
      : { mask: tf.cast(tf.greater(y, 0), "float32") },
  jvp: (_xs, _y, [dx], _a, r): Tangent => dx && passPositive(dx, r),
  transpose: (_xs, _y, ct, needs, _a, r) => [needs[0] ? passPositive(ct, r) : null],
};
/** σ(x); σ′ = y(1−y). */
export const sigmoid: OpDef<None, tf.Tensor> = unary(
  "sigmoid",
  tf.sigmoid,
  (_x, y) => tf.mul(y, tf.sub(1, y)),
);
/** tanh(x); tanh′ = 1 − y². */
export const tanh: OpDef<None, tf.Tensor> = unary(
  "tanh",
  tf.tanh,
  (_x, y) => tf.sub(1, tf.square(y)),
);
/** softplus(x) = log(1 + eˣ); softplus′ = σ(x). */
export const softplus: OpDef<None, tf.Tensor> = unary(
  "softplus",
  tf.softplus,
  (x) => tf.sigmoid(x),
);
/** x^(−½); derivative −½ y³ (docs/algorithm.md#r-forward-and-transpose-rules). */
export const rsqrt: OpDef<None, tf.Tensor> = unary(
  "rsqrt",
  tf.rsqrt,
  (_x, y) => tf.mul(-0.5, tf.pow(y, 3)),
);
/** eˣ; derivative y. */
export const exp: OpDef<None, tf.Tensor> = unary("exp", tf.exp, (_x, y) => y);
/** log x; derivative 1/x. */
export const log: OpDef<None, tf.Tensor> = unary("log", tf.log, (x) => tf.reciprocal(x));
/** x²; derivative 2x. */
export const square: OpDef<None, tf.Tensor> = unary("square", tf.square, (x) => tf.mul(2, x));
