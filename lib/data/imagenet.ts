/**
 * ImageNet in the TFRecord layout of TensorFlow's inception `build_imagenet_data.py`: shards
 * `train-00000-of-01024` … and `validation-00000-of-00128`, each record a tf.Example with the JPEG
 * in `image/encoded` and the class in `image/class/label` (1..1000; 1001 outputs, 0 = background).
 *
 * Preprocessing is the original's VGG preprocessing, on [0, 1]-scaled pixels: for training, an
 * aspect-preserving bilinear resize of the short side to a random size in [256, 512], a random
 * 224×224 crop, a random flip and per-channel mean subtraction; for evaluation, a resize of the
 * short side to 256, the central 224×224 crop and the same mean subtraction. All sizes are options,
 * so tests can use tiny images.
 *
 * Shards are streamed record by record (headers scanned, then one record read at a time), so
 * memory is bounded by one record and the shuffle buffer's ids. With `skipCorrupt`, a record that
 * fails its CRC, its tf.Example parse, its label check or JPEG decoding is skipped with a warning
 * and counted (`skipped`); a corrupt header loses the rest of its shard, also counted and warned.
 * @module
 */
import { join } from "node:path";
import type { Key } from "../prng.ts";
import { permutation, stream } from "../prng.ts";
import {
  aspectPreservingSize,
  randomInt,
  resizeBilinearCrop,
  scaleAndSubtractMeans,
  type Uniform,
} from "./augment.ts";
import { DataError, type DataErrorLocation, type DatasetHelp, missingDataError } from "./errors.ts";
import { decodeExample, ProtoError } from "./example_proto.ts";
import { decodeJpeg, type RgbImage } from "./jpeg.ts";
import type { Example, Source } from "./source.ts";
import { type RecordEntry, TfRecordFile } from "./tfrecord.ts";

/** The two splits of the TFRecord build. */
export type ImagenetSplit = "train" | "validation";

/** Shard counts of the standard build. */
export const IMAGENET_SHARDS: Readonly<Record<ImagenetSplit, number>> = {
  train: 1024,
  validation: 128,
};

/** Number of outputs: 1000 classes + background (label 0, never used by a record). */
export const IMAGENET_CLASSES = 1001;

/** The VGG per-channel means (R, G, B) on [0, 1]-scaled pixels. */
export const VGG_MEANS: readonly number[] = [123.68 / 255, 116.78 / 255, 103.94 / 255];

/** Where to get ImageNet in this layout (for missing-data errors). */
export const IMAGENET_HELP: DatasetHelp = {
  name: "ImageNet (TFRecord shards)",
  howToGet:
    "Download ILSVRC2012 from https://image-net.org (account required) and convert it with build_imagenet_data.py from https://github.com/tensorflow/models/tree/archive/research/inception (download_and_preprocess_imagenet.sh), then pass the directory holding the shards as the data dir.",
};

/** A shard's file name, e.g. `train-00007-of-01024`. */
export const imagenetShardName = (split: ImagenetSplit, index: number, count: number): string =>
  `${split}-${String(index).padStart(5, "0")}-of-${String(count).padStart(5, "0")}`;

/** Image sizes and means of the preprocessing (defaults: the original's). */
export interface ImagenetPreprocessing {
  /** Side of the square crop (224). */
  readonly cropSize: number;
  /** Smallest random short side in training (256; the range [resizeMin, resizeMax] is inclusive). */
  readonly resizeMin: number;
  /** Largest random short side in training (512). */
  readonly resizeMax: number;
  /** Short side before the central crop in evaluation (256). */
  readonly evalResize: number;
  /** Per-channel means subtracted from [0, 1]-scaled pixels (VGG_MEANS). */
  readonly means: readonly number[];
}

/** The original's preprocessing sizes. */
export const IMAGENET_PREPROCESSING: ImagenetPreprocessing = {
  cropSize: 224,
  resizeMin: 256,
  resizeMax: 512,
  evalResize: 256,
  means: VGG_MEANS,
};

const checkPreprocessing = (p: ImagenetPreprocessing): void => {
  const ints = [p.cropSize, p.resizeMin, p.resizeMax, p.evalResize];
  if (!ints.every((v) => Number.isInteger(v) && v >= 1)) {
    throw new RangeError(`ImageNet sizes must be positive integers: ${JSON.stringify(p)}`);
  }
  if (p.resizeMin < p.cropSize || p.resizeMax < p.resizeMin || p.evalResize < p.cropSize) {
    throw new RangeError(
      `need cropSize ≤ resizeMin ≤ resizeMax and cropSize ≤ evalResize, got ${JSON.stringify(p)}`,
    );
  }
  if (p.means.length !== 3) throw new RangeError(`means needs 3 channels, got ${p.means.length}`);
};

