/**
 * The Levenberg–Marquardt damping rule as the original's HF(LM) baseline runs it
 * (docs/algorithm.md#levenberg-marquardt-rule, with its quirks, docs/algorithm.md#lm-details):
 * ρ is measured on the previous batch at the start of the next step, q includes the damping term,
 * ρ = 0.5 on the first step (q = 0), and λ is clipped to [1e-3, 1].
 * @module
 */

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
