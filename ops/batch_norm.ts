/**
 * Train-mode batch norm over every axis but the last as one primitive
 * (docs/algorithm.md#batch-norm-in-train-mode): y = γ·x̂ + β with x̂ = (x − μ)·s, μ and σ² the batch
 * mean and biased variance per channel, s = (σ² + ε)^−½.
 *
 * Primal: the same TF.js ops, in the same order, as the composition `Nn.batchNormTrain` used
 * before (so values are unchanged on every backend), or, when the active backend has the kernel
 * `MlhfBatchNormTrain` (the native backend: `lib/backend/native/kernels/batch_norm.ts`), that one
 * kernel (by oneDNN, equal to a float64 reference to float32 rounding; by its JS loops without
 * oneDNN, bit-identical to the composition there), with its gradient registered beside it (one
 * kernel instead of ≈ 20 tape ops).
 * The batch statistics (for the moving averages) are read with {@link batchStats}.
 *
 * With P(v) = v − mean(v) − x̂·mean(v·x̂) (means per channel; P is symmetric):
 * - J·v: ẏ = γ·s·P(ẋ) + γ̇·x̂ + β̇;
 * - Jᵀ·u: x̄ = γ·s·P(u), γ̄ = Σ u·x̂, β̄ = Σ u (sums per channel).
 * Residuals: x̂ and γ·s. On native, Jᵀ·u is the gradient kernel and x̂
 * is not kept (J·v recomputes it): a linearization used for one Jᵀ·u (an SGD step) skips two
 * passes per layer.
 * @module
 */
import { tf } from "../lib/_deps.ts";
import type { OpDef, Tangent } from "./types.ts";
import { addT } from "./_tangent.ts";
import {
  backendHasKernel,
  BATCH_NORM_TRAIN_GRAD_KERNEL,
  BATCH_NORM_TRAIN_KERNEL,
} from "../lib/kernels.ts";

/** The op's attributes. */
export interface BatchNormAttrs {
  /** ε added to the variance. */
  readonly epsilon: number;
}

/** What the J·v and Jᵀ·u rules reuse. */
export interface BatchNormResiduals {
  /** x̂; null on native, where Jᵀ·u does not need it and J·v computes it (x̂ of {@link xhatOf}). */
  readonly xhat: tf.Tensor | null;
  /** (σ² + ε)^−½, per channel, shaped to broadcast over x. */
  readonly s: tf.Tensor;
  /** x's batch mean, shaped to broadcast over x. */
  readonly keptMean: tf.Tensor;
  /** γ·s, per channel, shaped to broadcast over x. */
  readonly scale: tf.Tensor;
  /** The batch statistics ([C]; kept with the linearization for the native Jᵀ·u). */
  readonly mean: tf.Tensor;
  /** The batch variance ([C]). */
  readonly variance: tf.Tensor;
}

/** The batch statistics of a train-mode batch norm output, each of shape [C]. */
export interface BatchStats {
  /** The batch mean. */
  readonly mean: tf.Tensor;
  /** The batch variance (biased). */
  readonly variance: tf.Tensor;
}

/** Batch statistics by output tensor (they live as long as the output's scope keeps them). */
const statsOf = new WeakMap<tf.Tensor, BatchStats & { readonly keptMean: tf.Tensor }>();

const axesOf = (x: tf.Tensor) => Array.from({ length: x.rank - 1 }, (_, i) => i);

/** The batch mean and variance ([C] each) that produced `y`, an output of {@link batchNormTrain}. */
export const batchStats = (y: tf.Tensor): BatchStats => {
  const s = statsOf.get(y);
  if (!s) throw new Error("batchStats: the tensor is not an output of the batchNormTrain op");
  return { mean: s.mean, variance: s.variance };
};

/** True when the active backend runs train-mode batch norm as one kernel. */
const fused = (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor): boolean => {
  const c = x.shape[x.rank - 1];
  return x.rank >= 2 && x.size > 0 && x.dtype === "float32" && gamma.dtype === "float32" &&
    beta.dtype === "float32" && gamma.size === c && beta.size === c &&
    backendHasKernel(BATCH_NORM_TRAIN_KERNEL);
};

/**
 * Train-mode batch norm as one DSL primitive: y = γ·(x − μ)·(σ² + ε)^−½ + β over every axis but the
 * last, its R-forward and transpose rules in closed form, and the native kernels where registered.
 */
