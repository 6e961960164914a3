/**
 * JPEG decoding and encoding through jpeg-js (pure JS), as RGB bytes in HWC order. Grayscale and
 * CMYK JPEGs decode to RGB too.
 * @module
 */
import { jpeg } from "../_deps.ts";
import { DataError, type DataErrorLocation } from "./errors.ts";

/** An 8-bit RGB image, HWC. */
export interface RgbImage {
  /** Rows. */
  readonly height: number;
  /** Columns. */
  readonly width: number;
  /** height·width·3 bytes. */
  readonly data: Uint8Array;
}

/** Decodes JPEG bytes to RGB; an undecodable image is a DataError at `where`. */
export const decodeJpeg = (bytes: Uint8Array, where: DataErrorLocation = {}): RgbImage => {
  let decoded: { width: number; height: number; data: Uint8Array };
  try {
    decoded = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false });
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new DataError(`undecodable JPEG (${bytes.length} bytes): ${why}`, where, { cause: e });
  }
  const { width, height, data } = decoded;
  if (!(width > 0 && height > 0) || data.length !== width * height * 3) {
    throw new DataError(
      `undecodable JPEG (${bytes.length} bytes): no image frame (width ${width}, height ${height})`,
      where,
    );
  }
  return { width, height, data };
};

/** Encodes an RGB image as JPEG bytes (quality 1..100). */
export const encodeJpeg = (image: RgbImage, quality = 90): Uint8Array => {
  const { width, height, data } = image;
  if (data.length !== width * height * 3) {
    throw new RangeError(
      `${width}×${height} RGB needs ${width * height * 3} bytes, got ${data.length}`,
    );
  }
  const rgba = new Uint8Array(width * height * 4);
  for (let p = 0; p < width * height; p++) {
    rgba[4 * p] = data[3 * p];
    rgba[4 * p + 1] = data[3 * p + 1];
    rgba[4 * p + 2] = data[3 * p + 2];
    rgba[4 * p + 3] = 255;
  }
  return new Uint8Array(jpeg.encode({ width, height, data: rgba }, quality).data);
};
