/**
 * The float32 activations of the native LSTM kernel (`lstm_cell.wat`, its `sigmoid` and `tanh`
 * exports run the very loops `rows` runs) against float64 Math, over every magnitude from 1e-30 to
 * past saturation, both signs: σ within 3 ulp of the exact value (where it is at least 2⁻¹²⁶, the
 * smallest normal; below, within 2⁻¹²⁶), tanh within 2 ulp (measured worst: 2.5 and 1.5 ulp: exp's
 * polynomial ~1 ulp, then 1 + e and the division ½ ulp each). Specials: NaN stays NaN, σ(±∞) = 1 and
 * 0, tanh(±∞) = ±1, σ(0) = ½, tanh(0) = 0. And `rows` itself against a float64 LSTM step: every
 * c′, h′ and head output within 1e-6 of max(1, |value|) (float32 sums of O(1) terms).
 * @module
 */
import { assert } from "../../../tests/_util/deps.ts";
import { lstmRowsOneThread, lstmWasm, U, wasmFloats } from "./lstm_rows.ts";

/** One unit in the last place of the float32 nearest v (2⁻¹⁴⁹ for subnormals). */
const ulp = (v: number): number => {
  const a = Math.abs(Math.fround(v));
  return a < 2 ** -126 ? 2 ** -149 : 2 ** (Math.floor(Math.log2(a)) - 23);
};

/** Sign × 10^e with e uniform in [lo, hi], seeded, plus a dense grid of [−20, 20]. */
const samples = (n: number, seed: number): Float32Array => {
  let s = seed >>> 0 || 1;
  const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const out = new Float32Array(2 * n);
  for (let i = 0; i < n; i++) out[i] = (next() < 0.5 ? -1 : 1) * 10 ** (-30 + 32.2 * next());
  for (let i = 0; i < n; i++) out[n + i] = -20 + 40 * (i / n);
  return out;
};

/** The kernel's `name` activation of xs (length a multiple of 4). */
const apply = (name: "sigmoid" | "tanh", xs: Float32Array): Float32Array => {
  const mem = wasmFloats(8 * xs.length + 64);
  mem.set(xs, 0);
  lstmWasm()[name](0, xs.length);
  return new Float32Array(lstmWasm().memory.buffer, 0, xs.length).slice();
};

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

Deno.test("lstm_cell.wat: σ within 3 ulp and tanh within 2 ulp of float64 over all magnitudes", () => {
  const xs = samples(200_000, 7);
  for (const [name, f, bound] of [["sigmoid", sigmoid, 3], ["tanh", Math.tanh, 2]] as const) {
    const got = apply(name, xs);
    let worst = 0, at = 0;
    for (let i = 0; i < xs.length; i++) {
      const want = f(xs[i]);
      const err = Math.abs(want) < 2 ** -126
        ? Math.abs(got[i] - want) / 2 ** -126 // below the normals: absolute, in units of 2⁻¹²⁶
        : Math.abs(got[i] - want) / ulp(want);
      if (!(err <= worst)) [worst, at] = [err, xs[i]];
    }
    assert.ok(worst <= bound, `${name}: ${worst.toFixed(2)} ulp at x = ${at} (bound ${bound})`);
  }
});

Deno.test("lstm_cell.wat: NaN stays NaN, ±∞ and 0 give σ's and tanh's limits", () => {
  const xs = Float32Array.from([NaN, Infinity, -Infinity, 0, 200, -200, -0, 1e-40]);
  const s = apply("sigmoid", xs), t = apply("tanh", xs);
  assert.ok(Number.isNaN(s[0]) && Number.isNaN(t[0]), `NaN: σ ${s[0]}, tanh ${t[0]}`);
  assert.deepEqual(Array.from(s.subarray(1, 7)), [1, 0, 0.5, 1, 0, 0.5]);
  assert.deepEqual(Array.from(t.subarray(1, 7)), [1, -1, 0, 1, -1, 0]);
  assert.equal(t[7], Math.fround(1e-40), "tanh of a subnormal is itself");
});

/** A float64 LSTM step of row r (the contract of `lib/kernels.ts`), for the rows test. */
const refRow = (
  r: number,
  x: Float32Array,
  inW: number,
  layers: { w: Float32Array; b: Float32Array; c: Float32Array; h: Float32Array }[],
  head: { w: Float32Array; b: number },
) => {
  let input = Array.from(x.subarray(r * inW, (r + 1) * inW));
  const states: number[][] = [];
  for (const ly of layers) {
    const a = Array.from(ly.b);
    const xs = [...input, ...ly.h.subarray(r * U, (r + 1) * U)];
    xs.forEach((v, k) => {
      for (let g = 0; g < 4 * U; g++) a[g] += v * ly.w[k * 4 * U + g];
    });
    const c = [0, 1, 2, 3].map((u) =>
      sigmoid(a[u]) * Math.tanh(a[U + u]) + ly.c[r * U + u] * sigmoid(a[2 * U + u] + 1)
    );
    const h = c.map((cu, u) => Math.tanh(cu) * sigmoid(a[3 * U + u]));
    states.push(c, h);
    input = h;
  }
  return { states, out: head.b + input.reduce((s, v, u) => s + v * head.w[u], 0) };
};

Deno.test("lstm_cell.wat: rows equals a float64 LSTM step (2 layers, head) to float32 precision", () => {
  const n = 3000, inW = 3; // crosses a block
  let s = 5;
  const rnd = (k: number, scale: number) =>
    Float32Array.from({ length: k }, () => {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      return scale * (s / 2 ** 31 - 1);
    });
  const layers = [0, 1].map((l) => ({
    w: rnd(((l ? U : inW) + U) * 4 * U, 2),
    b: rnd(4 * U, 1),
    c: rnd(n * U, 3),
    h: rnd(n * U, 1),
  }));
  const x = rnd(n * inW, 4), head = { w: rnd(U, 1), b: 0.3 };
  const got = lstmRowsOneThread(n, x, inW, layers, head);
  let worst = 0;
  for (let r = 0; r < n; r++) {
    const want = refRow(r, x, inW, layers, head);
    const check = (g: number, w: number) => {
      worst = Math.max(worst, Math.abs(g - w) / Math.max(1, Math.abs(w)));
    };
    check(got[r], want.out);
    want.states.forEach((v, k) => v.forEach((w, u) => check(got[n + k * n * U + r * U + u], w)));
  }
  assert.ok(worst <= 1e-6, `worst error ${worst} of max(1, |value|)`);
});
