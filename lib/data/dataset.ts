/**
 * One entry point from a data set's name, split and directory to a pipeline source, for the
 * command-line tasks.
 * @module
 */
import { cifar10Source, type Cifar10Split, readCifar10 } from "./cifar10.ts";
import { type ImagenetPreprocessing, imagenetSource, type ImagenetSplit } from "./imagenet.ts";
import { type MnistSplit, readMnist } from "./mnist.ts";
import { type Source, unitScaleSource } from "./source.ts";

/** Data sets known by name. */
export const DATASET_NAMES = ["mnist", "fashion-mnist", "cifar10", "imagenet"] as const;
/** A data set known by name. */
export type DatasetName = typeof DATASET_NAMES[number];

/** The splits of each data set (the first is the training split). */
export const DATASET_SPLITS: Readonly<Record<DatasetName, readonly string[]>> = {
  mnist: ["train", "test"],
  "fashion-mnist": ["train", "test"],
  cifar10: ["meta-train", "train", "test"],
  imagenet: ["train", "validation"],
};

/** What to open. */
export interface DatasetSpec {
  readonly dataset: DatasetName;
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
      throw new RangeError(`${dataset} needs a data directory (see lib/data/README.md)`);
    }
    return dataDir;
  };
  switch (dataset) {
    case "mnist":
      return unitScaleSource(
        await readMnist(split as MnistSplit, { dataDir: dataDir || undefined }),
      );
    case "fashion-mnist":
      return unitScaleSource(
        await readMnist(split as MnistSplit, { dataDir: need(), name: "fashion-mnist" }),
      );
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
