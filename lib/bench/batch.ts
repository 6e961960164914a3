/** A random classification batch for benchmark rows. @module */
import { tf } from "../_deps.ts";
import { type Key, normal, split, uniform } from "../prng.ts";
import type { Batch } from "../curvature/gauss_newton.ts";

/** NHWC inputs N(0, 1) of `shape` and one-hot float32 labels drawn uniformly from `classes`. */
export const randomBatch = (
  key: Key,
  batch: number,
  shape: readonly [number, number, number],
  classes: number,
): Batch => {
  const [kx, ky] = split(key, 2);
  const x = tf.tensor(normal(kx, batch * shape[0] * shape[1] * shape[2]), [batch, ...shape]);
  const y = tf.tidy(() => {
    const labels = Array.from(uniform(ky, batch), (u) => Math.floor(u * classes));
    return tf.oneHot(tf.tensor1d(labels, "int32"), classes).toFloat();
  });
  return { x, y };
};