export const batchNormTrain: OpDef<BatchNormAttrs, BatchNormResiduals> = {
  name: "batchNormTrain",
  primal: ([x, gamma, beta], { epsilon }) => {
    const c = x.shape[x.rank - 1];
    if (fused(x, gamma, beta)) {
      const [y, mean, variance] = tf.engine().runKernel(
        BATCH_NORM_TRAIN_KERNEL,
        { x, gamma, beta },
        { epsilon },
      ) as tf.Tensor[];
      const keptMean = tf.reshape(mean, [...x.shape.slice(0, -1).map(() => 1), c]);
      statsOf.set(y, { mean, variance, keptMean });
      return y;
    }
    const axes = axesOf(x);
    const mu = tf.mean(x, axes, true);
    const centered = tf.sub(x, mu);
    const variance = tf.mean(tf.square(centered), axes, true);
    const s = tf.rsqrt(tf.add(variance, tf.scalar(epsilon)));
    const y = tf.add(tf.mul(tf.mul(centered, s), gamma), beta);
    statsOf.set(y, {
      mean: tf.reshape(mu, [c]),
      variance: tf.reshape(variance, [c]),
      keptMean: mu,
    });
    return y;
  },
  residuals: ([x, gamma, beta], y, { epsilon }) => {
    const st = statsOf.get(y);
    if (!st) throw new Error("batchNormTrain: residuals of an output this op did not make");
    const kept = st.keptMean.shape;
    const s = tf.rsqrt(tf.add(tf.reshape(st.variance, kept), tf.scalar(epsilon)));
    return {
      xhat: fused(x, gamma, beta) ? null : tf.mul(tf.sub(x, st.keptMean), s),
      s,
      keptMean: st.keptMean,
      scale: tf.mul(s, tf.reshape(gamma, kept)),
      mean: st.mean,
      variance: st.variance,
    };
  },
  jvp: ([x], _y, [dx, dgamma, dbeta], _a, r): Tangent => {
    const xhat = xhatOf(x, r);
    const fromX = dx && tf.mul(r.scale, project(dx, xhat));
    return addT(
      addT(fromX, dgamma && tf.mul(xhat, tf.reshape(dgamma, r.scale.shape))),
      dbeta && tf.broadcastTo(tf.reshape(dbeta, r.scale.shape), x.shape),
    );
  },
  transpose: ([x, gamma, beta], _y, ct, needs, { epsilon }, r) => {
    if (fused(x, gamma, beta) && ct.dtype === "float32") {
      // All three in two passes over x (native): the tape gradient's kernel, no statistics term.
      const [dx, dgamma, dbeta] = tf.engine().runKernel(BATCH_NORM_TRAIN_GRAD_KERNEL, {
        dy: ct,
        x,
        mean: r.mean,
        variance: r.variance,
        gamma,
        dMean: tf.zerosLike(r.mean),
        dVariance: tf.zerosLike(r.variance),
      }, { epsilon }) as tf.Tensor[];
      return [
        needs[0] ? dx : null,
        needs[1] ? tf.reshape(dgamma, gamma.shape) : null,
        needs[2] ? tf.reshape(dbeta, beta.shape) : null,
      ];
    }
    const axes = axesOf(x), xhat = xhatOf(x, r);
    return [
      needs[0] ? project(tf.mul(ct, r.scale), xhat) : null,
      needs[1] ? tf.reshape(tf.sum(tf.mul(ct, xhat), axes), gamma.shape) : null,
      needs[2] ? tf.reshape(tf.sum(ct, axes), beta.shape) : null,
    ];
  },
};

/** x̂ = (x − μ)·s: the residual, or recomputed (the same ops) where the residual was skipped. */
const xhatOf = (x: tf.Tensor, r: BatchNormResiduals): tf.Tensor =>
  r.xhat ?? tf.mul(tf.sub(x, r.keptMean), r.s);

/** P(v) = v − mean(v) − x̂·mean(v·x̂), means over every axis but the last. */
const project = (v: tf.Tensor, xhat: tf.Tensor): tf.Tensor => {
  const axes = axesOf(v);
  return tf.sub(
    tf.sub(v, tf.mean(v, axes, true)),
    tf.mul(xhat, tf.mean(tf.mul(v, xhat), axes, true)),
  );
};
