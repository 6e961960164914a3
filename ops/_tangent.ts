/** Helpers for symbolic-zero tangents and broadcasting transposes. @module */
import { tf } from "../lib/_deps.ts";
import type { Tangent } from "./types.ts";

/** a + b where either may be a symbolic zero. */
export const addT = (
  a: Tangent,
  b: Tangent,
): Tangent => (a === null ? b : b === null ? a : tf.add(a, b));

/**
 * The transpose of broadcasting `shape` to ct's shape: sums ct over the broadcast axes and reshapes
 * to `shape` (NumPy broadcasting rules, as TF.js applies them).
 */
export const unbroadcast = (ct: tf.Tensor, shape: readonly number[]): tf.Tensor => {
  if (tf.util.arraysEqual(ct.shape, [...shape])) return ct;
  const lead = ct.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < ct.rank; i++) {
    if (i < lead || (shape[i - lead] === 1 && ct.shape[i] !== 1)) axes.push(i);
  }
  const summed = axes.length ? tf.sum(ct, axes, true) : ct;
  return tf.reshape(summed, [...shape]);
};
