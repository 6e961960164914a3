/**
 * Writers of small data sets in the real on-disk formats, for the data layer's tests: IDX
 * (MNIST layout), CIFAR-10 binary batches, and ImageNet TFRecord shards of tf.Examples holding
 * real JPEGs encoded with jpeg-js. Pixel values come from the project's PRNG, so a seed fixes them.
 * @module
 */
import { join } from "node:path";
import { keyFromSeed, uniform } from "../lib/prng.ts";
import { CIFAR10_SPLITS, encodeCifar10 } from "../lib/data/cifar10.ts";
import {
  bytesFeature,
  encodeExample,
  type Feature,
  int64Feature,
} from "../lib/data/example_proto.ts";
import { encodeIdx } from "../lib/data/idx.ts";
import { encodeJpeg, type RgbImage } from "../lib/data/jpeg.ts";
import { MNIST_FILES, type MnistSplit } from "../lib/data/mnist.ts";
import { encodeTfRecord } from "../lib/data/tfrecord.ts";

/** n pseudo-random bytes fixed by `seed`. */
export const randomBytes = (seed: number, n: number): Uint8Array =>
  Uint8Array.from(uniform(keyFromSeed(seed), n, 0, 256), (v) => Math.floor(v));

/** Runs `f` with a fresh temporary directory, removed afterwards. */
export const withTempDir = async <T>(f: (dir: string) => Promise<T>): Promise<T> => {
  const dir = await Deno.makeTempDir({ prefix: "mlhf-data-test-" });
  try {
    return await f(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
};

/** Gzips bytes (for `.gz` IDX files). */
export const gzip = async (bytes: Uint8Array<ArrayBuffer>): Promise<Uint8Array> => {
  const stream = new Blob([bytes]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
};

/**
 * Writes a split of an MNIST-layout data set: n random h×w images and labels `label(i)`.
 * Returns the images and labels written.
 */
export const writeMnistSplit = async (
  dir: string,
  split: MnistSplit,
  n: number,
  { h = 28, w = 28, seed = 1, label = (i: number) => i % 10, gz = false } = {},
): Promise<{ pixels: Uint8Array; labels: Uint8Array }> => {
  const pixels = randomBytes(seed, n * h * w);
  const labels = Uint8Array.from({ length: n }, (_, i) => label(i));
  const write = async (name: string, bytes: Uint8Array<ArrayBuffer>) =>
    await Deno.writeFile(join(dir, gz ? `${name}.gz` : name), gz ? await gzip(bytes) : bytes);
  await write(MNIST_FILES[split].images, encodeIdx([n, h, w], pixels) as Uint8Array<ArrayBuffer>);
  await write(MNIST_FILES[split].labels, encodeIdx([n], labels) as Uint8Array<ArrayBuffer>);
  return { pixels, labels };
};

/**
 * Writes all six CIFAR-10 batch files with `perFile` random images each; labels are
 * (file number · 3 + record) mod 10. Returns the HWC pixels and labels written, per file name.
 */
export const writeCifar10 = async (
  dir: string,
  perFile = 3,
): Promise<Map<string, { pixels: Uint8Array; labels: number[] }>> => {
  const written = new Map<string, { pixels: Uint8Array; labels: number[] }>();
  const names = [...CIFAR10_SPLITS["meta-train"], ...CIFAR10_SPLITS.train, ...CIFAR10_SPLITS.test];
  for (const [f, name] of names.entries()) {
    const pixels = randomBytes(100 + f, perFile * 3072);
    const labels = Array.from({ length: perFile }, (_, r) => (f * 3 + r) % 10);
    await Deno.writeFile(join(dir, name), encodeCifar10(pixels, labels));
    written.set(name, { pixels, labels });
  }
  return written;
};

/** A smooth RGB test image (gradients plus a seeded offset), so JPEG keeps it recognizable. */
export const testImage = (height: number, width: number, seed: number): RgbImage => {
  const data = new Uint8Array(height * width * 3);
  const shift = (seed * 37) % 128;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = 3 * (y * width + x);
      data[p] = (shift + Math.floor((200 * x) / width)) % 256;
      data[p + 1] = (shift + Math.floor((200 * y) / height)) % 256;
      data[p + 2] = (255 - shift) % 256;
    }
  }
  return { height, width, data };
};

/** A tf.Example as build_imagenet_data writes it (the fields the reader uses, plus extras). */
export const imagenetExample = (
  jpegBytes: Uint8Array,
  label: number,
  extra: [string, Feature][] = [],
): Uint8Array =>
  encodeExample([
    ["image/height", int64Feature(1)],
    ["image/class/label", int64Feature(label)],
    ["image/class/synset", bytesFeature(new TextEncoder().encode("n01440764"))],
    ["image/format", bytesFeature(new TextEncoder().encode("JPEG"))],
    ["image/encoded", bytesFeature(jpegBytes)],
    ...extra,
  ]);

/** Concatenates TFRecord-framed records into one shard file's bytes. */
export const tfRecordFile = (records: readonly Uint8Array[]): Uint8Array<ArrayBuffer> => {
  const framed = records.map(encodeTfRecord);
  const out = new Uint8Array(framed.reduce((s, r) => s + r.length, 0));
  let at = 0;
  for (const r of framed) {
    out.set(r, at);
    at += r.length;
  }
  return out;
};

/** One ImageNet fixture record: a real JPEG of a `testImage` and its label. */
export interface ImagenetFixtureRecord {
  readonly height: number;
  readonly width: number;
  readonly seed: number;
  readonly label: number;
}

/** The serialized tf.Example of a fixture record. */
export const fixtureExample = (r: ImagenetFixtureRecord): Uint8Array =>
  imagenetExample(encodeJpeg(testImage(r.height, r.width, r.seed), 95), r.label);

/** Writes shards `<split>-0000i-of-0000n` holding the given records; returns their paths. */
export const writeImagenetShards = async (
  dir: string,
  split: "train" | "validation",
  shards: readonly (readonly ImagenetFixtureRecord[])[],
): Promise<string[]> => {
  const paths: string[] = [];
  for (const [i, records] of shards.entries()) {
    const name = `${split}-${String(i).padStart(5, "0")}-of-${
      String(shards.length).padStart(5, "0")
    }`;
    const path = join(dir, name);
    await Deno.writeFile(path, tfRecordFile(records.map(fixtureExample)));
    paths.push(path);
  }
  return paths;
};
