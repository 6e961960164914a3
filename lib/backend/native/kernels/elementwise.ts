/**
 * Tight-loop float32 kernels for the element-wise ops and the reductions that dominate a conv-net
 * or ResNet training step on the native backend once the GEMMs are fast (profiled: the bias add and
 * its gradient, the relu and its gradient, batch norm): `Add`, `Sub`, `Multiply`, and the
 * comparisons `Greater`, `GreaterEqual`, `Less`, `LessEqual` (same shapes, a scalar, or one operand
 * broadcast along trailing axes such as a bias), `Relu`, `Step`, `Neg`, `Square`, `Tanh` and
 * `Softplus` (the meta-networks' input squashing and output: the cpu kernels' formulas, same bits,
 * without their per-element call and fresh array), and for the meta-iteration (profiled: the LSTM
 * gradient's gates and the loss's softmax) `Sigmoid`, `Softmax` over the last axis, `AddN` and
 * `RealDiv` (same bits as the cpu kernels), with `Add`, `Sub`, `Multiply` and `RealDiv` also taking
 * an operand broadcast along leading axes (a [128, 1] column), `Cast` of bool or
 * int32 to float32, `Sum` and `Mean` over one contiguous block of axes (the bias gradient sums the
 * leading axes, which the cpu kernel does by a transpose), and `ArgMax` along any axis and `Equal`
 * against a scalar (max-pool masks take the arg-max over stacked patches and compare it with each
 * window index). Loops whose branches the data decide are branch-free (`+(x > y)`, integer keys of
 * the float bits): on random signs a branch mispredicts about every other element. Outputs come from
 * the recycled arrays of `_util.ts`. Native only: `MlhfReluGrad` (`lib/kernels.ts`), ReLU's
 * tangent and cotangent from its output without a mask. From {@link DNNL_ELTWISE_MIN} elements on,
 * `Relu`, `Step` (α = 0, on an input proven free of NaN), ReLU's cotangent, and `Add` and
 * `Multiply` of same shapes, with a scalar or a repeated vector, run on oneDNN (`eltwise_dnnl.ts`:
 * vectorized, threaded, the same bits) where it loads; `Relu` records what it proved of its input
 * and output (array facts, `_util.ts`) for the step and max-pooling (`pool.ts`).
 * Every other case falls back to the cpu kernel. Sums accumulate in float64 like the cpu kernel.
 * @module
 */
import { tf } from "../../../_deps.ts";
import { RELU_GRAD_KERNEL } from "../../../kernels.ts";
import {
  allFloat32,
  alloc,
  allocF32,
  cpuBackend,
  cpuKernel,
  f32,
  factsOf,
  floatKey,
  type KernelArgs,
  type NativeKernel,
  noteFacts,
  sizeOf,
  zerosF32,
} from "./_util.ts";
import { onDnnl } from "../dnnl.ts";
import { dnnlEltwise } from "./eltwise_dnnl.ts";

/**
 * Arrays of at least this many floats take oneDNN's element-wise passes: below it the JS loop is
 * faster than waking oneDNN's threads (same-shape add at 16 K floats: 9 µs in JS, 27 µs by oneDNN;
 * at 128 K: 317 µs against 46 µs).
 */
export const DNNL_ELTWISE_MIN = 1 << 16;

/** oneDNN's element-wise passes, made on first use (null when oneDNN does not load). */
const onednn = onDnnl(dnnlEltwise, "element-wise passes by JS loops");

const sameShape = (a: readonly number[], b: readonly number[]) =>
  a.length === b.length && a.every((d, i) => d === b[i]);

/**
 * When `small` broadcasts to `full` as one block of axes (its axes other than 1 are consecutive and
 * equal to `full`'s there: a scalar, a trailing-axes broadcast such as a bias, or a leading one such
 * as a [128, 1] column against [128, 10]), the number of elements of `full` after that block
 * (`inner`, 1 for a trailing broadcast): out[(o·m + j)·inner + t] uses small[j]. Else −1.
 */
