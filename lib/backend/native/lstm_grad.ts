/**
 * The vector-Jacobian product of one step of MLHF's meta-network (`MlhfLstmNetGrad`,
 * `lib/kernels.ts`): stacked LSTM cells (TF 1.7's LSTMBlockCell with forget bias 1, U = 4 units)
 * and the U → 1 head. The op composition it replaces (`lib/optim/mlhf/lstm_kernel.ts`'s gradient)
 * runs ~60 kernels over [N, 4] per step, each a full pass over memory, and its σ and tanh are
 * float64 `Math` calls per element (≈ 22 ms a step at N = 15 880 in isolation; in a native
 * meta-iteration at T = 10 the LSTM's backward passes were about a third of the time). Here the
 * rows go in blocks of {@link BLOCK}: per layer, the gates' pre-activations [rows, 16] are one GEMM
 * of [x, h] by the kernel, σ and tanh are the forward kernel's float32 SIMD passes
 * (`lstm_cell.wat`: Cephes' expf and tanhf, as the forward pass computes them), the cell's
 * derivative is one loop over the block, and the weights' cotangent ([x, h]ᵀ·d) and the inputs'
 * (d·Wᵀ) are two more GEMMs (≈ 8–12 ms a step at N = 15 880, one thread). The derivatives take
 * 1 − σ(a) as σ(−a) and 1 − tanh²(a) as 4·σ(2a)·σ(−2a), so saturated gates lose nothing to
 * cancellation. Float32 like the composition (the GEMMs sum in another order, σ and tanh are
 * within 3 ulp): both are as close to a float64 reference (`lstm_test.ts`). The passes are small
 * functions, each optimized on its own (one large function kept being recompiled on stack
 * replacement, 2× slower). No TF.js import: plain arrays in, arrays out.
 * @module
 */
import type { Blas } from "./blas.ts";
import { BLOCK, G, lstmWasm, U, wasmFloats } from "./lstm_rows.ts";

/** One layer's weights ([inW + U, 4U] kernel, [4U] bias) and its state rows c, h ([n, U]). */
export interface GradLayer {
  readonly w: Float32Array;
  readonly b: Float32Array;
  readonly c: Float32Array;
  readonly h: Float32Array;
}

/** The cotangents of one layer's kernel, bias, c and h (flat, shaped like the inputs). */
export interface LayerGrads {
  readonly w: Float32Array;
  readonly b: Float32Array;
  readonly c: Float32Array;
  readonly h: Float32Array;
}

/** The cotangents of a network step's inputs. */
export interface NetGrads {
  /** Of the input rows [n, inW]. */
  readonly x: Float32Array;
  readonly layers: LayerGrads[];
  /** Of the head's kernel [U, 1]. */
  readonly headW: Float32Array;
  /** Of the head's bias [1]. */
  readonly headB: Float32Array;
}

/** Floats of each layer's block scratch, per row: [x, h], gates, their σ(−·), ±2ĉ, ±2c′, ĉ, c′. */
const layerFloats = (cols: number) => cols + 2 * G + 4 * U + 4 * U + U + U;

let scratchBuf = new Float32Array(0);
/** A plain scratch array kept between calls (the loops run on it, not on the wasm memory). */
const scratch = (n: number): Float32Array =>
  scratchBuf.length >= n ? scratchBuf : (scratchBuf = new Float32Array(n));

/** A layer's block scratch offsets in `mem` (see {@link layerFloats}). */
interface Off {
  readonly xh: number;
  /** Gates [k, 16]. */
  readonly p: number;
  /** σ(−a) of the gates [k, 16]. */
  readonly q: number;
  /** ±2ĉ [k, 8]. */
  readonly e1: number;
  /** ±2c′ [k, 8]. */
  readonly e2: number;
  /** ĉ then tanh(ĉ) [k, 4]. */
  readonly t: number;
  /** c′ then tanh(c′) [k, 4]. */
  readonly tc: number;
}

