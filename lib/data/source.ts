/**
 * What the pipeline draws from: a `Source` lists the ids of an epoch in storage order and loads
 * (and preprocesses) one example per id, its augmentation seeded by a key the pipeline derives
 * from the seed, the epoch and the example's place in the epoch, so a resumed stream is identical.
 * @module
 */
import type { Key } from "../prng.ts";
import { stream } from "../prng.ts";
import type { Uniform } from "./augment.ts";
import { type ByteImages, imageBytes, imageCount, type ImageShape } from "./images.ts";

/** One preprocessed example: an HWC float32 image and its integer label. */
export interface Example {
  /** The image, HWC float32. */
  readonly image: Float32Array;
  /** Its class label. */
  readonly label: number;
}

/** A source of examples for the pipeline. */
export interface Source<Id = unknown> {
  /** Identifies the data and its preprocessing (part of a stream's fingerprint). */
  readonly name: string;
  /** Shape of every example image it yields. */
  readonly shape: ImageShape;
  /** Labels lie in 0..numClasses-1. */
  readonly numClasses: number;
  /** The ids of one epoch in storage order (the pipeline shuffles them); `key` may order shards. */
  ids(epoch: number, key: Key): Iterable<Id> | AsyncIterable<Id>;
  /** The example for `id`, augmented with randomness from `key`; null to skip a corrupt record. */
  load(id: Id, key: Key): Example | null | Promise<Example | null>;
  /** Releases open files (a source may reopen them when used again). */
  close?(): void | Promise<void>;
}

/** How an in-memory image becomes an example: its bytes and a uniform generator in, HWC out. */
export type Preprocess = (pixels: Uint8Array, r: Uniform) => Float32Array;

/** A source over in-memory byte images; ids are image indices. */
export const byteImageSource = (
  images: ByteImages,
  name: string,
  shape: ImageShape,
  preprocess: Preprocess,
): Source<number> => ({
  name,
  shape,
  numClasses: images.numClasses,
  ids: function* () {
    const n = imageCount(images);
    for (let i = 0; i < n; i++) yield i;
  },
  load: (i, key) => ({
    image: preprocess(imageBytes(images, i), stream(key)),
    label: images.labels[i],
  }),
});

/** Scales bytes to float32 in [0, 1]. */
export const unitScale: Preprocess = (pixels): Float32Array => {
  const out = new Float32Array(pixels.length);
  for (let i = 0; i < out.length; i++) out[i] = pixels[i] / 255;
  return out;
};

/** A source yielding in-memory images scaled to [0, 1] with no augmentation (MNIST). */
export const unitScaleSource = (images: ByteImages): Source<number> =>
  byteImageSource(images, images.name, images.shape, unitScale);
