/**
 * The row pass of the native LSTM kernels (`lstm.ts`), with no TF.js import (the row worker,
 * `lstm_worker.ts`, runs it too): every layer's cell and the head of a share of rows in one float32
 * WebAssembly SIMD kernel (`lstm_cell.wat`: one f32x4 holds a gate's U = 4 units; gates as float32
 * sums, σ and tanh by Cephes' expf and tanhf). Each thread has its own instance: {@link runRows}
 * copies a block of {@link BLOCK} rows' inputs into its memory, runs the kernel and copies the
 * results into the packed output. Rows are independent, so however the rows are shared out, the
 * values are those of {@link lstmRowsOneThread}.
 * @module
 */
import { LSTM_WASM_BASE64 } from "./lstm_cell_wasm.ts";

/** Units per layer the kernels handle (`LSTM_KERNEL_UNITS`; other widths run the composition). */
export const U = 4;
/** Gates per row: [i, ĉ, f, o] × U. */
export const G = 4 * U;
/** Rows per kernel call (its inputs, outputs and scratch, ≈ 200 KB for 2 layers, stay in cache). */
export const BLOCK = 1024;

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

/** The kernel's exports (`lstm_cell.wat`). */
export interface LstmWasm {
  readonly memory: WebAssembly.Memory;
  /** `rows(m, L, inW, head, w, x, st, out, tmp)`: byte offsets as `lstm_cell.wat` lays them out. */
  readonly rows: (...args: number[]) => void;
  /** σ, in place, of n floats at byte offset p (n a multiple of 4). */
  readonly sigmoid: (p: number, n: number) => void;
  /** tanh, in place, of n floats at byte offset p (n a multiple of 4). */
  readonly tanh: (p: number, n: number) => void;
}

let wasm: LstmWasm | null = null;

/** This thread's instance of the kernel (compiled on first use). */
export const lstmWasm = (): LstmWasm => {
  if (wasm) return wasm;
  const text = atob(LSTM_WASM_BASE64.join(""));
  const bytes = Uint8Array.from(text, (ch) => ch.charCodeAt(0));
  const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes));
  return wasm = inst.exports as unknown as LstmWasm;
};

/** The instance's memory as float32s, grown to at least `bytes`. */
export const wasmFloats = (bytes: number): Float32Array => {
  const { memory } = lstmWasm();
  const have = memory.buffer.byteLength;
  if (have < bytes) memory.grow(Math.ceil((bytes - have) / 65536));
  return new Float32Array(memory.buffer);
};

/** A share of a call: rows [first, first + m) of all n rows. */
export interface RowJob {
  /** Rows of the whole call (the packed layout depends on it). */
  readonly n: number;
  readonly first: number;
  readonly m: number;
  /** The share's inputs ([m, inW]; local row 0 is `first`). */
  readonly x: Float32Array;
  readonly inW: number;
  /** Weights, and the share's state rows c, h ([m, U]; local row 0 is `first`). */
  readonly layers: readonly LayerData[];
  /** Applied after the last layer when given. */
  readonly head?: Head;
  /** The packed output of all n rows (c′, h′ and the head's output are written there). */
  readonly out: Float32Array;
}

const align16 = (bytes: number) => Math.ceil(bytes / 16) * 16;

/**
 * The cells of a share of rows, every layer, then the head when given: c′ = σ(i)·tanh(ĉ) +
 * c·σ(f + 1); h′ = tanh(c′)·σ(o) (`lstm_cell.wat`). A NaN pre-activation stays NaN, ±∞ saturates
 * as σ and tanh do.
 */
export const runRows = (job: RowJob): void => {
  const { n, first, m, x, inW, layers, head, out } = job;
  if (m === 0) return;
  const L = layers.length, nU = n * U;
  const wFloats = layers.reduce((s, ly) => s + ly.w.length + G, 0) + 8;
  const xOff = align16(4 * wFloats), stOff = align16(xOff + 4 * BLOCK * inW);
  const outOff = stOff + 32 * L * BLOCK, tmpOff = outOff + (32 * L + 4) * BLOCK;
  const mem = wasmFloats(tmpOff + 128 * BLOCK);
  let o = 0;
  for (const ly of layers) {
    mem.set(ly.w, o);
    mem.set(ly.b, o + ly.w.length);
    o += ly.w.length + G;
  }
  if (head) {
    mem.set(head.w, o);
    mem[o + U] = head.b;
  }
  const { rows } = lstmWasm();
  const hasHead = head !== undefined;
  for (let s0 = 0; s0 < m; s0 += BLOCK) {
    const k = Math.min(BLOCK, m - s0), kU = k * U;
    mem.set(x.subarray(s0 * inW, (s0 + k) * inW), xOff / 4);
    layers.forEach((ly, l) => {
      mem.set(ly.c.subarray(s0 * U, s0 * U + kU), stOff / 4 + 2 * l * kU);
      mem.set(ly.h.subarray(s0 * U, s0 * U + kU), stOff / 4 + (2 * l + 1) * kU);
    });
    rows(k, L, inW, hasHead ? 1 : 0, 0, xOff, stOff, outOff, tmpOff);
    const r = first + s0;
    for (let l = 0; l < L; l++) {
      const co = stateOffset(n, l, hasHead) + r * U, src = outOff / 4 + 2 * l * kU;
      out.set(mem.subarray(src, src + kU), co);
      out.set(mem.subarray(src + kU, src + 2 * kU), co + nU);
    }
    if (hasHead) {
      const src = outOff / 4 + 2 * L * kU;
      out.set(mem.subarray(src, src + k), r);
    }
  }
};

/** Checks that `out` can hold the packed output of n rows (every element of it is written). */
export const checkPackedOut = (
  out: Float32Array,
  n: number,
  layers: number,
  head: boolean,
): Float32Array => {
  const want = packedLength(n, layers, head);
  if (out.length !== want) {
    throw new RangeError(`LSTM row pass: an output of ${out.length} floats, not ${want}`);
  }
  return out;
};

/**
 * The whole pass on the calling thread, into `out` when given (any contents: every element is
 * written), else into a fresh array.
 */
export const lstmRowsOneThread = (
  n: number,
  x: Float32Array,
  inW: number,
  layers: readonly LayerData[],
  head?: Head,
  out?: Float32Array,
): Float32Array => {
  const hasHead = head !== undefined;
  const o = out
    ? checkPackedOut(out, n, layers.length, hasHead)
    : new Float32Array(packedLength(n, layers.length, hasHead));
  runRows({ n, first: 0, m: n, x, inW, layers, head, out: o });
  return o;
};
