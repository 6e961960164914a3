/**
 * CIFAR-10, binary version (`cifar-10-batches-bin`): files of 3073-byte records, one label byte
 * then 3072 pixel bytes as three 32×32 planes (R, G, B), converted here to HWC. The splits are the
 * original's: meta-train = data_batch_1..3, train = data_batch_4..5, test = test_batch.
 * @module
 */
import { join } from "node:path";
import { DataError, type DatasetHelp, missingDataError } from "./errors.ts";
import { isDirectory, isFile, readWholeFile } from "./files.ts";
import type { ByteImages, ImageShape } from "./images.ts";
import { padCropFlip, standardize, type Uniform } from "./augment.ts";
import { byteImageSource, type Source } from "./source.ts";

/** CIFAR-10 splits as the original uses them. */
export type Cifar10Split = "meta-train" | "train" | "test";

/** The batch files of each split. */
export const CIFAR10_SPLITS: Readonly<Record<Cifar10Split, readonly string[]>> = {
  "meta-train": ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin"],
  train: ["data_batch_4.bin", "data_batch_5.bin"],
  test: ["test_batch.bin"],
};

/** Every file of the binary distribution that the splits use. */
export const CIFAR10_FILES: readonly string[] = [
  ...CIFAR10_SPLITS["meta-train"],
  ...CIFAR10_SPLITS.train,
  ...CIFAR10_SPLITS.test,
];

/** Bytes per record: 1 label + 32·32·3 pixels. */
export const CIFAR10_RECORD_BYTES = 3073;
/** Shape of one CIFAR-10 image (HWC). */
export const CIFAR10_SHAPE: ImageShape = [32, 32, 3];
/** Number of CIFAR-10 classes. */
export const CIFAR10_CLASSES = 10;

/** Where to get CIFAR-10 (for missing-data errors). */
export const CIFAR10_HELP: DatasetHelp = {
  name: "CIFAR-10 (binary version)",
  howToGet:
    "Download https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz, unpack it (tar xzf) and pass the cifar-10-batches-bin directory (or its parent) as the data dir.",
};

/** The directory holding the batch files: `dir` itself or `dir/cifar-10-batches-bin`. */
export const findCifar10Dir = async (dir: string, split: Cifar10Split): Promise<string> => {
  const nested = join(dir, "cifar-10-batches-bin");
  const base = !(await isFile(join(dir, CIFAR10_SPLITS[split][0]))) && await isDirectory(nested)
    ? nested
    : dir;
  const missing: string[] = [];
  for (const name of CIFAR10_SPLITS[split]) {
    if (!(await isFile(join(base, name)))) missing.push(name);
  }
  if (missing.length) throw missingDataError(base, CIFAR10_SPLITS[split], missing, CIFAR10_HELP);
  return base;
};

/**
 * Parses one CIFAR-10 binary file into HWC bytes and labels, checking that its size is a multiple
 * of 3073 and every label is in 0..9. `file` names it in errors.
 */
export const parseCifar10 = (
  bytes: Uint8Array,
  file: string,
): { pixels: Uint8Array; labels: Int32Array } => {
  if (bytes.length === 0 || bytes.length % CIFAR10_RECORD_BYTES !== 0) {
    const whole = Math.floor(bytes.length / CIFAR10_RECORD_BYTES);
    throw new DataError(
      `file size ${bytes.length} is not a positive multiple of ${CIFAR10_RECORD_BYTES} (1 label + 3072 pixel bytes): truncated or not a CIFAR-10 binary file; ${whole} whole records, ${
        bytes.length - whole * CIFAR10_RECORD_BYTES
      } bytes left over`,
      { file, record: whole, offset: whole * CIFAR10_RECORD_BYTES },
    );
  }
  const n = bytes.length / CIFAR10_RECORD_BYTES;
  const plane = 32 * 32;
  const pixels = new Uint8Array(n * 3 * plane);
  const labels = new Int32Array(n);
  for (let r = 0; r < n; r++) {
    const at = r * CIFAR10_RECORD_BYTES;
    const label = bytes[at];
    if (label >= CIFAR10_CLASSES) {
      throw new DataError(`label ${label} out of range 0..${CIFAR10_CLASSES - 1}`, {
        file,
        record: r,
        offset: at,
      });
    }
    labels[r] = label;
    const src = at + 1, dst = r * 3 * plane;
    for (let p = 0; p < plane; p++) {
      pixels[dst + 3 * p] = bytes[src + p];
      pixels[dst + 3 * p + 1] = bytes[src + plane + p];
      pixels[dst + 3 * p + 2] = bytes[src + 2 * plane + p];
    }
  }
  return { pixels, labels };
};

/** Reads a CIFAR-10 split from `dataDir` (the batches directory or its parent) as HWC bytes. */
export const readCifar10 = async (split: Cifar10Split, dataDir: string): Promise<ByteImages> => {
  const dir = await findCifar10Dir(dataDir, split);
  const parts = [];
  for (const name of CIFAR10_SPLITS[split]) {
    const path = join(dir, name);
    parts.push(parseCifar10(await readWholeFile(path), path));
  }
  const total = parts.reduce((s, p) => s + p.labels.length, 0);
  const pixels = new Uint8Array(total * 3072), labels = new Int32Array(total);
  let at = 0;
  for (const p of parts) {
    pixels.set(p.pixels, at * 3072);
    labels.set(p.labels, at);
    at += p.labels.length;
  }
  return {
    name: `cifar10/${split}`,
    pixels,
    labels,
    shape: CIFAR10_SHAPE,
    numClasses: CIFAR10_CLASSES,
  };
};

/** Encodes HWC images and labels as a CIFAR-10 binary file (for fixtures and subsets). */
export const encodeCifar10 = (pixels: Uint8Array, labels: ArrayLike<number>): Uint8Array => {
  const n = labels.length, plane = 32 * 32;
  if (pixels.length !== n * 3 * plane) {
    throw new RangeError(`${n} labels need ${n * 3 * plane} pixel bytes, got ${pixels.length}`);
  }
  const out = new Uint8Array(n * CIFAR10_RECORD_BYTES);
  for (let r = 0; r < n; r++) {
    const at = r * CIFAR10_RECORD_BYTES, src = r * 3 * plane;
    out[at] = labels[r];
    for (let p = 0; p < plane; p++) {
      for (let c = 0; c < 3; c++) out[at + 1 + c * plane + p] = pixels[src + 3 * p + c];
    }
  }
  return out;
};

/** Training preprocessing: pad to 40×40, random 32×32 crop, random flip, standardization. */
export const preprocessCifar10Train = (pixels: ArrayLike<number>, r: Uniform): Float32Array =>
  standardize(padCropFlip(pixels, CIFAR10_SHAPE, 4, r));

/** Test preprocessing: per-image standardization only. */
export const preprocessCifar10Test = (pixels: ArrayLike<number>): Float32Array =>
  standardize(Float32Array.from(pixels));

/**
 * A pipeline source over CIFAR-10 images: training augmentation when `augment` (default: every
 * split but test), standardization only otherwise.
 */
export const cifar10Source = (
  images: ByteImages,
  augment = !images.name.endsWith("/test"),
): Source<number> =>
  byteImageSource(
    images,
    `${images.name}${augment ? "+augment" : ""}`,
    CIFAR10_SHAPE,
    augment ? preprocessCifar10Train : preprocessCifar10Test,
  );