/** Training preprocessing: random short-side resize, random crop, random flip, mean subtraction. */
export const preprocessImagenetTrain = (
  image: RgbImage,
  r: Uniform,
  p: ImagenetPreprocessing = IMAGENET_PREPROCESSING,
): Float32Array => {
  const side = p.resizeMin + randomInt(r, p.resizeMax - p.resizeMin + 1);
  const resized = aspectPreservingSize(image.height, image.width, side);
  const top = randomInt(r, resized[0] - p.cropSize + 1);
  const left = randomInt(r, resized[1] - p.cropSize + 1);
  const flip = r() < 0.5;
  const shape = [image.height, image.width, 3] as const;
  const out = resizeBilinearCrop(
    image.data,
    shape,
    resized,
    top,
    left,
    p.cropSize,
    p.cropSize,
    flip,
  );
  return scaleAndSubtractMeans(out, 1 / 255, p.means);
};

/** Evaluation preprocessing: short side to `evalResize`, central crop, mean subtraction. */
export const preprocessImagenetEval = (
  image: RgbImage,
  p: ImagenetPreprocessing = IMAGENET_PREPROCESSING,
): Float32Array => {
  const resized = aspectPreservingSize(image.height, image.width, p.evalResize);
  const top = Math.floor((resized[0] - p.cropSize) / 2);
  const left = Math.floor((resized[1] - p.cropSize) / 2);
  const shape = [image.height, image.width, 3] as const;
  const out = resizeBilinearCrop(image.data, shape, resized, top, left, p.cropSize, p.cropSize);
  return scaleAndSubtractMeans(out, 1 / 255, p.means);
};

/** One decoded ImageNet record. */
export interface ImagenetRecord {
  /** The decoded image. */
  readonly image: RgbImage;
  /** 1..numClasses-1 (0 is the background class). */
  readonly label: number;
}

/**
 * Decodes a record's tf.Example: the JPEG in `image/encoded` and the label in
 * `image/class/label`, which must lie in 1..numClasses-1. Errors are DataErrors at `where`.
 */
export const decodeImagenetRecord = (
  data: Uint8Array,
  where: DataErrorLocation,
  numClasses = IMAGENET_CLASSES,
): ImagenetRecord => {
  let features;
  try {
    features = decodeExample(data);
  } catch (e) {
    if (!(e instanceof ProtoError)) throw e;
    throw new DataError(`malformed tf.Example: ${e.message}`, where, { cause: e });
  }
  const encoded = features.get("image/encoded");
  if (encoded?.kind !== "bytes" || encoded.value.length === 0) {
    throw new DataError("tf.Example has no bytes feature image/encoded", where);
  }
  const labelFeature = features.get("image/class/label");
  if (labelFeature?.kind !== "int64" || labelFeature.value.length === 0) {
    throw new DataError("tf.Example has no int64 feature image/class/label", where);
  }
  const label = labelFeature.value[0];
  if (label < 1n || label >= BigInt(numClasses)) {
    throw new DataError(
      `label ${label} out of range 1..${numClasses - 1} (0 is the background class)`,
      where,
    );
  }
  return { image: decodeJpeg(encoded.value[0], where), label: Number(label) };
};

/**
 * The shard paths of a split in `dir`, in index order. A DataError lists the expected names when
 * the directory has none, or names the missing ones when the set is incomplete (unless allowed).
 */
export const findImagenetShards = async (
  dir: string,
  split: ImagenetSplit,
  allowMissingShards = false,
): Promise<string[]> => {
  const pattern = new RegExp(`^${split}-(\\d{5})-of-(\\d{5})$`);
  const found = new Map<number, string>();
  const counts = new Set<number>();
  try {
    for await (const entry of Deno.readDir(dir)) {
      const m = entry.isFile ? pattern.exec(entry.name) : null;
      if (!m) continue;
      found.set(Number(m[1]), entry.name);
      counts.add(Number(m[2]));
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory)) throw e;
  }
  const standard = IMAGENET_SHARDS[split];
  const expectedOf = (count: number) =>
    Array.from({ length: count }, (_, i) => imagenetShardName(split, i, count));
  if (found.size === 0) {
    const expected = expectedOf(standard);
    throw missingDataError(dir, expected, expected, IMAGENET_HELP);
  }
  if (counts.size > 1) {
    throw new DataError(
      `${split} shards from different builds (counts ${
        [...counts].join(", ")
      } in the names) in ${dir}`,
    );
  }
  const count = [...counts][0];
  const indices = [...found.keys()].sort((a, b) => a - b);
  const missing = expectedOf(count).filter((_, i) => !found.has(i));
  if (missing.length && !allowMissingShards) {
    throw missingDataError(dir, expectedOf(count), missing, {
      ...IMAGENET_HELP,
      howToGet: `${IMAGENET_HELP.howToGet} (Pass allowMissingShards to use an incomplete set.)`,
    });
  }
  return indices.map((i) => join(dir, found.get(i)!));
};