/** Copies k rows of `width` floats (src rows from `from`) into mem rows of stride `cols` at `at`. */
const loadRows = (
  mem: Float32Array,
  at: number,
  cols: number,
  src: Float32Array,
  from: number,
  width: number,
  k: number,
) => {
  for (let i = 0; i < k; i++) {
    const d = at + i * cols, s = (from + i) * width;
    for (let a = 0; a < width; a++) mem[d + a] = src[s + a];
  }
};

/**
 * The gates' pre-activations (GEMM output at p) plus the bias and the forget gate's +1; their
 * negations at q (σ(−a) = 1 − σ(a) without the cancellation), ĉ at t and ±2ĉ at e1 (tanh′ =
 * 1 − tanh² = 4·σ(2a)·σ(−2a), likewise).
 */
const biasPass = (mem: Float32Array, o: Off, b: Float32Array, k: number) => {
  for (let i = 0; i < k; i++) {
    const q = o.p + i * G, nq = o.q + i * G, eq = o.e1 + i * 2 * U, tq = o.t + i * U;
    for (let u = 0; u < U; u++) {
      const ai = Math.fround(mem[q + u] + b[u]);
      const aj = Math.fround(mem[q + U + u] + b[U + u]);
      const af = Math.fround(Math.fround(mem[q + 2 * U + u] + b[2 * U + u]) + 1);
      const ao = Math.fround(mem[q + 3 * U + u] + b[3 * U + u]);
      mem[q + u] = ai;
      mem[q + 2 * U + u] = af;
      mem[q + 3 * U + u] = ao;
      mem[nq + u] = -ai;
      mem[nq + 2 * U + u] = -af;
      mem[nq + 3 * U + u] = -ao;
      mem[tq + u] = aj;
      mem[eq + u] = 2 * aj;
      mem[eq + U + u] = -2 * aj;
    }
  }
};

/** c′ = σ(i)·tanh(ĉ) + c·σ(f + 1) at tc, ±2c′ at e2. */
const cellPass = (mem: Float32Array, o: Off, c: Float32Array, r0: number, k: number) => {
  for (let i = 0; i < k; i++) {
    const q = o.p + i * G, tq = o.t + i * U, cq = o.tc + i * U, eq = o.e2 + i * 2 * U;
    const s = (r0 + i) * U;
    for (let u = 0; u < U; u++) {
      const cn = Math.fround(mem[q + u] * mem[tq + u] + c[s + u] * mem[q + 2 * U + u]);
      mem[cq + u] = cn;
      mem[eq + u] = 2 * cn;
      mem[eq + U + u] = -2 * cn;
    }
  }
};

/** h′ = tanh(c′)·σ(o) into rows of stride `cols` at `at`. */
const hPass = (mem: Float32Array, o: Off, at: number, cols: number, k: number) => {
  for (let i = 0; i < k; i++) {
    const q = o.p + i * G, cq = o.tc + i * U, d = at + i * cols;
    for (let u = 0; u < U; u++) mem[d + u] = mem[cq + u] * mem[q + 3 * U + u];
  }
};

/**
 * The head's backward pass: its kernel's cotangent into dHeadW, the cotangent of h′_top (dOut·Wᵀ)
 * at `ab`; returns Σ dOut (the bias's cotangent).
 */
const headBack = (
  mem: Float32Array,
  hTop: number,
  ab: number,
  dy: Float32Array,
  r0: number,
  headW: Float32Array,
  dHeadW: Float64Array,
  k: number,
): number => {
  let sum = 0;
  for (let i = 0; i < k; i++) {
    const g = dy[r0 + i], hq = hTop + i * U, aq = ab + i * U;
    for (let u = 0; u < U; u++) {
      dHeadW[u] += mem[hq + u] * g;
      mem[aq + u] = g * headW[u];
    }
    sum += g;
  }
  return sum;
};

