/**
 * Whether every rank holds the same bits: each rank hashes its tensors (two 32-bit hashes of
 * their float32 words, FNV-1a and a multiply-rotate one), the hashes are gathered with one small
 * all-reduce, and every rank throws the same error naming the ranks that differ from rank 0.
 * Reads the tensors to the host (one read of their concatenation).
 * @module
 */
import { tf } from "../_deps.ts";
import type { Communicator } from "./communicator.ts";

/** Two 32-bit hashes of the float32 words of `ts` (in order). */
export const hashTensors = (ts: readonly tf.Tensor[]): [number, number] => {
  let a = 0x811c9dc5, b = 0x9e3779b9;
  for (const t of ts) {
    const flat = tf.tidy(() => tf.reshape(t, [-1]));
    const words = new Uint32Array(new Float32Array(flat.dataSync()).buffer);
    flat.dispose();
    for (let i = 0; i < words.length; i++) {
      const w = words[i];
      a = Math.imul(a ^ w, 0x01000193);
      b = Math.imul((b << 5) | (b >>> 27), 0x27d4eb2d) ^ w;
    }
    a = Math.imul(a ^ t.size, 0x01000193);
  }
  return [a >>> 0, b >>> 0];
};

/** Parameters (or any state) differ between ranks: the job must stop. */
export class RanksDifferError extends Error {
  /** The error's name. */
  override name = "RanksDifferError";
}

/**
 * Throws {@link RanksDifferError} on every rank when `ts` are not bit-identical across the ranks;
 * `what` names the tensors and the moment (e.g. "parameters after step 40").
 */
export const assertIdentical = (
  ts: readonly tf.Tensor[],
  comm: Communicator,
  what: string,
): void => {
  if (comm.size === 1) return;
  const all = new Float64Array(2 * comm.size);
  const [a, b] = hashTensors(ts);
  all[2 * comm.rank] = a;
  all[2 * comm.rank + 1] = b;
  comm.allreduceSum(all);
  const differ: number[] = [];
  for (let r = 1; r < comm.size; r++) {
    if (all[2 * r] !== all[0] || all[2 * r + 1] !== all[1]) differ.push(r);
  }
  if (differ.length) {
    throw new RanksDifferError(
      `${what}: rank${differ.length > 1 ? "s" : ""} ${differ.join(", ")} of ${comm.size} ` +
        `differ from rank 0 (data-parallel ranks must stay bit-identical)`,
    );
  }
};