export const blockInner = (small: readonly number[], full: readonly number[]): number => {
  if (small.length > full.length) return -1;
  const pad = full.length - small.length;
  let lo = 0, hi = small.length - 1;
  while (lo < small.length && small[lo] === 1) lo++;
  if (lo === small.length) return 1; // one element
  while (small[hi] === 1) hi--;
  for (let i = lo; i <= hi; i++) if (small[i] !== full[pad + i]) return -1;
  return sizeOf(full.slice(pad + hi + 1));
};

type BinOp = "Add" | "Sub" | "Multiply" | "RealDiv";
type CmpOp = "Greater" | "GreaterEqual" | "Less" | "LessEqual";

/**
 * out[i] = a[i] op b[i mod m] for the big operand `a` and the repeated one `b` (m = b.length);
 * `swapped` computes b op a instead (Sub and RealDiv care). Loops are written out per op so each stays
 * monomorphic.
 */
const binaryValues = (
  op: BinOp,
  big: Float32Array,
  small: Float32Array,
  swapped: boolean,
  n: number,
  inner = 1,
): Float32Array => {
  if (inner !== 1 && small.length !== 1) return columnValues(op, big, small, swapped, n, inner);
  const out = allocF32(n);
  const m = small.length;
  if ((op === "Add" || op === "Multiply") && n % m === 0 && n >= DNNL_ELTWISE_MIN) {
    if (onednn()?.binary(op === "Add" ? "add" : "mul", big, small, out)) return out;
  }
  if (m === n) { // same shapes
    if (op === "Add") { for (let i = 0; i < n; i++) out[i] = big[i] + small[i]; }
    else if (op === "Multiply") { for (let i = 0; i < n; i++) out[i] = big[i] * small[i]; }
    else if (op === "Sub") {
      if (!swapped) { for (let i = 0; i < n; i++) out[i] = big[i] - small[i]; }
      else for (let i = 0; i < n; i++) out[i] = small[i] - big[i];
    } else if (!swapped) { for (let i = 0; i < n; i++) out[i] = big[i] / small[i]; }
    else for (let i = 0; i < n; i++) out[i] = small[i] / big[i];
    return out;
  }
  if (m === 1) { // a scalar operand: one flat loop
    const s = small[0];
    if (op === "Add") { for (let i = 0; i < n; i++) out[i] = big[i] + s; }
    else if (op === "Multiply") { for (let i = 0; i < n; i++) out[i] = big[i] * s; }
    else if (op === "Sub") {
      if (!swapped) { for (let i = 0; i < n; i++) out[i] = big[i] - s; }
      else for (let i = 0; i < n; i++) out[i] = s - big[i];
    } else if (!swapped) { for (let i = 0; i < n; i++) out[i] = big[i] / s; }
    else for (let i = 0; i < n; i++) out[i] = s / big[i];
    return out;
  }
  for (let i = 0; i < n; i += m) {
    if (op === "Add") { for (let j = 0; j < m; j++) out[i + j] = big[i + j] + small[j]; }
    else if (op === "Multiply") { for (let j = 0; j < m; j++) out[i + j] = big[i + j] * small[j]; }
    else if (op === "Sub") {
      if (!swapped) { for (let j = 0; j < m; j++) out[i + j] = big[i + j] - small[j]; }
      else for (let j = 0; j < m; j++) out[i + j] = small[j] - big[i + j];
    } else if (!swapped) { for (let j = 0; j < m; j++) out[i + j] = big[i + j] / small[j]; }
    else for (let j = 0; j < m; j++) out[i + j] = small[j] / big[i + j];
  }
  return out;
};

/**
 * out[(o·m + j)·inner + t] = big[…] op small[j] (m = small.length): `small` repeated along the
 * `inner` trailing elements (a [128, 1] column against [128, 10]); `swapped` as in
 * {@link binaryValues}.
 */
