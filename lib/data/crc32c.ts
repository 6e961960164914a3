/**
 * CRC-32C (Castagnoli, reflected polynomial 0x82f63b78), table-driven with slicing-by-4, and the
 * TFRecord masking `((crc >>> 15) | (crc << 17)) + 0xa282ead8`.
 * @module
 */

const POLY = 0x82f63b78;

const TABLES: readonly Uint32Array[] = (() => {
  const t = Array.from({ length: 4 }, () => new Uint32Array(256));
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t[0][n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    for (let k = 1; k < 4; k++) t[k][n] = (t[k - 1][n] >>> 8) ^ t[0][t[k - 1][n] & 0xff];
  }
  return t;
})();

/** CRC-32C of `bytes`; pass a previous result as `crc` to continue over concatenated chunks. */
export const crc32c = (bytes: Uint8Array, crc = 0): number => {
  const [t0, t1, t2, t3] = TABLES;
  let c = ~crc >>> 0;
  let i = 0;
  const n = bytes.length;
  for (; i + 4 <= n; i += 4) {
    c ^= bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24);
    c = t3[c & 0xff] ^ t2[(c >>> 8) & 0xff] ^ t1[(c >>> 16) & 0xff] ^ t0[c >>> 24];
  }
  for (; i < n; i++) c = t0[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
};

/** The masked CRC stored in TFRecord framing. */
export const maskCrc = (crc: number): number => ((((crc >>> 15) | (crc << 17)) + 0xa282ead8) >>> 0);

/** Inverse of `maskCrc`. */
export const unmaskCrc = (masked: number): number => {
  const rot = (masked - 0xa282ead8) >>> 0;
  return ((rot >>> 17) | (rot << 15)) >>> 0;
};

/** Masked CRC-32C of `bytes`, as TFRecord stores it. */
export const maskedCrc32c = (bytes: Uint8Array): number => maskCrc(crc32c(bytes));
