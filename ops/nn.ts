/**
 * `Nn`: the DSL a model is written against, once. Its methods are typed wrappers over the primitive
 * rules plus composites built only from primitives (dense, LRN, softmax), so a composite
 * gets its R-forward and transpose rules for free. An interpreter supplies `apply`: the plain one
 * just runs primals; the linearizing one also records each op for J·v and Jᵀ·u.
 *
 * Rule for model code: every value that depends on parameters goes through `nn`; plain `tf` calls
 * are only for constants (they carry no tangent).
 * @module
 */
import { tf } from "../lib/_deps.ts";
import type { Apply, OpDef } from "./types.ts";
import * as ew from "./elementwise.ts";
import { matMul } from "./linalg.ts";
import { avgPool, conv2d, maxPool } from "./conv.ts";
import { logSumExp, mean, sum } from "./reduce.ts";
import { pad, reshape } from "./shape.ts";
import { batchNormTrain, batchStats } from "./batch_norm.ts";
import type { Padding } from "./windows.ts";

export type { Padding };

/** Options of a 2-D window op; numbers apply to both spatial axes. */
export interface WindowOptions {
  /** Strides along height and width (default: 1 for conv, the window size for pooling). */
  readonly strides?: number | readonly [number, number];
  /** TF's SAME or VALID padding (default SAME). */
  readonly padding?: Padding;
}

/** TF's local response normalization settings (`tf.nn.local_response_normalization`). */
export interface LrnOptions {
  /** Half-width r of the channel window (default 5). */
  readonly depthRadius?: number;
  /** Offset added to the window sum (default 1). */
  readonly bias?: number;
  /** Scale of the window sum (default 1). */
  readonly alpha?: number;
  /** Exponent (default 0.5). */
  readonly beta?: number;
}

/** Train-mode batch norm result: the output and the batch statistics (for moving averages). */
export interface BatchNormOut {
  /** The normalized output. */
  readonly y: tf.Tensor;
  /** The batch mean of each channel. */
  readonly mean: tf.Tensor;
  /** The batch variance of each channel (biased). */
  readonly variance: tf.Tensor;
}

/** The DSL. */
export interface Nn {
  /** The interpreter's hook every primitive goes through. */
  readonly apply: Apply;
  /** a + b (broadcasting). */
  add(a: tf.Tensor, b: tf.Tensor): tf.Tensor;
  /** a − b (broadcasting). */
  sub(a: tf.Tensor, b: tf.Tensor): tf.Tensor;
  /** a ⊙ b (broadcasting). */
  mul(a: tf.Tensor, b: tf.Tensor): tf.Tensor;
  /** x + c for a constant c. */
  addScalar(x: tf.Tensor, c: number): tf.Tensor;
  /** c·x for a constant c. */
  mulScalar(x: tf.Tensor, c: number): tf.Tensor;
  /** op(a)·op(b) for 2-D a, b (op: the transpose where the flag is set). */
  matMul(a: tf.Tensor, b: tf.Tensor, transposeA?: boolean, transposeB?: boolean): tf.Tensor;
  /** x·w (+ b): a dense layer without activation. */
  dense(x: tf.Tensor, w: tf.Tensor, b?: tf.Tensor): tf.Tensor;
  /** x + b broadcast over the last (channel) axis. */
  biasAdd(x: tf.Tensor, b: tf.Tensor): tf.Tensor;
  /** x ⊛ w: NHWC input, [kh, kw, cin, cout] filter. */
  conv2d(x: tf.Tensor, w: tf.Tensor, opts?: WindowOptions): tf.Tensor;
  /** Max-pool over size × size windows (NHWC); the tangent follows each window's first maximum. */
  maxPool(x: tf.Tensor, size: number | readonly [number, number], opts?: WindowOptions): tf.Tensor;
  /**
   * Average pool over size × size windows (NHWC); SAME windows average their in-bounds elements.
   */
  avgPool(x: tf.Tensor, size: number | readonly [number, number], opts?: WindowOptions): tf.Tensor;
  /** Σ over the axes. */
  sum(x: tf.Tensor, axes: readonly number[], keepDims?: boolean): tf.Tensor;
  /** The mean over the axes. */
  mean(x: tf.Tensor, axes: readonly number[], keepDims?: boolean): tf.Tensor;
  /** Mean over the spatial axes of NHWC: [N, H, W, C] → [N, C]. */
  globalMeanPool(x: tf.Tensor): tf.Tensor;
  /** Zero padding: [before, after] per axis. */
  pad(x: tf.Tensor, paddings: readonly (readonly [number, number])[]): tf.Tensor;
  /** x with another shape of the same size. */
  reshape(x: tf.Tensor, shape: readonly number[]): tf.Tensor;
  /** [N, ...] → [N, prod(...)]. */
  flatten(x: tf.Tensor): tf.Tensor;
  /** max(x, 0). */
  relu(x: tf.Tensor): tf.Tensor;
  /** σ(x) = 1/(1 + e⁻ˣ). */
  sigmoid(x: tf.Tensor): tf.Tensor;
  /** tanh(x). */
  tanh(x: tf.Tensor): tf.Tensor;
  /** log(1 + eˣ). */
  softplus(x: tf.Tensor): tf.Tensor;
  /** x^(−½). */
  rsqrt(x: tf.Tensor): tf.Tensor;
  /** eˣ. */
  exp(x: tf.Tensor): tf.Tensor;
  /** log x. */
  log(x: tf.Tensor): tf.Tensor;
  /** x². */
  square(x: tf.Tensor): tf.Tensor;
  /** log Σ exp(x) along `axis` (default the last), kept as size 1. */
  logSumExp(x: tf.Tensor, axis?: number): tf.Tensor;
  /** x − logSumExp(x) along `axis` (default the last). */
  logSoftmax(x: tf.Tensor, axis?: number): tf.Tensor;
  /** softmax(x) along `axis` (default the last). */
  softmax(x: tf.Tensor, axis?: number): tf.Tensor;
  /**
   * Train-mode batch norm over every axis but the last
   * (docs/algorithm.md#batch-norm-in-train-mode): statistics depend on x. One primitive
   * (`ops/batch_norm.ts`); `mean` and `variance` ([C]) are the batch's, for moving averages only
   * (no tangent).
   */
  batchNormTrain(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, epsilon?: number): BatchNormOut;
  /** Batch norm with given (moving) statistics: inference mode. */
  batchNormInference(
    x: tf.Tensor,
    gamma: tf.Tensor,
    beta: tf.Tensor,
    mean: tf.Tensor,
    variance: tf.Tensor,
    epsilon?: number,
  ): tf.Tensor;
  /** TF's local response normalization over the channel axis: x / (bias + α·Σ_window x²)^β. */
  localResponseNormalization(x: tf.Tensor, opts?: LrnOptions): tf.Tensor;
}