const columnValues = (
  op: BinOp,
  big: Float32Array,
  small: Float32Array,
  swapped: boolean,
  n: number,
  inner: number,
): Float32Array => {
  const out = allocF32(n);
  const m = small.length;
  for (let i = 0; i < n; i += m * inner) {
    for (let j = 0; j < m; j++) {
      const s = small[j], b = i + j * inner, e = b + inner;
      if (op === "Add") { for (let k = b; k < e; k++) out[k] = big[k] + s; }
      else if (op === "Multiply") { for (let k = b; k < e; k++) out[k] = big[k] * s; }
      else if (op === "Sub") {
        if (!swapped) { for (let k = b; k < e; k++) out[k] = big[k] - s; }
        else for (let k = b; k < e; k++) out[k] = s - big[k];
      } else if (!swapped) { for (let k = b; k < e; k++) out[k] = big[k] / s; }
      else for (let k = b; k < e; k++) out[k] = s / big[k];
    }
  }
  return out;
};

/**
 * a op b as 0/1 bytes, same layout as {@link binaryValues}; `swapped` compares b op a. Written
 * branch-free (`+(x > y)`): a data-dependent branch costs a misprediction per element on random
 * signs (measured 5× slower).
 */
const compareValues = (
  op: CmpOp,
  big: Float32Array,
  small: Float32Array,
  swapped: boolean,
  n: number,
): Uint8Array => {
  const out = alloc(Uint8Array, n);
  const m = small.length;
  // Greater(b, a) = Less(a, b) etc.: fold the swap into the op.
  const o = !swapped
    ? op
    : op === "Greater"
    ? "Less"
    : op === "Less"
    ? "Greater"
    : op === "GreaterEqual"
    ? "LessEqual"
    : "GreaterEqual";
  if (m === 1) {
    const t = small[0];
    if (o === "Greater") { for (let j = 0; j < n; j++) out[j] = +(big[j] > t); }
    else if (o === "GreaterEqual") { for (let j = 0; j < n; j++) out[j] = +(big[j] >= t); }
    else if (o === "Less") { for (let j = 0; j < n; j++) out[j] = +(big[j] < t); }
    else for (let j = 0; j < n; j++) out[j] = +(big[j] <= t);
    return out;
  }
  for (let i = 0; i < n; i += m) {
    if (o === "Greater") { for (let j = 0; j < m; j++) out[i + j] = +(big[i + j] > small[j]); }
    else if (o === "GreaterEqual") {
      for (let j = 0; j < m; j++) out[i + j] = +(big[i + j] >= small[j]);
    } else if (o === "Less") { for (let j = 0; j < m; j++) out[i + j] = +(big[i + j] < small[j]); }
    else for (let j = 0; j < m; j++) out[i + j] = +(big[i + j] <= small[j]);
  }
  return out;
};

/**
 * The operands of a binary kernel as (big, small, swapped) when one of them has the output's shape
 * and the other is the same shape, a scalar, or broadcast along trailing axes; else null.
 */
const binaryOperands = (args: KernelArgs) => {
  const { a, b } = args.inputs;
  if (!allFloat32(a, b)) return null;
  const outShape = tf.broadcast_util.assertAndGetBroadcastShape(a.shape, b.shape);
  let swapped: boolean, inner: number;
  if (sameShape(a.shape, outShape) && (inner = blockInner(b.shape, outShape)) > 0) swapped = false;
  else if (sameShape(b.shape, outShape) && (inner = blockInner(a.shape, outShape)) > 0) {
    swapped = true;
  } else return null;
  const backend = cpuBackend(args);
  const av = f32(backend, a), bv = f32(backend, b);
  return {
    backend,
    outShape,
    n: sizeOf(outShape),
    big: swapped ? bv : av,
    small: swapped ? av : bv,
    swapped,
    inner,
  };
};

