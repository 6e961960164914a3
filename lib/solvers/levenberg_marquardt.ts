/**
 * The Levenberg–Marquardt damping rule as the original's HF(LM) baseline runs it
 * (docs/algorithm.md#levenberg-marquardt-rule, with its quirks, docs/algorithm.md#lm-details):
 * ρ is measured on the previous batch at the start of the next step, q includes the damping term,
 * ρ = 0.5 on the first step (q = 0), and λ is clipped to [1e-3, 1]. The `…OnDevice` forms are what
 * the optimizer runs (no host read per step); the number forms state the rule.
 * @module
 */
import { tf } from "../_deps.ts";

/** Reduction ratio ρ = (L(θ_t; B_{t−1}) − ℓ_{t−1}) / q_{t−1}; 0.5 when q_{t−1} = 0. */
export const reductionRatio = (lossNowOnPrevBatch: number, prevLoss: number, q: number): number =>
  q === 0 ? 0.5 : (lossNowOnPrevBatch - prevLoss) / q;

/** The quadratic model's predicted change q = −η⟨g, x⟩ + ½η²⟨x, A x⟩, with A x taken as g − r. */
export const predictedReduction = (lr: number, gDotX: number, xDotAx: number): number =>
  -lr * gDotX + 0.5 * lr * lr * xDotAx;

/** Martens' rule with factor δ (<1): ρ ≤ ¼ → λ/δ, ρ > ¾ → λ·δ, else λ; then clip to [1e-3, 1]. */
export const levenbergMarquardtDamping = (lambda: number, rho: number, decay: number): number => {
  const factor = rho <= 0.25 ? 1 / decay : rho > 0.75 ? decay : 1;
  return Math.min(1, Math.max(1e-3, lambda * factor));
};

/**
 * {@link reductionRatio} on the device (float32 scalars; no host read): 0.5 where q = 0.
 * `where` selects, so the division by q = 0 never leaks.
 */
export const reductionRatioOnDevice = (
  lossNowOnPrevBatch: tf.Scalar,
  prevLoss: tf.Scalar,
  q: tf.Scalar,
): tf.Scalar =>
  tf.tidy(() =>
    tf.where(tf.equal(q, 0), tf.scalar(0.5), tf.div(tf.sub(lossNowOnPrevBatch, prevLoss), q))
  );

/** {@link levenbergMarquardtDamping} on the device (float32 scalars; no host read). */
export const levenbergMarquardtDampingOnDevice = (
  lambda: tf.Scalar,
  rho: tf.Scalar,
  decay: number,
): tf.Scalar =>
  tf.tidy(() => {
    const factor = tf.where(
      tf.lessEqual(rho, 0.25),
      tf.scalar(1 / decay),
      tf.where(tf.greater(rho, 0.75), tf.scalar(decay), tf.scalar(1)),
    );
    return tf.clipByValue(tf.mul(lambda, factor), 1e-3, 1);
  });

/** {@link predictedReduction} on the device, from ⟨g, x⟩ and ⟨x, A x⟩ as scalars. */
export const predictedReductionOnDevice = (
  lr: number,
  gDotX: tf.Scalar,
  xDotAx: tf.Scalar,
): tf.Scalar => tf.tidy(() => tf.add(tf.mul(-lr, gDotX), tf.mul(0.5 * lr * lr, xDotAx)));
