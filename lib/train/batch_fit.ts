/**
 * One batch must fit in the split it is drawn from: a split with fewer examples than the batch
 * size is bad input (a `FlagError`, exit code 2) named in one line with the split, its size and
 * where its examples come from, before any run starts, never a run that spins or trains 0 steps.
 * @module
 */
import { FlagError } from "../cli/flags.ts";
import { type DatasetName, describeSplit } from "../data/dataset.ts";

/** A split and how many examples it holds. */
export interface SplitSize {
  /** The data set the split belongs to. */
  readonly dataset: DatasetName;
  /** The split's name (`meta-train`, `eval-train`, …). */
  readonly split: string;
  /** Examples in the split. */
  readonly examples: number;
}

/**
 * The error for a batch larger than its split, e.g. "--batch-size 40000 exceeds the eval-train
 * split of mnist (30000 images, images 30000–60000 of train-images-idx3-ubyte)".
 */
export const batchTooLarge = (batchSize: number, s: SplitSize): FlagError =>
  new FlagError(
    `--batch-size ${batchSize} exceeds the ${s.split} split of ${s.dataset} (${s.examples} ` +
      `images, ${describeSplit(s.dataset, s.split)})${
        s.examples > 0 ? `: pass --batch-size ${s.examples} or less` : ": the split is empty"
      }`,
  );

/** Throws `batchTooLarge` unless one batch fits in the split. */
export const checkBatchFits = (batchSize: number, s: SplitSize): void => {
  if (s.examples < batchSize) throw batchTooLarge(batchSize, s);
};