const binaryKernel = (op: BinOp): NativeKernel => {
  const fallback = cpuKernel(op);
  return {
    kernelName: op,
    kernelFunc: (args: KernelArgs) => {
      const o = binaryOperands(args);
      if (!o) return fallback(args);
      const { backend, outShape, n } = o;
      if (n === 0 || o.small.length === 0) {
        return backend.makeTensorInfo(outShape, "float32", zerosF32(n));
      }
      const out = binaryValues(op, o.big, o.small, o.swapped, n, o.inner);
      return backend.makeTensorInfo(outShape, "float32", out);
    },
  };
};

const compareKernel = (op: CmpOp): NativeKernel => {
  const fallback = cpuKernel(op);
  return {
    kernelName: op,
    kernelFunc: (args: KernelArgs) => {
      const o = binaryOperands(args);
      if (!o || o.n === 0 || o.small.length === 0) return fallback(args);
      if (o.inner !== 1 && o.small.length !== 1) return fallback(args); // a column: cpu
      const out = compareValues(op, o.big, o.small, o.swapped, o.n);
      return o.backend.makeTensorInfo(o.outShape, "bool", out as unknown as Float32Array);
    },
  };
};

type UnaryOp = "Relu" | "Step" | "Neg" | "Square" | "Tanh" | "Softplus" | "Sigmoid";

/** The cpu kernel's softplus cut-offs (tf.nn.softplus): log of float32's epsilon, plus 2. */
const SOFTPLUS_THRESHOLD = Math.log(1.1920928955078125e-7) + 2;

/**
 * ReLU or the step (α = 0) by oneDNN, with the JS loops' bits; false when oneDNN cannot (then `out`
 * is untouched). ReLU proves its output has no negative value and, when a guard sum over x is not
 * NaN, that x and the output hold no NaN (array facts, `_util.ts`): its input is the step's in the
 * gradient, its output max-pooling's input. oneDNN's step gives +0 for NaN where the kernel gives
 * NaN, so it runs only on an x proven free of NaN (by ReLU, or by its own guard sum).
 */
const stepOrReluByDnnl = (op: "Relu" | "Step", x: Float32Array, out: Float32Array): boolean => {
  const e = onednn();
  if (!e) return false;
  const noNaN = factsOf(x).noNaN || e.noNaN(x);
  if (op === "Step") return noNaN && e.stepIgnoringNaN(x, out);
  if (!e.relu(x, out)) return false;
  if (noNaN) noteFacts(x, { noNaN });
  noteFacts(out, noNaN ? { noNaN, noNegative: true } : { noNegative: true });
  return true;
};

/** The element-wise unary ops, branch-free where the data decide (random signs). */
export const unaryValues = (op: UnaryOp, x: Float32Array, alpha: number): Float32Array => {
  const n = x.length;
  const out = allocF32(n);
  if ((op === "Relu" || (op === "Step" && alpha === 0)) && n >= DNNL_ELTWISE_MIN) {
    if (stepOrReluByDnnl(op, x, out)) return out;
  }
  if (op === "Relu") {
    // On the bits: a negative float (sign bit set) becomes +0 unless it is a NaN (kept, like
    // Math.max(0, NaN)); the rare NaN branch predicts well.
    const xi = new Int32Array(x.buffer, x.byteOffset, n);
    const oi = new Int32Array(out.buffer, out.byteOffset, n);
    for (let i = 0; i < n; i++) {
      const v = xi[i];
      oi[i] = (v & 0x7fffffff) > 0x7f800000 ? v : v & ~(v >> 31);
    }
  } else if (op === "Step") {
    if (alpha === 0) {
      for (let i = 0; i < n; i++) {
        const v = x[i];
        out[i] = v !== v ? NaN : +(v > 0);
      }
    } else {
      for (let i = 0; i < n; i++) {
        const v = x[i];
        out[i] = v !== v ? NaN : +(v > 0) + alpha * +(v <= 0);
      }
    }
  } else if (op === "Neg") { for (let i = 0; i < n; i++) out[i] = -x[i]; }
  else if (op === "Square") { for (let i = 0; i < n; i++) out[i] = x[i] * x[i]; }
  else if (op === "Tanh") { for (let i = 0; i < n; i++) out[i] = Math.tanh(x[i]); }
  else if (op === "Sigmoid") { // the cpu kernel's formula (same bits)
    for (let i = 0; i < n; i++) out[i] = 1 / (1 + Math.exp(-x[i]));
  } else {
    // The cpu kernel's formula, branch for branch (so the values are the same bits).
    const t = SOFTPLUS_THRESHOLD;
    for (let i = 0; i < n; i++) {
      const v = x[i], e = Math.exp(v);
      out[i] = v < t ? e : v > -t ? v : Math.log(1 + e);
    }
  }
  return out;
};

