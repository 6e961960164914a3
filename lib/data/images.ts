/**
 * Labeled images held in memory (MNIST, CIFAR-10): bytes in NHWC order with integer labels, and
 * their float32 form.
 * @module
 */

/** Per-image shape [height, width, channels] (channels last). */
export type ImageShape = readonly [height: number, width: number, channels: number];

/** Images stored as bytes in memory, NHWC, with integer labels in 0..numClasses-1. */
export interface ByteImages {
  /** What the images are, e.g. "mnist/train" (used in messages and stream fingerprints). */
  readonly name: string;
  /** N·H·W·C bytes, image after image, each in HWC order. */
  readonly pixels: Uint8Array;
  /** N labels. */
  readonly labels: Int32Array;
  /** Shape of one image. */
  readonly shape: ImageShape;
  /** Number of classes (labels are in [0, numClasses)). */
  readonly numClasses: number;
}

/** Images as float32 NHWC with integer labels. */
export interface FloatImages {
  /** N·H·W·C values. */
  readonly pixels: Float32Array;
  /** N labels. */
  readonly labels: Int32Array;
  /** [N, H, W, C]. */
  readonly shape: readonly [number, number, number, number];
  /** Number of classes (labels are in [0, numClasses)). */
  readonly numClasses: number;
}

/** Number of elements in one image of the given shape. */
export const imageSize = (shape: ImageShape): number => shape[0] * shape[1] * shape[2];

/** Number of images held. */
export const imageCount = (images: ByteImages): number => images.labels.length;

/** The bytes of image `i` (a view, no copy). */
export const imageBytes = (images: ByteImages, i: number): Uint8Array => {
  const n = imageSize(images.shape);
  return images.pixels.subarray(i * n, (i + 1) * n);
};

/** Byte images scaled to float32 in [0, 1] (x / 255). */
export const toUnitFloat = (images: ByteImages): FloatImages => {
  const pixels = new Float32Array(images.pixels.length);
  for (let i = 0; i < pixels.length; i++) pixels[i] = images.pixels[i] / 255;
  return {
    pixels,
    labels: images.labels,
    shape: [imageCount(images), ...images.shape],
    numClasses: images.numClasses,
  };
};
