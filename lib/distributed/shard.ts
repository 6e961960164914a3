/**
 * A rank's shard of a global batch: rows [r·B/N, (r+1)·B/N). Every rank reads the same global
 * batch (same seed, same data order) and keeps its rows, so N ranks on batch B see exactly the
 * examples one process sees on B.
 * @module
 */
import { tf } from "../_deps.ts";

/** Throws unless `batchSize` splits evenly over `size` ranks (the flag named in the message). */
export const checkShardable = (batchSize: number, size: number, flag = "--batch-size"): void => {
  if (batchSize % size !== 0 || batchSize < size) {
    throw new Error(
      `${flag} ${batchSize} does not split evenly over ${size} ranks; expected a multiple of ${size}`,
    );
  }
};

/** Rows [rank·B/size, (rank+1)·B/size) of each tensor (new tensors; B its first dimension). */
export const shardRows = <T extends tf.Tensor>(
  ts: readonly T[],
  rank: number,
  size: number,
): T[] =>
  ts.map((t) => {
    checkShardable(t.shape[0], size, "the batch of");
    const rows = t.shape[0] / size;
    return tf.slice(t, rank * rows, rows) as T;
  });