const unaryKernel = (name: UnaryOp): NativeKernel => {
  const fallback = cpuKernel(name);
  return {
    kernelName: name,
    kernelFunc: (args: KernelArgs) => {
      const { x } = args.inputs;
      if (!allFloat32(x)) return fallback(args);
      const backend = cpuBackend(args);
      const alpha = ((args.attrs ?? {}).alpha as number | undefined) ?? 0;
      return backend.makeTensorInfo(
        [...x.shape],
        "float32",
        unaryValues(name, f32(backend, x), alpha),
      );
    },
  };
};

/** Sum over a contiguous block of axes as [outer, reduce, inner], float64 accumulation. */
export const sumValues = (
  xv: Float32Array,
  outer: number,
  red: number,
  inner: number,
): Float32Array => {
  const out = allocF32(outer * inner);
  if (inner === 1) {
    for (let o = 0; o < outer; o++) {
      let s = 0;
      const base = o * red;
      for (let r = 0; r < red; r++) s += xv[base + r];
      out[o] = s;
    }
    return out;
  }
  // Four rows per pass over the sums: the same additions in the same order per column (float64
  // intermediates), a quarter of the loads and stores of `acc` (≈ 1.3× faster at [131072, 64]).
  const acc = new Float64Array(inner);
  for (let o = 0; o < outer; o++) {
    acc.fill(0);
    let r = 0;
    for (; r + 4 <= red; r += 4) {
      const b0 = (o * red + r) * inner, b1 = b0 + inner, b2 = b1 + inner, b3 = b2 + inner;
      for (let i = 0; i < inner; i++) {
        acc[i] = (((acc[i] + xv[b0 + i]) + xv[b1 + i]) + xv[b2 + i]) + xv[b3 + i];
      }
    }
    for (; r < red; r++) {
      const base = (o * red + r) * inner;
      for (let i = 0; i < inner; i++) acc[i] += xv[base + i];
    }
    for (let i = 0; i < inner; i++) out[o * inner + i] = acc[i];
  }
  return out;
};

/** `Sum` (scale 1) or `Mean` (scale 1/n) over one contiguous block of axes; else the cpu kernel. */
const reduceKernel = (name: "Sum" | "Mean"): NativeKernel => {
  const fallback = cpuKernel(name);
  return {
    kernelName: name,
    kernelFunc: (args: KernelArgs) => {
      const { x } = args.inputs;
      if (!allFloat32(x)) return fallback(args);
      const at = (args.attrs ?? {}) as { axis?: number | number[]; keepDims?: boolean };
      const axes = [...tf.util.parseAxisParam(at.axis ?? [], x.shape)].sort((p, q) => p - q);
      if (axes.length === 0) return fallback(args);
      const lo = axes[0], hi = axes[axes.length - 1];
      if (hi - lo + 1 !== axes.length) return fallback(args); // not one contiguous block
      const outer = sizeOf(x.shape.slice(0, lo));
      const red = sizeOf(x.shape.slice(lo, hi + 1));
      const inner = sizeOf(x.shape.slice(hi + 1));
      const outShape = at.keepDims
        ? x.shape.map((d, i) => (i >= lo && i <= hi ? 1 : d))
        : x.shape.filter((_, i) => i < lo || i > hi);
      const backend = cpuBackend(args);
      const out = sumValues(f32(backend, x), outer, red, inner);
      if (name === "Mean") { for (let i = 0; i < out.length; i++) out[i] /= red; }
      return backend.makeTensorInfo(outShape, "float32", out);
    },
  };
};

