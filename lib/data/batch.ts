/**
 * The batch type handed to training code (`x` NHWC float32, `y` int32 labels), its host-side form
 * built by the pipeline, and helpers for one-hot labels and disposal.
 * @module
 */
import { tf } from "../_deps.ts";
import type { FloatImages, ImageShape } from "./images.ts";

/** A batch of images (NHWC float32) and their integer class labels. */
export interface Batch {
  /** Images, [batch, height, width, channels]. */
  readonly x: tf.Tensor4D;
  /** Class labels, [batch] (int32). */
  readonly y: tf.Tensor1D;
}

/** A batch still in host memory (no tensors yet): what the pipeline prefetches. */
export interface HostBatch {
  /** B·H·W·C values. */
  readonly x: Float32Array;
  /** B labels. */
  readonly y: Int32Array;
  /** Shape of one image. */
  readonly shape: ImageShape;
}

/** Uploads a host batch as tensors; the caller owns (and disposes) them. */
export const toBatch = (host: HostBatch): Batch => {
  const n = host.y.length;
  return {
    x: tf.tensor4d(host.x, [n, ...host.shape], "float32"),
    y: tf.tensor1d(host.y, "int32"),
  };
};

/** A whole in-memory image set as one batch of tensors (e.g. a test set for evaluation). */
export const imagesToBatch = (images: FloatImages): Batch => ({
  x: tf.tensor4d(images.pixels, [...images.shape], "float32"),
  y: tf.tensor1d(images.labels, "int32"),
});

/** One-hot float32 labels [B, numClasses] from integer labels. */
export const oneHot = (y: tf.Tensor1D, numClasses: number): tf.Tensor2D =>
  tf.tidy(() => tf.cast(tf.oneHot(y, numClasses), "float32") as tf.Tensor2D);

/** Disposes a batch's tensors (or a window's). */
export const disposeBatch = (b: Batch | readonly Batch[]): void => {
  for (const one of Array.isArray(b) ? b : [b as Batch]) tf.dispose([one.x, one.y]);
};