/** Where a record is: its shard (index into `shards`) and its place in the file. */
export interface RecordId {
  /** Index into `shards`. */
  readonly shard: number;
  /** The record's place in its file. */
  readonly entry: RecordEntry;
}

/** Options of `imagenetSource`. */
export interface ImagenetOptions extends Partial<ImagenetPreprocessing> {
  /** Directory holding the shards. */
  readonly dataDir: string;
  /** The split to read. */
  readonly split: ImagenetSplit;
  /** Training preprocessing and shuffled shard order (default: split is train). */
  readonly augment?: boolean;
  /** Number of outputs (default 1001). */
  readonly numClasses?: number;
  /** Skip corrupt records with a counted warning instead of failing (default false). */
  readonly skipCorrupt?: boolean;
  /** Receives each warning (default console.warn). */
  readonly onWarning?: (message: string) => void;
  /** Accept an incomplete shard set (default false). */
  readonly allowMissingShards?: boolean;
  /** Shard files kept open for reading records (default 4). */
  readonly maxOpenFiles?: number;
}

/** An ImageNet source: a pipeline `Source` that counts the corrupt records it skipped. */
export interface ImagenetSource extends Source<RecordId> {
  /** The shard files, in index order. */
  readonly shards: readonly string[];
  /** Corrupt records (or shard tails) skipped so far. */
  readonly skipped: number;
  /** Closes open shard files (they reopen on demand). */
  close(): void;
}

/** Opens a split of the TFRecord ImageNet as a pipeline source. */
export const imagenetSource = async (options: ImagenetOptions): Promise<ImagenetSource> => {
  const p: ImagenetPreprocessing = {
    cropSize: options.cropSize ?? IMAGENET_PREPROCESSING.cropSize,
    resizeMin: options.resizeMin ?? IMAGENET_PREPROCESSING.resizeMin,
    resizeMax: options.resizeMax ?? IMAGENET_PREPROCESSING.resizeMax,
    evalResize: options.evalResize ?? IMAGENET_PREPROCESSING.evalResize,
    means: options.means ?? IMAGENET_PREPROCESSING.means,
  };
  checkPreprocessing(p);
  const { split, skipCorrupt = false } = options;
  const augment = options.augment ?? split === "train";
  const numClasses = options.numClasses ?? IMAGENET_CLASSES;
  const warn = options.onWarning ?? ((m: string) => console.warn(m));
  const maxOpen = Math.max(1, options.maxOpenFiles ?? 4);
  const shards = await findImagenetShards(options.dataDir, split, options.allowMissingShards);
  const open = new Map<number, TfRecordFile>();
  let skipped = 0;

  const fileFor = async (shard: number): Promise<TfRecordFile> => {
    let file = open.get(shard);
    if (file) open.delete(shard);
    else {
      file = await TfRecordFile.open(shards[shard]);
      if (open.size >= maxOpen) {
        const [oldest, f] = open.entries().next().value!;
        open.delete(oldest);
        f.close();
      }
    }
    open.set(shard, file);
    return file;
  };

  const skip = (e: unknown, what: string): void => {
    if (!(skipCorrupt && e instanceof DataError)) throw e;
    skipped++;
    warn(`warning: skipping ${what} (${skipped} skipped so far): ${e.message}`);
  };

  const sizes = augment ? `${p.resizeMin}..${p.resizeMax}` : `${p.evalResize}`;
  return {
    name: `imagenet/${split}${augment ? "+augment" : ""}(crop ${p.cropSize}, short side ${sizes})`,
    shape: [p.cropSize, p.cropSize, 3],
    numClasses,
    shards,
    get skipped() {
      return skipped;
    },
    async *ids(_epoch: number, key: Key) {
      const order = augment ? permutation(key, shards.length) : shards.map((_, i) => i);
      for (const shard of order) {
        const file = await TfRecordFile.open(shards[shard]);
        try {
          for await (const entry of file.entries()) yield { shard, entry };
        } catch (e) {
          skip(e, "the rest of a shard after a corrupt record header");
        } finally {
          file.close();
        }
      }
    },
    async load({ shard, entry }: RecordId, key: Key): Promise<Example | null> {
      const where = { file: shards[shard], record: entry.index, offset: entry.offset };
      try {
        const data = await (await fileFor(shard)).read(entry);
        const { image, label } = decodeImagenetRecord(data, where, numClasses);
        const pixels = augment
          ? preprocessImagenetTrain(image, stream(key), p)
          : preprocessImagenetEval(image, p);
        return { image: pixels, label };
      } catch (e) {
        skip(e, "a corrupt record");
        return null;
      }
    },
    close() {
      for (const f of open.values()) f.close();
      open.clear();
    },
  };
};