/**
 * `AddN` of float32 tensors of one shape in one pass: ((0 + x₀) + x₁) + … per element, each sum
 * rounded to float32 as the cpu kernel's accumulation into a float32 array does (same bits), without
 * its n passes over a fresh array.
 */
export const addNValues = (xs: readonly Float32Array[]): Float32Array => {
  const n = xs[0].length, out = allocF32(n);
  const x0 = xs[0];
  if (xs.length === 2) {
    const x1 = xs[1];
    for (let i = 0; i < n; i++) out[i] = (x0[i] + 0) + x1[i];
    return out;
  }
  for (let i = 0; i < n; i++) out[i] = x0[i] + 0; // +0: −0 becomes +0 as 0 + (−0) does
  for (let k = 1; k < xs.length; k++) {
    const x = xs[k];
    for (let i = 0; i < n; i++) out[i] += x[i];
  }
  return out;
};

const addNKernel = (): NativeKernel => {
  const fallback = cpuKernel("AddN");
  return {
    kernelName: "AddN",
    kernelFunc: (args: KernelArgs) => {
      const ts = Object.keys(args.inputs).map((k) => args.inputs[k]);
      if (
        ts.length === 0 || !allFloat32(...ts) || sizeOf(ts[0].shape) === 0 ||
        ts.some((t) => !sameShape(t.shape, ts[0].shape))
      ) return fallback(args);
      const backend = cpuBackend(args);
      const out = addNValues(ts.map((t) => f32(backend, t)));
      return backend.makeTensorInfo([...ts[0].shape], "float32", out);
    },
  };
};

/**
 * `Softmax` over the last axis of [rows, cols], step for step as the cpu kernel composes it, so the
 * values are the same bits: the row's maximum m (NaN when the row has one), e = exp(x − m) with the
 * difference rounded to float32 first, the sum of e accumulated in float64 and rounded, e / sum.
 */
export const softmaxValues = (x: Float32Array, rows: number, cols: number): Float32Array => {
  const out = allocF32(rows * cols);
  for (let r = 0; r < rows; r++) {
    const b = r * cols, e = b + cols;
    let m = x[b];
    for (let k = b; k < e; k++) {
      const v = x[k];
      if (v !== v || v > m) m = v;
    }
    let s = 0;
    for (let k = b; k < e; k++) {
      const v = Math.fround(Math.exp(Math.fround(x[k] - m)));
      out[k] = v;
      s += v;
    }
    const sf = Math.fround(s);
    for (let k = b; k < e; k++) out[k] = out[k] / sf;
  }
  return out;
};

const softmaxKernel = (): NativeKernel => {
  const fallback = cpuKernel("Softmax");
  return {
    kernelName: "Softmax",
    kernelFunc: (args: KernelArgs) => {
      const { logits } = args.inputs;
      const dim = ((args.attrs ?? {}).dim as number | undefined) ?? -1;
      const r = logits.shape.length;
      if (!allFloat32(logits) || r === 0 || (dim !== -1 && dim !== r - 1)) return fallback(args);
      const cols = logits.shape[r - 1], n = sizeOf(logits.shape);
      if (n === 0) return fallback(args);
      const backend = cpuBackend(args);
      const out = softmaxValues(f32(backend, logits), n / cols, cols);
      return backend.makeTensorInfo([...logits.shape], "float32", out);
    },
  };
};