/**
 * The cell's backward pass over the block: the gates' cotangents d [k, 16] at `da` (from c′'s
 * cotangent in dy at cBase, h′'s at hBase plus the one from above at `ab`), c's cotangent into dc,
 * the bias's summed into db.
 */
const cellBack = (
  mem: Float32Array,
  o: Off,
  da: number,
  ab: number,
  dy: Float32Array,
  cBase: number,
  hBase: number,
  c: Float32Array,
  dc: Float32Array,
  db: Float64Array,
  r0: number,
  k: number,
) => {
  for (let i = 0; i < k; i++) {
    const s = (r0 + i) * U, q = o.p + i * G, nq = o.q + i * G;
    const ej = o.e1 + i * 2 * U, ec = o.e2 + i * 2 * U;
    const tq = o.t + i * U, cq = o.tc + i * U, d = da + i * G, aq = ab + i * U;
    for (let u = 0; u < U; u++) {
      const ig = mem[q + u], j = mem[tq + u], f = mem[q + 2 * U + u];
      const og = mem[q + 3 * U + u], th = mem[cq + u];
      const dj1 = 4 * mem[ej + u] * mem[ej + U + u]; // 1 − j²
      const dc1 = 4 * mem[ec + u] * mem[ec + U + u]; // 1 − tanh(c′)²
      const dhN = dy[hBase + s + u] + mem[aq + u];
      const dcT = dy[cBase + s + u] + dhN * og * dc1;
      mem[d + u] = dcT * j * ig * mem[nq + u];
      mem[d + U + u] = dcT * ig * dj1;
      mem[d + 2 * U + u] = dcT * c[s + u] * f * mem[nq + 2 * U + u];
      mem[d + 3 * U + u] = dhN * th * og * mem[nq + 3 * U + u];
      dc[s + u] = dcT * f;
    }
    for (let g = 0; g < G; g++) db[g] += mem[d + g];
  }
};

/**
 * Splits d·Wᵀ [k, cols] at `din`: the h part into dh's rows, the input part to `ab` (rows of
 * `width`, the layer below's cotangent from above) or, for the first layer, into dx.
 */
const splitDin = (
  mem: Float32Array,
  din: number,
  cols: number,
  width: number,
  dh: Float32Array,
  below: Float32Array,
  belowAt: number,
  r0: number,
  k: number,
) => {
  for (let i = 0; i < k; i++) {
    const r = r0 + i, dq = din + i * cols;
    for (let u = 0; u < U; u++) dh[r * U + u] = mem[dq + width + u];
    for (let a = 0; a < width; a++) below[belowAt + i * width + a] = mem[dq + a];
  }
};

/**
 * The cotangents of (x, each layer's kernel, bias, c, h, the head's kernel and bias) for n rows,
 * given the step's inputs and the cotangent `dy` of its packed output
 * [out (n) | c′₀ | h′₀ | c′₁ | h′₁ | …]. `alloc` makes the per-row output arrays (the backend's
 * pool). Runs on the calling thread (σ and tanh on its instance of the wasm kernel).
 */
