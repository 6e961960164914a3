/**
 * The λ networks' meta-loss over one unrolled window (docs/algorithm.md#meta-losses):
 * per step i < T−1 a score m_i of its post-update losses against its pre-update loss, and
 * M = Σ softmax(sg m)_i m_i (the worst steps weigh most).
 *
 * - `raw` (the original's): m_i = ½(ℓ′_i + ℓ_{i+1}) − sg(ℓ_i), a loss difference: it scales with
 *   the loss, so windows with large losses dominate the meta-gradient.
 * - `relative`: m_i = (½(ℓ′_i + ℓ_{i+1}) − sg(ℓ_i)) / sg(ℓ_i), the same difference as a fraction of
 *   the pre-update loss: unchanged, with its meta-gradient, when every loss is scaled by c > 0.
 * @module
 */
import { tf } from "../_deps.ts";
import { detach } from "./detach.ts";

/** The meta-losses of the λ networks (`--meta-loss`). */
export const META_LOSSES = ["raw", "relative"] as const;
/** One of {@link META_LOSSES}. */
export type MetaLossKind = typeof META_LOSSES[number];

/**
 * M for one window from its losses: `ell` ℓ_i (i < T), `ellPrime` ℓ′_i (i < T), `ellNext` ℓ_{i+1}
 * (i < T−1). ℓ_i is cut (stop-gradient) here; M = 0 when T = 1 (no next batch).
 */
export const windowMetaLoss = (
  kind: MetaLossKind,
  ell: readonly tf.Scalar[],
  ellPrime: readonly tf.Scalar[],
  ellNext: readonly tf.Scalar[],
): tf.Scalar => {
  if (ellNext.length === 0) return tf.scalar(0);
  const m = tf.stack(ellNext.map((ln, i) => {
    const before = detach(ell[i]);
    const diff = tf.sub(tf.mul(0.5, tf.add(ellPrime[i], ln)), before);
    return kind === "relative" ? tf.div(diff, before) : diff;
  }));
  const w = tf.softmax(detach(m));
  return tf.sum(tf.mul(w, m)) as tf.Scalar;
};