/**
 * First index of the maximum along the middle axis of [outer, red, inner] (like the cpu kernel: a
 * strict `>` scan from the first element, so NaN never wins unless it comes first, and then nothing
 * beats it). Compares order-preserving integer keys of the float bits ({@link floatKey}) with a
 * branch-free select: data-dependent branches mispredict on random data.
 */
export const argMaxValues = (
  xv: Float32Array,
  outer: number,
  red: number,
  inner: number,
): Int32Array => {
  const xi = new Int32Array(xv.buffer, xv.byteOffset, xv.length);
  const out = alloc(Int32Array, outer * inner).fill(0);
  const best = new Int32Array(inner);
  for (let o = 0; o < outer; o++) {
    const base0 = o * red * inner, ob = o * inner;
    for (let i = 0; i < inner; i++) {
      const b = xi[base0 + i];
      let k = floatKey(b);
      if ((b & 0x7fffffff) > 0x7f800000) k = 0x7fffffff; // a leading NaN is never beaten
      best[i] = k;
    }
    for (let r = 1; r < red; r++) {
      const base = base0 + r * inner;
      for (let i = 0; i < inner; i++) {
        const b = xi[base + i];
        let k = floatKey(b);
        if ((b & 0x7fffffff) > 0x7f800000) k = 1 << 31; // a later NaN never wins (a ternary: 5× slower)
        const m = best[i];
        const g = (0 - +(k > m)) | 0; // -1 where this element wins, else 0
        best[i] = Math.max(m, k);
        const cur = out[ob + i];
        out[ob + i] = cur ^ ((cur ^ r) & g);
      }
    }
  }
  return out;
};

const argMaxKernel = (): NativeKernel => {
  const fallback = cpuKernel("ArgMax");
  return {
    kernelName: "ArgMax",
    kernelFunc: (args: KernelArgs) => {
      const { x } = args.inputs;
      if (!allFloat32(x) || sizeOf(x.shape) === 0) return fallback(args);
      const at = (args.attrs ?? {}) as { axis?: number | number[] };
      const axis = tf.util.parseAxisParam(at.axis ?? 0, x.shape)[0];
      const outer = sizeOf(x.shape.slice(0, axis)), inner = sizeOf(x.shape.slice(axis + 1));
      const backend = cpuBackend(args);
      const out = argMaxValues(f32(backend, x), outer, x.shape[axis], inner);
      const outShape = x.shape.filter((_, i) => i !== axis);
      return backend.makeTensorInfo(outShape, "int32", out as unknown as Float32Array);
    },
  };
};

/** `Equal` of numeric tensors of the same shape or with a scalar (max-pool masks compare indices). */
const equalKernel = (): NativeKernel => {
  const fallback = cpuKernel("Equal");
  return {
    kernelName: "Equal",
    kernelFunc: (args: KernelArgs) => {
      const { a, b } = args.inputs;
      const backend = cpuBackend(args);
      const av = backend.data.get(a.dataId).values, bv = backend.data.get(b.dataId).values;
      const numeric = (v: unknown): v is Float32Array | Int32Array | Uint8Array =>
        v instanceof Float32Array || v instanceof Int32Array || v instanceof Uint8Array;
      if (a.dtype === "string" || b.dtype === "string" || !numeric(av) || !numeric(bv)) {
        return fallback(args);
      }
      const outShape = tf.broadcast_util.assertAndGetBroadcastShape(a.shape, b.shape);
      const n = sizeOf(outShape);
      const out = alloc(Uint8Array, n);
      if (sameShape(a.shape, b.shape)) {
        for (let i = 0; i < n; i++) out[i] = +(av[i] === bv[i]);
      } else if (bv.length === 1 && sameShape(a.shape, outShape)) {
        const s = bv[0];
        for (let i = 0; i < n; i++) out[i] = +(av[i] === s);
      } else if (av.length === 1 && sameShape(b.shape, outShape)) {
        const s = av[0];
        for (let i = 0; i < n; i++) out[i] = +(bv[i] === s);
      } else return fallback(args);
      return backend.makeTensorInfo(outShape, "bool", out as unknown as Float32Array);
    },
  };
};