type T = tf.Tensor;
type Pair = readonly [number, number];
const pair = (v: number | Pair): Pair => (typeof v === "number" ? [v, v] : v);

/** Builds the DSL over an interpreter's `apply`. */
export const makeNn = (apply: Apply): Nn => {
  const none = {};
  const u = <R>(op: OpDef<ew.None, R>) => (x: T) => apply(op, [x], none);
  const nn: Nn = {
    apply,
    add: (a, b) => apply(ew.add, [a, b], none),
    sub: (a, b) => apply(ew.sub, [a, b], none),
    mul: (a, b) => apply(ew.mul, [a, b], none),
    addScalar: (x, c) => apply(ew.add, [x, tf.scalar(c)], none),
    mulScalar: (x, c) => apply(ew.mul, [x, tf.scalar(c)], none),
    matMul: (a, b, transposeA = false, transposeB = false) =>
      apply(matMul, [a, b], { transposeA, transposeB }),
    dense: (x, w, b) => {
      const y = nn.matMul(x, w);
      return b ? nn.add(y, b) : y;
    },
    biasAdd: (x, b) => nn.add(x, b),
    conv2d: (x, w, { strides = 1, padding = "same" } = {}) =>
      apply(conv2d, [x, w], { strides: pair(strides), padding }),
    maxPool: (x, size, { strides = size, padding = "same" } = {}) =>
      apply(maxPool, [x], { filterSize: pair(size), strides: pair(strides), padding }),
    avgPool: (x, size, { strides = size, padding = "same" } = {}) =>
      apply(avgPool, [x], { filterSize: pair(size), strides: pair(strides), padding }),
    sum: (x, axes, keepDims = false) => apply(sum, [x], { axes, keepDims }),
    mean: (x, axes, keepDims = false) => apply(mean, [x], { axes, keepDims }),
    globalMeanPool: (x) => nn.mean(x, [1, 2]),
    pad: (x, paddings) => apply(pad, [x], { paddings }),
    reshape: (x, shape) =>
      apply(reshape, [x], { shape: tf.util.inferFromImplicitShape([...shape], x.size) }),
    flatten: (x) => nn.reshape(x, [x.shape[0], x.size / x.shape[0]]),
    relu: u(ew.relu),
    sigmoid: u(ew.sigmoid),
    tanh: u(ew.tanh),
    softplus: u(ew.softplus),
    rsqrt: u(ew.rsqrt),
    exp: u(ew.exp),
    log: u(ew.log),
    square: u(ew.square),
    logSumExp: (x, axis = -1) => apply(logSumExp, [x], { axis: axis < 0 ? x.rank + axis : axis }),
    logSoftmax: (x, axis = -1) => nn.sub(x, nn.logSumExp(x, axis)),
    softmax: (x, axis = -1) => nn.exp(nn.logSoftmax(x, axis)),
    batchNormTrain: (x, gamma, beta, epsilon = 1e-5) => {
      const y = apply(batchNormTrain, [x, gamma, beta], { epsilon });
      return { y, ...batchStats(y) };
    },
    batchNormInference: (x, gamma, beta, mu, variance, epsilon = 1e-5) => {
      const s = tf.rsqrt(tf.add(variance, epsilon)); // statistics are constants here
      return nn.add(nn.mul(nn.mul(nn.sub(x, mu), s), gamma), beta);
    },
    localResponseNormalization: (x, { depthRadius = 5, bias = 1, alpha = 1, beta = 0.5 } = {}) => {
      // TF: y = x / (bias + alpha · Σ_{|d'−d| ≤ r} x_{d'}²)^beta; the channel window sum is a
      // product with a constant band matrix, and the power is exp(−beta · log(·)).
      const c = x.shape[x.rank - 1];
      const band = tf.tidy(() => {
        const i = tf.range(0, c).reshape([c, 1]);
        const j = tf.range(0, c).reshape([1, c]);
        return tf.cast(tf.lessEqual(tf.abs(tf.sub(i, j)), depthRadius), "float32");
      });
      const sq = nn.reshape(nn.square(x), [x.size / c, c]);
      const windowSum = nn.reshape(nn.matMul(sq, band), x.shape);
      const base = nn.addScalar(nn.mulScalar(windowSum, alpha), bias);
      return nn.mul(x, nn.exp(nn.mulScalar(nn.log(base), -beta)));
    },
  };
  return nn;
};
