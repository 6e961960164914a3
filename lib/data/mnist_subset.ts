/**
 * A compact binary of an MNIST subset for the browser page (`deno task web` writes it from the
 * embedded data set; `web/main.ts` reads it): the ASCII magic `MLHFMNS1`, then four little-endian
 * uint32 (train count, test count, height, width), then the train pixels (uint8, N·H·W), the train
 * labels (uint8, N), the test pixels and the test labels. Pure: no file or Deno access.
 * @module
 */

/** The file's first 8 bytes. */
export const MNIST_SUBSET_MAGIC = "MLHFMNS1";
const HEADER = 8 + 4 * 4;

/** One split: pixels (uint8, row-major [N, H, W]) and labels (0..9). */
export interface SubsetSplit {
  /** N·H·W bytes. */
  readonly pixels: Uint8Array;
  /** N labels. */
  readonly labels: Uint8Array;
}

/** A decoded subset. */
export interface MnistSubset {
  /** Image height. */
  readonly height: number;
  /** Image width. */
  readonly width: number;
  /** The training images. */
  readonly train: SubsetSplit;
  /** The test images. */
  readonly test: SubsetSplit;
}

const count = (s: SubsetSplit, h: number, w: number, name: string): number => {
  const n = s.labels.length;
  if (s.pixels.length !== n * h * w) {
    throw new RangeError(
      `mnist subset: ${name} has ${s.pixels.length} pixel bytes, expected ${n}·${h}·${w} = ${
        n * h * w
      }`,
    );
  }
  return n;
};

/** Encodes a subset (see the module doc). */
export const encodeMnistSubset = (s: MnistSubset): Uint8Array => {
  const nTrain = count(s.train, s.height, s.width, "train");
  const nTest = count(s.test, s.height, s.width, "test");
  const px = s.height * s.width;
  const out = new Uint8Array(HEADER + (nTrain + nTest) * (px + 1));
  out.set(new TextEncoder().encode(MNIST_SUBSET_MAGIC), 0);
  const view = new DataView(out.buffer);
  [nTrain, nTest, s.height, s.width].forEach((v, i) => view.setUint32(8 + 4 * i, v, true));
  let at = HEADER;
  for (const part of [s.train.pixels, s.train.labels, s.test.pixels, s.test.labels]) {
    out.set(part, at);
    at += part.length;
  }
  return out;
};

/** Decodes a subset; a wrong magic, size or label is an error naming `file` and what was expected. */
export const decodeMnistSubset = (bytes: Uint8Array, file: string): MnistSubset => {
  if (bytes.length < HEADER) {
    throw new RangeError(`${file}: ${bytes.length} bytes, shorter than the ${HEADER}-byte header`);
  }
  const magic = new TextDecoder().decode(bytes.subarray(0, 8));
  if (magic !== MNIST_SUBSET_MAGIC) {
    throw new RangeError(
      `${file}: magic ${JSON.stringify(magic)}, expected "${MNIST_SUBSET_MAGIC}"`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const [nTrain, nTest, height, width] = [0, 1, 2, 3].map((i) => view.getUint32(8 + 4 * i, true));
  const px = height * width;
  const expected = HEADER + (nTrain + nTest) * (px + 1);
  if (bytes.length !== expected) {
    throw new RangeError(
      `${file}: ${bytes.length} bytes, expected ${expected} for ${nTrain} train and ${nTest} test ${height}×${width} images`,
    );
  }
  let at = HEADER;
  const take = (n: number): Uint8Array => bytes.subarray(at, at += n);
  const train = { pixels: take(nTrain * px), labels: take(nTrain) };
  const test = { pixels: take(nTest * px), labels: take(nTest) };
  for (const [name, s] of [["train", train], ["test", test]] as const) {
    const bad = s.labels.findIndex((l) => l > 9);
    if (bad >= 0) {
      throw new RangeError(`${file}: ${name} label ${bad} is ${s.labels[bad]}, expected 0..9`);
    }
  }
  return { height, width, train, test };
};