/**
 * `Cast` of bool or int32 to float32 as a real float32 array. (The cpu kernel shares the input's
 * bytes under the float32 dtype, so every later float kernel had to convert them.) Everything else
 * goes to the cpu kernel.
 */
const castKernel = (): NativeKernel => {
  const fallback = cpuKernel("Cast");
  return {
    kernelName: "Cast",
    kernelFunc: (args: KernelArgs) => {
      const { x } = args.inputs;
      const dtype = (args.attrs ?? {}).dtype;
      const backend = cpuBackend(args);
      const v = backend.data.get(x.dataId).values;
      if (
        dtype !== "float32" || (x.dtype !== "bool" && x.dtype !== "int32") ||
        !(v instanceof Uint8Array || v instanceof Int32Array)
      ) return fallback(args);
      const out = allocF32(v.length);
      out.set(v);
      return backend.makeTensorInfo([...x.shape], "float32", out);
    },
  };
};

/**
 * dy·1[y > 0] ({@link RELU_GRAD_KERNEL}): the same product as `Multiply` of dy by the cast mask, in
 * one pass without the mask (branch-free: `+(v > 0)`; by oneDNN from {@link DNNL_ELTWISE_MIN}).
 */
export const reluGradValues = (dy: Float32Array, y: Float32Array): Float32Array => {
  const n = dy.length;
  const out = allocF32(n);
  if (n >= DNNL_ELTWISE_MIN && onednn()?.reluGrad(dy, y, out)) return out;
  for (let i = 0; i < n; i++) out[i] = dy[i] * +(y[i] > 0);
  return out;
};

const reluGradKernel = (): NativeKernel => ({
  kernelName: RELU_GRAD_KERNEL,
  kernelFunc: (args: KernelArgs) => {
    const { dy, y } = args.inputs;
    if (!allFloat32(dy, y) || !sameShape(dy.shape, y.shape)) {
      throw new Error(
        `native backend: ${RELU_GRAD_KERNEL} needs float32 dy and y of one shape, got ` +
          `${dy.dtype} [${dy.shape}] and ${y.dtype} [${y.shape}]`,
      );
    }
    const backend = cpuBackend(args);
    const out = reluGradValues(f32(backend, dy), f32(backend, y));
    return backend.makeTensorInfo([...dy.shape], "float32", out);
  },
});

/** The gradient of {@link RELU_GRAD_KERNEL}: itself in dy (linear), zero in y. */
export const reluGradGradient = (): tf.GradConfig => ({
  kernelName: RELU_GRAD_KERNEL,
  inputsToSave: ["y"],
  gradFunc: (g, saved) => {
    const [y] = saved;
    return {
      dy: () => tf.engine().runKernel(RELU_GRAD_KERNEL, { dy: g as tf.Tensor, y }) as tf.Tensor,
      y: () => tf.zerosLike(y),
    };
  },
});

/** The element-wise and reduction kernels. */
export const elementwiseKernels = (): NativeKernel[] => [
  binaryKernel("Add"),
  binaryKernel("Sub"),
  binaryKernel("Multiply"),
  binaryKernel("RealDiv"),
  addNKernel(),
  compareKernel("Greater"),
  compareKernel("GreaterEqual"),
  compareKernel("Less"),
  compareKernel("LessEqual"),
  unaryKernel("Relu"),
  unaryKernel("Step"),
  unaryKernel("Neg"),
  unaryKernel("Square"),
  unaryKernel("Tanh"),
  unaryKernel("Softplus"),
  unaryKernel("Sigmoid"),
  softmaxKernel(),
  castKernel(),
  reduceKernel("Sum"),
  reduceKernel("Mean"),
  argMaxKernel(),
  equalKernel(),
  reluGradKernel(),
];