export const lstmNetGradRows = (
  blas: Blas,
  n: number,
  x: Float32Array,
  inW: number,
  layers: readonly GradLayer[],
  headW: Float32Array,
  dy: Float32Array,
  alloc: (len: number) => Float32Array,
): NetGrads => {
  const L = layers.length, nU = n * U;
  const width = (l: number) => (l === 0 ? inW : U);
  const cols = layers.map((_, l) => width(l) + U);
  const off: Off[] = [];
  let o = 0;
  for (let l = 0; l < L; l++) {
    const p = o + BLOCK * cols[l], q = p + BLOCK * G, e1 = q + BLOCK * G;
    const e2 = e1 + 2 * BLOCK * U, t = e2 + 2 * BLOCK * U;
    off.push({ xh: o, p, q, e1, e2, t, tc: t + BLOCK * U });
    o += BLOCK * layerFloats(cols[l]);
  }
  // Then h′ of the top layer, the gates' cotangents d, d·Wᵀ and the cotangent from above.
  const hTop = o, da = hTop + BLOCK * U, din = da + BLOCK * G;
  const ab = din + BLOCK * Math.max(...cols), end = ab + BLOCK * Math.max(inW, U);
  const mem = scratch(end);
  const wmem = wasmFloats(4 * 2 * BLOCK * G);
  const wasm = lstmWasm();
  /** σ (or tanh) in place of mem[at, at + len), by the wasm kernel's float32 SIMD pass. */
  const apply = (f: (p: number, n: number) => void, at: number, len: number) => {
    wmem.set(mem.subarray(at, at + len), 0);
    f(0, len); // tanh uses the len floats after as scratch
    mem.set(wmem.subarray(0, len), at);
  };
  const view = (at: number, len: number) => mem.subarray(at, at + len);
  const dx = alloc(n * inW);
  const dc = layers.map(() => alloc(nU)), dh = layers.map(() => alloc(nU));
  const dW = cols.map((c) => new Float32Array(c * G));
  const dB = layers.map(() => new Float64Array(G));
  const dHeadW = new Float64Array(U);
  let dHeadB = 0;
  for (let r0 = 0; r0 < n; r0 += BLOCK) {
    const k = Math.min(BLOCK, n - r0);
    // Forward: each layer's gates from [x, h] (x: the input rows, then the layer below's h′).
    loadRows(mem, off[0].xh, cols[0], x, r0, inW, k);
    for (let l = 0; l < L; l++) {
      const { w, b, c, h } = layers[l], cl = cols[l], ol = off[l];
      loadRows(mem, ol.xh + width(l), cl, h, r0, U, k);
      blas.sgemm(false, false, k, G, cl, 1, view(ol.xh, k * cl), cl, w, G, 0, view(ol.p, k * G), G);
      biasPass(mem, ol, b, k);
      apply(wasm.sigmoid, ol.p, k * G); // p's ĉ slots too (unused: ĉ's tanh is at t)
      apply(wasm.sigmoid, ol.q, k * G);
      apply(wasm.sigmoid, ol.e1, k * 2 * U);
      apply(wasm.tanh, ol.t, k * U);
      cellPass(mem, ol, c, r0, k);
      apply(wasm.tanh, ol.tc, k * U);
      apply(wasm.sigmoid, ol.e2, k * 2 * U);
      if (l + 1 < L) hPass(mem, ol, off[l + 1].xh, cols[l + 1], k);
      else hPass(mem, ol, hTop, U, k);
    }
    // Backward: the head (out = h′_top·W_head + b_head), then each layer from the top.
    dHeadB += headBack(mem, hTop, ab, dy, r0, headW, dHeadW, k);
    for (let l = L - 1; l >= 0; l--) {
      const cl = cols[l], ol = off[l], cBase = n + 2 * l * nU;
      cellBack(mem, ol, da, ab, dy, cBase, cBase + nU, layers[l].c, dc[l], dB[l], r0, k);
      const xh = view(ol.xh, k * cl), d = view(da, k * G);
      blas.sgemm(true, false, cl, G, k, 1, xh, cl, d, G, 1, dW[l], G); // dW += [x, h]ᵀ·d
      blas.sgemm(false, true, k, cl, G, 1, d, G, layers[l].w, G, 0, view(din, k * cl), cl);
      if (l > 0) splitDin(mem, din, cl, width(l), dh[l], mem, ab, r0, k);
      else splitDin(mem, din, cl, inW, dh[l], dx, r0 * inW, r0, k);
    }
  }
  return {
    x: dx,
    layers: layers.map((_, l) => ({
      w: dW[l],
      b: Float32Array.from(dB[l]),
      c: dc[l],
      h: dh[l],
    })),
    headW: Float32Array.from(dHeadW),
    headB: Float32Array.of(dHeadB),
  };
};
