/**
 * One entry point from a data set's name, split and directory to a pipeline source, for the
 * command-line tasks.
 * @module
 */
import { CIFAR10_SPLITS, cifar10Source, type Cifar10Split, readCifar10 } from "./cifar10.ts";
import { type ImagenetPreprocessing, imagenetSource, type ImagenetSplit } from "./imagenet.ts";
import { MNIST_FILES, type MnistSplit, readMnist } from "./mnist.ts";
import { type Source, unitScaleSource } from "./source.ts";
import { subsetSource } from "./subset.ts";

/** Data sets known by name. */
export const DATASET_NAMES = ["mnist", "fashion-mnist", "cifar10", "imagenet"] as const;
/** A data set known by name. */
export type DatasetName = typeof DATASET_NAMES[number];

/** The splits of each data set (the first is the training split). */
export const DATASET_SPLITS: Readonly<Record<DatasetName, readonly string[]>> = {
  mnist: ["train", "test", "meta-train", "eval-train"],
  "fashion-mnist": ["train", "test", "meta-train", "eval-train"],
  cifar10: ["meta-train", "train", "test"],
  imagenet: ["train", "validation"],
};

/**
 * MNIST-style sets split their 60 000 training images like the original splits CIFAR
 * (docs/algorithm.md#meta-training-data): `meta-train` = the first 30 000 (meta-training),
 * `eval-train` = the last 30 000 (evaluation).
 */
export const IDX_HALF = 30_000;

/**
 * Where a split's examples come from, in words for messages: "images 30000–60000 of
 * train-images-idx3-ubyte", "data_batch_4.bin, data_batch_5.bin", "the train-*-of-* shards".
 */
export const describeSplit = (dataset: DatasetName, split: string): string => {
  switch (dataset) {
    case "mnist":
    case "fashion-mnist": {
      const file = MNIST_FILES[split === "test" ? "test" : "train"].images;
      if (split === "meta-train") return `images 0–${IDX_HALF} of ${file}`;
      if (split === "eval-train") return `images ${IDX_HALF}–${2 * IDX_HALF} of ${file}`;
      return file;
    }
    case "cifar10":
      return (CIFAR10_SPLITS[split as Cifar10Split] ?? []).join(", ");
    case "imagenet":
      return `the ${split}-*-of-* shards`;
  }
};

/** What to open. */
export interface DatasetSpec {
  /** The data set. */
  readonly dataset: DatasetName;
  /** The split, one of {@link DATASET_SPLITS} for the data set. */
  readonly split: string;
  /** Data directory; optional for mnist (embedded), required otherwise. */
  readonly dataDir?: string;
  /** Training augmentation (default: on for training splits of cifar10 and imagenet). */
  readonly augment?: boolean;
  /** ImageNet: skip corrupt records with a counted warning. */
  readonly skipCorrupt?: boolean;
  /** ImageNet: receives warnings (default console.warn). */
  readonly onWarning?: (message: string) => void;
  /** ImageNet: preprocessing sizes. */
  readonly imagenet?: Partial<ImagenetPreprocessing>;
}

/** Opens a data set split as a pipeline source (close it with `source.close?.()` when done). */
export const openSource = async (spec: DatasetSpec): Promise<Source<unknown>> => {
  const { dataset, split, dataDir } = spec;
  if (!DATASET_SPLITS[dataset]?.includes(split)) {
    throw new RangeError(
      `${dataset} has no split "${split}"; its splits are ${DATASET_SPLITS[dataset]?.join(", ")}`,
    );
  }
  const need = (): string => {
    if (dataDir === undefined || dataDir === "") {
      throw new RangeError(`${dataset} needs a data directory (see the README, section Data)`);
    }
    return dataDir;
  };
  switch (dataset) {
    case "mnist":
    case "fashion-mnist": {
      const file: MnistSplit = split === "test" ? "test" : "train";
      const opts = dataset === "mnist"
        ? { dataDir: dataDir || undefined }
        : { dataDir: need(), name: "fashion-mnist" };
      const whole = unitScaleSource(await readMnist(file, opts));
      if (split === "meta-train") return subsetSource(whole, 0, IDX_HALF);
      if (split === "eval-train") return subsetSource(whole, IDX_HALF, 2 * IDX_HALF);
      return whole;
    }
    case "cifar10":
      return cifar10Source(await readCifar10(split as Cifar10Split, need()), spec.augment);
    case "imagenet":
      return await imagenetSource({
        ...spec.imagenet,
        dataDir: need(),
        split: split as ImagenetSplit,
        augment: spec.augment,
        skipCorrupt: spec.skipCorrupt,
        onWarning: spec.onWarning,
      }) as Source<unknown>;
  }
};
