/**
 * Scale-free inputs for MLHF's meta-networks (`featureNorm: "rms"`,
 * docs/algorithm.md#scale-free-features; not in the original, whose networks see tanh of the raw
 * g, r and x). Per parameter tensor, a running mean square ν of the gradient and one of x_prev:
 *   ν ← m on the first nonzero m, else β·ν + (1 − β)·m,   m = mean(v²),
 * and the features become g/√ν_g, r/√ν_g, x/√ν_x before the tanh. Scaling a tensor's g and r by
 * c (and its x by c′, as a reparameterization θ = s·φ does with c = s, c′ = 1/s) scales its ν's by
 * c² and c′², so the features do not change. Everything is device-side (no host read).
 * @module
 */
import { tf } from "../../_deps.ts";

/** The running mean squares: one scalar per parameter leaf, for g and for x. */
export interface FeatureNormState {
  /** ν_g per leaf. */
  readonly g: readonly tf.Scalar[];
  /** ν_x per leaf. */
  readonly x: readonly tf.Scalar[];
}

/** β, the running mean square's decay. */
export const FEATURE_NORM_DECAY = 0.9;
/** Added under the square root so that an all-zero feature (x_prev at the first step) stays 0. */
const TINY = 1e-30;

/** The zero state (ν = 0: the first nonzero mean square is taken as it is). */
export const initFeatureNorm = (leafCount: number): FeatureNormState => ({
  g: Array.from({ length: leafCount }, () => tf.scalar(0)),
  x: Array.from({ length: leafCount }, () => tf.scalar(0)),
});

/**
 * ν′ = m when ν = 0, else β·ν + (1 − β)·m, with m = mean(v²). Written with sign(ν) ∈ {0, 1}
 * rather than a comparison, so that it may sit on an autodiff tape (TF.js has no gradient for
 * Equal; in meta-training x_prev is a stop-gradient of a taped value).
 */
export const updateMeanSquare = (
  nu: tf.Scalar,
  v: tf.Tensor,
  beta = FEATURE_NORM_DECAY,
): tf.Scalar =>
  tf.tidy(() => {
    const m = tf.mean(tf.square(v));
    const w = tf.sign(nu);
    const ema = tf.add(tf.mul(nu, beta), tf.mul(m, 1 - beta));
    return tf.add(tf.mul(w, ema), tf.mul(tf.sub(1, w), m)) as tf.Scalar;
  });

/** v/√(ν + 1e-30). */
export const normalizeBy = (v: tf.Tensor, nu: tf.Scalar): tf.Tensor =>
  tf.tidy(() => tf.div(v, tf.sqrt(tf.add(nu, TINY))));

/**
 * One step: the updated state from this step's gradient leaves and x_prev leaves, and a function
 * that normalizes a leaf's feature of type `g` (gradient units: g, r) or `x` (x_prev, x₀).
 */
export const featureNormStep = (
  s: FeatureNormState,
  g: readonly tf.Tensor[],
  xPrev: readonly tf.Tensor[],
): {
  next: FeatureNormState;
  normalize: (v: tf.Tensor, leaf: number, as: "g" | "x") => tf.Tensor;
} => {
  if (s.g.length !== g.length || s.x.length !== xPrev.length) {
    throw new RangeError(
      `feature norm: state for ${s.g.length} leaves, got ${g.length} gradient leaves`,
    );
  }
  const next = {
    g: g.map((t, i) => updateMeanSquare(s.g[i], t)),
    x: xPrev.map((t, i) => updateMeanSquare(s.x[i], t)),
  };
  return { next, normalize: (v, leaf, as) => normalizeBy(v, next[as][leaf]) };
};
