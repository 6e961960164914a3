/**
 * Catching non-finite state at the step where it appears, at the cost of one device-side reduction:
 * `finiteFlag` reduces every float32 tensor of some values (parameters, optimizer state, …) to one
 * scalar for the caller to read in the same host sync as a number it reads anyway (the step's
 * loss). Only when the flag says non-finite does `nonFinitePath` (slow: one read per tensor) find
 * which tensor, by its path in the tree; it is the authority (see `finiteFlag`). Both read
 * asynchronously (webgpu under Deno has no synchronous read).
 * @module
 */
import { tf } from "../_deps.ts";
import { stateTensors } from "./base.ts";

/**
 * A float32 scalar, computed on the device: 1 when the sum of all float32 entries inside `values`
 * is finite, else 0. A NaN or ±∞ entry always makes it 0; finite entries whose sum overflows
 * float32 (|sum| > 3.4e38) also do, a false alarm that `nonFinitePath` then clears. One plain sum
 * per tensor (one pass over its entries, no temporary as large as it), then one over the sums.
 */
export const finiteFlag = (...values: unknown[]): tf.Scalar =>
  tf.tidy(() => {
    const sums = values.flatMap((v) => stateTensors(v))
      .filter((t) => t.dtype === "float32")
      .map((t) => tf.sum(t));
    return sums.length
      ? tf.cast(tf.isFinite(tf.sum(tf.stack(sums))), "float32") as tf.Scalar
      : tf.scalar(1);
  });

const isFiniteTensor = async (t: tf.Tensor): Promise<boolean> => {
  if (t.dtype !== "float32") return true;
  const all = tf.tidy(() => tf.all(tf.isFinite(t)));
  try {
    return (await all.data())[0] === 1;
  } finally {
    all.dispose();
  }
};

/**
 * The path ("w1", "0/rnn/dense/kernel/lambda/c/0") of the first float32 tensor inside `value` that
 * holds a NaN or ±∞, in depth-first key order; "" when `value` itself is that tensor; null when
 * all are finite. Reads each tensor it visits: only for after a `finiteFlag` said non-finite.
 */
export const nonFinitePath = (value: unknown): Promise<string | null> => {
  const walk = async (x: unknown, path: string[]): Promise<string | null> => {
    if (x instanceof tf.Tensor) return (await isFiniteTensor(x)) ? null : path.join("/");
    if (x === null || typeof x !== "object") return null;
    for (const [k, v] of Object.entries(x)) {
      const found = await walk(v, [...path, k]);
      if (found !== null) return found;
    }
    return null;
  };
  return walk(value, []);
};

/**
 * The first non-finite tensor among named values, as "<name><sep><path>" (e.g. "params/w1",
 * "optimizer state rnn/dense/kernel/lambda/c/0"), or null when all are finite.
 */
export const describeNonFinite = async (
  named: readonly (readonly [name: string, value: unknown, sep?: string])[],
): Promise<string | null> => {
  for (const [name, value, sep = " "] of named) {
    const path = await nonFinitePath(value);
    if (path !== null) return path === "" ? name : `${name}${sep}${path}`;
  }
  return null;
};
