/**
 * Data transforms of the held-out suite: a source whose every image goes through a fixed pixel
 * transform (the same for training and test images), so a task sees MNIST as meta-training never
 * did.
 * @module
 */
import type { Source } from "../../data/source.ts";
import type { ImageShape } from "../../data/images.ts";

/** `none`; `rotate90`: a quarter turn counter-clockwise (square images); `invert`: 1 − x. */
export type PixelTransform = "none" | "rotate90" | "invert";

/** The transformed HWC image (a new array). */
export const transformPixels = (
  t: PixelTransform,
  image: Float32Array,
  [h, w, c]: ImageShape,
): Float32Array => {
  if (t === "none") return image;
  const out = new Float32Array(image.length);
  if (t === "invert") {
    for (let i = 0; i < out.length; i++) out[i] = 1 - image[i];
    return out;
  }
  if (h !== w) throw new RangeError(`rotate90: the image must be square, got ${h}×${w}`);
  // out[r][col] = in[col][w − 1 − r]: a counter-clockwise quarter turn.
  for (let r = 0; r < h; r++) {
    for (let col = 0; col < w; col++) {
      for (let k = 0; k < c; k++) {
        out[(r * w + col) * c + k] = image[(col * w + (w - 1 - r)) * c + k];
      }
    }
  }
  return out;
};

/** `source` with every image transformed (its name says how). */
export const transformedSource = <Id>(source: Source<Id>, t: PixelTransform): Source<Id> =>
  t === "none" ? source : {
    name: `${source.name} (${t})`,
    shape: source.shape,
    numClasses: source.numClasses,
    ids: (epoch, key) => source.ids(epoch, key),
    load: async (id, key) => {
      const e = await source.load(id, key);
      return e && { image: transformPixels(t, e.image, source.shape), label: e.label };
    },
    close: () => source.close?.(),
  };
