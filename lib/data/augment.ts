/**
 * Image preprocessing as pure functions on HWC arrays (no tensors): crop-or-pad with flip,
 * per-image standardization, aspect-preserving bilinear resize fused with a crop, and per-channel
 * mean subtraction. Randomness comes in as a uniform [0, 1) generator (`prng.stream`).
 * @module
 */
import type { ImageShape } from "./images.ts";

/** A uniform [0, 1) generator, as `prng.stream(key)` returns. */
export type Uniform = () => number;

/** A uniform integer in 0..n-1. */
export const randomInt = (r: Uniform, n: number): number => Math.min(n - 1, Math.floor(r() * n));

/**
 * The outH×outW window of `src` whose top-left corner is at (top, left), reading zeros outside the
 * image (so negative offsets pad), optionally mirrored left–right. Returns float32 HWC.
 */
export const cropOrPad = (
  src: ArrayLike<number>,
  [h, w, c]: ImageShape,
  top: number,
  left: number,
  outH: number,
  outW: number,
  flip = false,
): Float32Array => {
  const out = new Float32Array(outH * outW * c);
  for (let i = 0; i < outH; i++) {
    const y = top + i;
    if (y < 0 || y >= h) continue;
    for (let j = 0; j < outW; j++) {
      const x = left + (flip ? outW - 1 - j : j);
      if (x < 0 || x >= w) continue;
      const s = (y * w + x) * c, d = (i * outW + j) * c;
      for (let k = 0; k < c; k++) out[d + k] = src[s + k];
    }
  }
  return out;
};

/**
 * CIFAR-style training augmentation: zero-pad by `pad` on every side, take a random h×w crop
 * (offsets uniform in 0..2·pad) and flip left–right with probability 1/2.
 */
export const padCropFlip = (
  src: ArrayLike<number>,
  shape: ImageShape,
  pad: number,
  r: Uniform,
): Float32Array => {
  const top = randomInt(r, 2 * pad + 1) - pad;
  const left = randomInt(r, 2 * pad + 1) - pad;
  const flip = r() < 0.5;
  return cropOrPad(src, shape, top, left, shape[0], shape[1], flip);
};

/**
 * Per-image standardization in place, as `tf.image.per_image_standardization`:
 * (x − mean) / max(std, 1/√n) over all n values of the image.
 */
export const standardize = (x: Float32Array): Float32Array => {
  const n = x.length;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += x[i];
  const mean = sum / n;
  let sq = 0;
  for (let i = 0; i < n; i++) sq += (x[i] - mean) ** 2;
  const scale = 1 / Math.max(Math.sqrt(sq / n), 1 / Math.sqrt(n));
  for (let i = 0; i < n; i++) x[i] = (x[i] - mean) * scale;
  return x;
};

/** Rounds half to even, as `tf.rint`. */
const rint = (v: number): number => {
  const f = Math.floor(v), d = v - f;
  return d > 0.5 || (d === 0.5 && f % 2 !== 0) ? f + 1 : f;
};

/** [height, width] after scaling so the shorter side is `shortSide` (aspect preserved). */
export const aspectPreservingSize = (
  height: number,
  width: number,
  shortSide: number,
): [number, number] => {
  const scale = shortSide / Math.min(height, width);
  return [Math.max(1, rint(height * scale)), Math.max(1, rint(width * scale))];
};

/**
 * Bilinearly resizes `src` (HWC) to resized[0]×resized[1] and returns only the outH×outW window at
 * (top, left) of the result, optionally flipped: the same values as resizing then cropping, without
 * building the whole resized image. Uses TF 1's `resize_bilinear` convention (align_corners=false,
 * no half-pixel centers: source coordinate = destination · in/out).
 */
export const resizeBilinearCrop = (
  src: ArrayLike<number>,
  [h, w, c]: ImageShape,
  resized: readonly [number, number],
  top: number,
  left: number,
  outH: number,
  outW: number,
  flip = false,
): Float32Array => {
  const [rh, rw] = resized;
  if (top < 0 || left < 0 || top + outH > rh || left + outW > rw) {
    throw new RangeError(
      `crop ${outH}×${outW} at (${top}, ${left}) does not fit in the resized ${rh}×${rw} image`,
    );
  }
  const sy = h / rh, sx = w / rw;
  const x0 = new Int32Array(outW), x1 = new Int32Array(outW), fx = new Float64Array(outW);
  for (let j = 0; j < outW; j++) {
    const col = left + (flip ? outW - 1 - j : j);
    const x = col * sx;
    const xf = Math.floor(x);
    x0[j] = Math.min(xf, w - 1);
    x1[j] = Math.min(xf + 1, w - 1);
    fx[j] = x - xf;
  }
  const out = new Float32Array(outH * outW * c);
  for (let i = 0; i < outH; i++) {
    const y = (top + i) * sy;
    const yf = Math.floor(y);
    const y0 = Math.min(yf, h - 1), y1 = Math.min(yf + 1, h - 1), fy = y - yf;
    const r0 = y0 * w, r1 = y1 * w;
    for (let j = 0; j < outW; j++) {
      const a = (r0 + x0[j]) * c,
        b = (r0 + x1[j]) * c,
        d0 = (r1 + x0[j]) * c,
        d1 = (r1 + x1[j]) * c;
      const o = (i * outW + j) * c, u = fx[j];
      for (let k = 0; k < c; k++) {
        const upper = src[a + k] + (src[b + k] - src[a + k]) * u;
        const lower = src[d0 + k] + (src[d1 + k] - src[d0 + k]) * u;
        out[o + k] = upper + (lower - upper) * fy;
      }
    }
  }
  return out;
};

/** In place: x · scale − means[channel] for an HWC array with means.length channels. */
export const scaleAndSubtractMeans = (
  x: Float32Array,
  scale: number,
  means: readonly number[],
): Float32Array => {
  const c = means.length;
  for (let i = 0; i < x.length; i++) x[i] = x[i] * scale - means[i % c];
  return x;
};
