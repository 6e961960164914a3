/**
 * A TF.js 2-D window geometry (`backend_util.Conv2DInfo`, of a convolution or a pooling) as oneDNN
 * takes it: its strides and paddings, when oneDNN's output-size rule gives TF.js's sizes, and the key
 * the oneDNN kernel families cache their primitives under.
 * @module
 */
import type { tf } from "../../../_deps.ts";
import type { ConvSpatial } from "../dnnl.ts";

type Info = tf.backend_util.Conv2DInfo;

/**
 * oneDNN's spatial parameters for a TF.js geometry, or null when oneDNN cannot express it (empty
 * dims, negative padding, or an output size oneDNN's rule ⌊(in − k + pl + pr) / s⌋ + 1 misses).
 */
export const dnnlSpatial = (g: Info): ConvSpatial | null => {
  const p = g.padInfo;
  const dimsOk = [
    g.batchSize,
    g.inHeight,
    g.inWidth,
    g.inChannels,
    g.outChannels,
    g.outHeight,
    g.outWidth,
    g.filterHeight,
    g.filterWidth,
  ].every((d) => d > 0);
  if (!dimsOk || p.top < 0 || p.bottom < 0 || p.left < 0 || p.right < 0) return null;
  if (g.dilationHeight !== 1 || g.dilationWidth !== 1) return null;
  const out = (i: number, k: number, a: number, b: number, s: number) =>
    Math.floor((i - k + a + b) / s) + 1;
  if (
    out(g.inHeight, g.filterHeight, p.top, p.bottom, g.strideHeight) !== g.outHeight ||
    out(g.inWidth, g.filterWidth, p.left, p.right, g.strideWidth) !== g.outWidth
  ) return null;
  return {
    strides: [g.strideHeight, g.strideWidth],
    padL: [p.top, p.left],
    padR: [p.bottom, p.right],
  };
};

/** Every size of a geometry that its primitives depend on, as a cache key. */
export const spatialKey = (g: Info, s: ConvSpatial): string =>
  [
    g.batchSize,
    g.inHeight,
    g.inWidth,
    g.inChannels,
    g.filterHeight,
    g.filterWidth,
    g.outChannels,
    ...s.strides,
    ...s.padL,
    ...s.padR,
  ].join(",");
