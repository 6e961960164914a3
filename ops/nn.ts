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
import type { Apply } from "./types.ts";
import * as ew from "./elementwise.ts";
import { matMul } from "./linalg.ts";
import { avgPool, conv2d, maxPool } from "./conv.ts";
import { logSumExp, mean, sum } from "./reduce.ts";
import { pad, reshape } from "./shape.ts";
import { batchNormTrain, batchStats } from "./batch_norm.ts";
import type { Padding } from "./_windows.ts";

type T = tf.Tensor;
type Pair = readonly [number, number];

/** Options of a 2-D window op; numbers apply to both spatial axes. */
export interface WindowOptions {
  readonly strides?: number | Pair;
  readonly padding?: Padding;
}

/** TF's local response normalization settings (`tf.nn.local_response_normalization`). */
export interface LrnOptions {
  readonly depthRadius?: number;
  readonly bias?: number;
  readonly alpha?: number;
  readonly beta?: number;
}

/** Train-mode batch norm result: the output and the batch statistics (for moving averages). */
export interface BatchNormOut {
  readonly y: T;
  readonly mean: T;
  readonly variance: T;
}

/** The DSL. */
export interface Nn {
  readonly apply: Apply;
  add(a: T, b: T): T;
  sub(a: T, b: T): T;
  mul(a: T, b: T): T;
  addScalar(x: T, c: number): T;
  mulScalar(x: T, c: number): T;
  matMul(a: T, b: T, transposeA?: boolean, transposeB?: boolean): T;
  /** x·w (+ b): a dense layer without activation. */
  dense(x: T, w: T, b?: T): T;
  /** x + b broadcast over the last (channel) axis. */
  biasAdd(x: T, b: T): T;
  conv2d(x: T, w: T, opts?: WindowOptions): T;
  maxPool(x: T, size: number | Pair, opts?: WindowOptions): T;
  avgPool(x: T, size: number | Pair, opts?: WindowOptions): T;
  sum(x: T, axes: readonly number[], keepDims?: boolean): T;
  mean(x: T, axes: readonly number[], keepDims?: boolean): T;
  /** Mean over the spatial axes of NHWC: [N, H, W, C] → [N, C]. */
  globalMeanPool(x: T): T;
  pad(x: T, paddings: readonly Pair[]): T;
  reshape(x: T, shape: readonly number[]): T;
  /** [N, ...] → [N, prod(...)]. */
  flatten(x: T): T;
  relu(x: T): T;
  sigmoid(x: T): T;
  tanh(x: T): T;
  softplus(x: T): T;
  rsqrt(x: T): T;
  exp(x: T): T;
  log(x: T): T;
  square(x: T): T;
  logSumExp(x: T, axis?: number): T;
  logSoftmax(x: T, axis?: number): T;
  softmax(x: T, axis?: number): T;
  /**
   * Train-mode batch norm over every axis but the last
   * (docs/algorithm.md#batch-norm-in-train-mode): statistics depend on x. One primitive
   * (`ops/batch_norm.ts`); `mean` and `variance` ([C]) are the batch's, for moving averages only
   * (no tangent).
   */
  batchNormTrain(x: T, gamma: T, beta: T, epsilon?: number): BatchNormOut;
  /** Batch norm with given (moving) statistics: inference mode. */
  batchNormInference(x: T, gamma: T, beta: T, mean: T, variance: T, epsilon?: number): T;
  localResponseNormalization(x: T, opts?: LrnOptions): T;
}

const pair = (v: number | Pair): Pair => (typeof v === "number" ? [v, v] : v);

/** Builds the DSL over an interpreter's `apply`. */
export const makeNn = (apply: Apply): Nn => {
  const none = {};
  const u = (op: typeof ew.relu) => (x: T) => apply(op, [x], none);
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
