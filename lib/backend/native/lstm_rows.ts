/**
 * The row pass of the native LSTM kernels (`lstm.ts`), in two kinds of steps with no TF.js import
 * (the row worker, `lstm_worker.ts`, runs the second kind):
 * - {@link gateRows}: a block of rows' 16 gate pre-activations per row by `cblas_sgemm`
 *   (x·W_x + h·W_h onto the bias: W's input rows and recurrent rows are contiguous, so no [x, h]
 *   concatenation), only ever on the calling thread;
 * - {@link cellRows}: from those, the cell's activations and new state (and the head after the last
 *   layer), in flat float64 loops (exp by table, `kernels/_exp.ts`), on any thread.
 * Rows are independent and the GEMM blocks always start at multiples of {@link BLOCK}, so however
 * the rows of {@link cellRows} are shared out, the values are those of {@link lstmRowsOneThread}.
 * @module
 */
import type { Blas } from "./blas.ts";
import { fastExp } from "./kernels/_exp.ts";

/** Units per layer the kernels handle (`LSTM_KERNEL_UNITS`; other widths run the composition). */
export const U = 4;
/** Gates per row: [i, ĉ, f, o] × U. */
export const G = 4 * U;
/** Rows per GEMM (2048·16·8 multiply-adds stays under OpenBLAS's threading threshold). */
export const BLOCK = 2048;

/** One cell's weights ([inW + U, 4U] kernel, [4U] bias) and its state rows c, h ([n, U]). */
export interface LayerData {
  readonly w: Float32Array;
  readonly b: Float32Array;
  readonly c: Float32Array;
  readonly h: Float32Array;
}

/** The head: U → 1 weights and bias. */
export interface Head {
  readonly w: Float32Array;
  readonly b: number;
}

/** Length of the packed output of n rows: [out (n, only with a head) | c′₀ | h′₀ | c′₁ | h′₁ | …]. */
export const packedLength = (n: number, layers: number, head: boolean): number =>
  (head ? n : 0) + 2 * layers * n * U;

/** Offset of layer l's c′ rows in the packed output (its h′ rows follow n·U later). */
export const stateOffset = (n: number, l: number, head: boolean): number =>
  (head ? n : 0) + 2 * l * n * U;

/**
 * Gate pre-activations of rows [r0, r0 + m) of one layer into `pre` ([m, G], local row 0 = r0):
 * `input` holds those rows' inputs ([m, width]) and `h` their recurrent state ([m, U]). GEMMs run
 * over blocks of {@link BLOCK} rows from r0 (callers keep r0 a multiple of BLOCK).
 */
export const gateRows = (
  sgemm: Blas["sgemm"],
  pre: Float32Array,
  input: Float32Array,
  width: number,
  h: Float32Array,
  layer: LayerData,
  m: number,
): void => {
  const { w, b } = layer;
  for (let s0 = 0; s0 < m; s0 += BLOCK) {
    const k = Math.min(BLOCK, m - s0);
    const p = pre.subarray(s0 * G, (s0 + k) * G);
    p.set(b); // the bias in every row, by doubling copies (a set per row cost ≈ 30 ms a pass)
    for (let len = G; len < k * G; len *= 2) p.copyWithin(len, 0, Math.min(len, k * G - len));
    sgemm(false, false, k, G, width, 1, input.subarray(s0 * width), width, w, G, 1, p, G);
    sgemm(false, false, k, G, U, 1, h.subarray(s0 * U), U, w.subarray(width * G), G, 1, p, G);
  }
};

/** One share of {@link cellRows}: rows [first, first + m) of layer `l`. */
export interface CellJob {
  /** Rows of the whole call (the packed layout depends on it). */
  readonly n: number;
  readonly l: number;
  readonly layers: number;
  readonly first: number;
  readonly m: number;
  /** The share's gate pre-activations ([m, G]) and c rows ([m, U]); local row 0 is `first`. */
  readonly pre: Float32Array;
  readonly c: Float32Array;
  /** Applied after the last layer when given. */
  readonly head?: Head;
  /** The packed output of all n rows (c′, h′ and the head's output are written there). */
  readonly out: Float32Array;
}

/**
 * The cell update of a share of rows from their gate pre-activations: σ(i), tanh(ĉ), σ(f + 1),
 * σ(o); c′ = σ(i)·tanh(ĉ) + c·σ(f + 1) (rounded to float32, as stored); h′ = tanh(c′)·σ(o); then the
 * head when this is the last layer. A NaN pre-activation stays NaN, ±∞ saturates as σ and tanh do.
 */
export const cellRows = (job: CellJob): void => {
  const { n, l, layers, first, m, pre, c, head, out } = job;
  const nU = n * U;
  const co = stateOffset(n, l, head !== undefined) + first * U, ho = co + nU;
  const act = new Float64Array(G);
  const hw = head ? Float64Array.from(head.w) : null, hb = head?.b ?? 0;
  const useHead = hw !== null && l === layers - 1;
  for (let s = 0; s < m; s++) {
    const po = s * G, q = s * U;
    for (let u = 0; u < U; u++) { // σ(i), tanh(ĉ) = 2σ(2ĉ) − 1, σ(f + 1), σ(o)
      act[u] = 1 / (1 + fastExp(-pre[po + u]));
      act[U + u] = 2 / (1 + fastExp(-2 * pre[po + U + u])) - 1;
      act[2 * U + u] = 1 / (1 + fastExp(-1 - pre[po + 2 * U + u]));
      act[3 * U + u] = 1 / (1 + fastExp(-pre[po + 3 * U + u]));
    }
    let y = hb;
    for (let u = 0; u < U; u++) {
      const cn = Math.fround(act[u] * act[U + u] + c[q + u] * act[2 * U + u]);
      out[co + q + u] = cn;
      const hn = Math.fround((2 / (1 + fastExp(-2 * cn)) - 1) * act[3 * U + u]);
      out[ho + q + u] = hn;
      if (useHead) y += hn * hw![u];
    }
    if (useHead) out[first + s] = y;
  }
};

/** The whole pass on the calling thread: every layer's gates then cells, a block at a time. */
export const lstmRowsOneThread = (
  sgemm: Blas["sgemm"],
  n: number,
  x: Float32Array,
  inW: number,
  layers: readonly LayerData[],
  head?: Head,
): Float32Array => {
  const out = new Float32Array(packedLength(n, layers.length, head !== undefined));
  const pre = new Float32Array(Math.min(BLOCK, n) * G);
  const nU = n * U;
  for (let r0 = 0; r0 < n; r0 += BLOCK) {
    const m = Math.min(BLOCK, n - r0);
    layers.forEach((ly, l) => {
      const width = l === 0 ? inW : U;
      const input = l === 0
        ? x.subarray(r0 * inW)
        : out.subarray(stateOffset(n, l - 1, head !== undefined) + nU + r0 * U);
      gateRows(sgemm, pre, input, width, ly.h.subarray(r0 * U), ly, m);
      cellRows({
        n,
        l,
        layers: layers.length,
        first: r0,
        m,
        pre,
        c: ly.c.subarray(r0 * U),
        head,
        out,
      });
    });
  }
  return out;
};
