/**
 * Losses on logits z ∈ ℝ^{B×C}, each with its value (differentiable by TF.js first-order autodiff),
 * its gradient ∂L/∂z and the closed-form output Hessian product H_L·u
 * (docs/algorithm.md#loss-hessians). All are means over the batch, so H_L is block diagonal with
 * blocks divided by B.
 * @module
 */
import { tf } from "../lib/_deps.ts";

/** A loss with its curvature in output space. `y` are targets shaped like z (one-hot for CE). */
export interface Loss {
  /** The loss's name. */
  readonly name: string;
  /** L(z, y), the mean over the batch. */
  value(z: tf.Tensor, y: tf.Tensor): tf.Scalar;
  /** ∂L/∂z at z. */
  gradient(z: tf.Tensor, y: tf.Tensor): tf.Tensor;
  /** H_L·u, with H_L = ∂²L/∂z² at z. */
  hessianProduct(z: tf.Tensor, y: tf.Tensor, u: tf.Tensor): tf.Tensor;
}

const batch = (z: tf.Tensor) => z.shape[0];

/**
 * Mean softmax cross-entropy, L = (1/B) Σ_b [lse(z_b)·Σ_c y_bc − ⟨y_b, z_b⟩] (hand-written: TF.js's
 * tf.losses.softmaxCrossEntropy cannot be differentiated twice correctly,
 * docs/tfjs-notes.md#softmax-cross-entropy). H_L·u per row: (diag p − p pᵀ)u·Σy / B = p ⊙ (u − ⟨p,
 * u⟩)·Σy / B, with u − ⟨p, u⟩ taken relative to the row's most probable class k
 * (docs/algorithm.md#saturated-outputs): (u − u_k) − Σ_j p_j (u_j − u_k), so a saturated row
 * (p ≈ e_k) keeps its small curvature instead of rounding noise.
 */
export const softmaxCrossEntropy: Loss = {
  name: "softmaxCrossEntropy",
  value: (z, y) =>
    tf.tidy(() => {
      const lse = tf.logSumExp(z, -1, true);
      const perExample = tf.sub(
        tf.mul(tf.squeeze(lse, [-1]), tf.sum(y, -1)),
        tf.sum(tf.mul(y, z), -1),
      );
      return tf.div(tf.sum(perExample), batch(z)) as tf.Scalar;
    }),
  gradient: (z, y) =>
    tf.tidy(() => tf.div(tf.sub(tf.mul(tf.softmax(z), tf.sum(y, -1, true)), y), batch(z))),
  hessianProduct: (z, y, u) =>
    tf.tidy(() => {
      const p = tf.softmax(z);
      const c = z.shape[z.shape.length - 1];
      // u_k exactly: a one-hot row times u sums one product and zeros.
      const top = tf.oneHot(tf.argMax(z, -1), c);
      const rel = tf.sub(u, tf.sum(tf.mul(top, u), -1, true));
      const centred = tf.sub(rel, tf.sum(tf.mul(p, rel), -1, true));
      return tf.div(tf.mul(tf.mul(p, centred), tf.sum(y, -1, true)), batch(z));
    }),
};

/**
 * Mean (over the batch) of Σ_c [softplus(z) − y·z]; H_L·u = σ(z)σ(−z) ⊙ u / B (σ(z)(1 − σ(z)) with
 * no cancellation when σ(z) ≈ 1, docs/algorithm.md#saturated-outputs).
 */
export const sigmoidCrossEntropy: Loss = {
  name: "sigmoidCrossEntropy",
  value: (z, y) =>
    tf.tidy(() => tf.div(tf.sum(tf.sub(tf.softplus(z), tf.mul(y, z))), batch(z)) as tf.Scalar),
  gradient: (z, y) => tf.tidy(() => tf.div(tf.sub(tf.sigmoid(z), y), batch(z))),
  hessianProduct: (z, _y, u) =>
    tf.tidy(() => {
      return tf.div(tf.mul(tf.mul(tf.sigmoid(z), tf.sigmoid(tf.neg(z))), u), batch(z));
    }),
};

/** L = ½ Σ (z − y)² / B (the original's "l2", docs/algorithm.md#loss-hessians); H_L·u = u / B. */
export const squaredError: Loss = {
  name: "squaredError",
  value: (z, y) =>
    tf.tidy(() => tf.div(tf.mul(0.5, tf.sum(tf.squaredDifference(z, y))), batch(z)) as tf.Scalar),
  gradient: (z, y) => tf.tidy(() => tf.div(tf.sub(z, y), batch(z))),
  hessianProduct: (z, _y, u) => tf.div(u, batch(z)),
};

/** Losses by name. */
export const LOSSES = { softmaxCrossEntropy, sigmoidCrossEntropy, squaredError } as const;
