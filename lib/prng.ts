/**
 * A seeded, splittable PRNG so every run and test is reproducible from one integer seed, on every
 * backend (numbers are generated in JS, then uploaded: TF.js's own seeded ops differ by backend).
 *
 * A `Key` is an immutable pair of 32-bit words. `split` and `foldIn` derive independent keys
 * (splitmix32 mixing); `uniform`/`normal` draw from a sfc32 stream seeded by the key.
 * @module
 */

/** An immutable PRNG key (two 32-bit words). */
export type Key = readonly [number, number];

const mix32 = (z0: number): number => {
  let z = (z0 + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
};

/** The key for an integer seed. */
export const keyFromSeed = (seed: number): Key => {
  if (!Number.isInteger(seed)) throw new RangeError(`seed must be an integer, got ${seed}`);
  const lo = seed >>> 0;
  const hi = Math.floor(seed / 2 ** 32) >>> 0;
  return [mix32(lo ^ 0x243f6a88), mix32(hi ^ mix32(lo) ^ 0x85a308d3)];
};

/** A new key derived from `key` and an integer `data` (e.g. a step index or a layer number). */
export const foldIn = (key: Key, data: number): Key => [
  mix32(key[0] ^ mix32(data >>> 0)),
  mix32(key[1] ^ mix32((data >>> 0) ^ 0x5bd1e995)),
];

/** n independent keys derived from `key`. */
export const split = (key: Key, n = 2): Key[] =>
  Array.from({ length: n }, (_, i) => foldIn(key, i + 1));

/** A stateful uniform [0, 1) generator seeded by a key (sfc32), for code that needs a stream. */
export const stream = (key: Key): () => number => {
  let a = key[0] | 0, b = key[1] | 0, c = mix32(key[0] ^ key[1]) | 0, d = 1;
  const next = (): number => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
  for (let i = 0; i < 12; i++) next();
  return next;
};

/** n uniform samples in [lo, hi). */
export const uniform = (key: Key, n: number, lo = 0, hi = 1): Float32Array => {
  const r = stream(key);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * r();
  return out;
};

/** n normal samples N(mean, std²) (Box–Muller). */
export const normal = (key: Key, n: number, mean = 0, std = 1): Float32Array => {
  const r = stream(key);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u1 = 1 - r(); // (0, 1]
    const u2 = r();
    const rad = Math.sqrt(-2 * Math.log(u1));
    out[i] = mean + std * rad * Math.cos(2 * Math.PI * u2);
    if (i + 1 < n) out[i + 1] = mean + std * rad * Math.sin(2 * Math.PI * u2);
  }
  return out;
};

/** n samples of N(mean, std²) truncated to ±2 std (TF's truncated_normal convention). */
export const truncatedNormal = (key: Key, n: number, mean = 0, std = 1): Float32Array => {
  const r = stream(key);
  const out = new Float32Array(n);
  let i = 0;
  while (i < n) {
    const u1 = 1 - r();
    const u2 = r();
    const z = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
    if (Math.abs(z) <= 2) out[i++] = mean + std * z;
  }
  return out;
};

/** A uniformly random permutation of 0..n-1 (Fisher–Yates). */
export const permutation = (key: Key, n: number): Int32Array => {
  const r = stream(key);
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
};
