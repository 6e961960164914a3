/**
 * Pooling kernels for the native backend in plain JS loops over NHWC data, channels innermost:
 * `MaxPool`, `MaxPoolGrad`, `AvgPool`, `AvgPoolGrad`.
 *
 * - MaxPool ignores NaN like the cpu kernel (a window of NaN gives −∞), except that a 1×1 pool
 *   with output shape = input shape is the identity (the cpu kernel's shortcut, NaN kept).
 * - MaxPoolGrad sends each cotangent to the FIRST maximum of its window in row-major window order
 *   (docs/algorithm.md#max-pool-ties), also when every value is negative; a window with no value
 *   above −∞ sends it to its first element.
 * - AvgPool divides by the number of in-bounds elements (TF and the cpu kernel); AvgPoolGrad is its
 *   exact adjoint, so it divides by the same count. (The stock cpu AvgPoolGrad divides by the full
 *   window size, which differs from the gradient of its own forward at SAME-padded borders.)
 * - From {@link DNNL_POOL_MIN} floats on, MaxPool, MaxPoolGrad, MlhfMaxPoolWithArgMax and
 *   MlhfScatterAddFlat run on oneDNN (`pool_dnnl.ts`) where it gives these bits: on an input that
 *   the kernel which wrote it proved free of NaN and of negative numbers (a ReLU output, array facts
 *   in `_util.ts`), and backward only where windows do not overlap (the scatter: for indices that
 *   oneDNN's arg-max made, which carry its workspace). Timed against the JS loops by
 *   `deno task bench --backend native --filter mlhf-native/max-pool`.
 * Geometry comes from `backend_util.computePool2DInfo` (any stride, SAME/VALID/explicit padding).
 * Non-float32 inputs fall back to the cpu kernels.
 *
 * Kernels of this project only (`lib/kernels.ts`; no cpu counterpart; where the active backend has
 * them, `ops/conv.ts` routes max-pool's tangents and cotangents through them, `ops/window_kernels.ts`):
 * - `MlhfMaxPoolGrad`: the same function as MaxPoolGrad, under the project's name.
 * - `MlhfMaxPoolArgMax` {x} → int32 of the output's shape: the flat index into x of the element
 *   MaxPoolGrad routes each window's cotangent to (the first maximum, NaN never winning, a window
 *   with no value above −∞ giving its first in-bounds element).
 * - `MlhfMaxPoolWithArgMax` {x} → [MaxPool's y, MlhfMaxPoolArgMax's indices] in one pass over x
 *   (the same keys, maxima and selects as the two kernels, so both outputs are bit-identical).
 * - `MlhfGatherFlat` {x, indices} → float32 shaped like indices: out[o] = x.flat[indices[o]].
 * - `MlhfScatterAddFlat` {updates, indices}, attr `shape` → float32 of that shape: zeros, then
 *   out.flat[indices[o]] += updates[o] in increasing o (the adjoint of the gather; with arg-max
 *   indices the same sums in the same order as MaxPoolGrad).
 * @module
 */
import { tf } from "../../../_deps.ts";
import {
  GATHER_FLAT_KERNEL,
  MAX_POOL_ARG_MAX_KERNEL,
  MAX_POOL_GRAD_KERNEL,
  MAX_POOL_WITH_ARG_MAX_KERNEL,
  SCATTER_ADD_FLAT_KERNEL,
} from "../../../kernels.ts";
import { gatherFlat, scatterAddFlat } from "../../../../ops/window_kernels.ts";
import { onDnnl } from "../dnnl.ts";
import { argMaxFromWorkspace, dnnlMaxPool } from "./pool_dnnl.ts";
import {
  allFloat32,
  alloc,
  allocF32,
  cpuBackend,
  cpuKernel,
  f32,
  factsOf,
  floatKey,
  i32,
  type KernelArgs,
  keyBits,
  type NativeKernel,
  noteFacts,
  scratch,
  sizeOf,
  zerosF32,
} from "./_util.ts";

type Info = tf.backend_util.Conv2DInfo;

const poolInfo = (xShape: readonly number[], attrs: tf.NamedAttrMap | undefined): Info => {
  const a = (attrs ?? {}) as unknown as {
    filterSize: number | [number, number];
    strides: number | [number, number];
    pad: "same" | "valid" | number | tf.backend_util.ExplicitPadding;
    dimRoundingMode?: "floor" | "round" | "ceil";
  };
  return tf.backend_util.computePool2DInfo(
    xShape as [number, number, number, number],
    a.filterSize,
    a.strides,
    1,
    a.pad,
    a.dimRoundingMode,
  );
};

/**
 * Visits every output pixel: `fn(o, lo/hi input rows, lo/hi input cols, b)` with `o` the offset of
 * the output pixel's channel vector. Window bounds are clipped to the input.
 */
const forEachWindow = (
  g: Info,
  fn: (o: number, b: number, h0: number, h1: number, w0: number, w1: number) => void,
) => {
  const { inHeight: H, inWidth: W, outHeight: OH, outWidth: OW, inChannels: C } = g;
  const top = g.padInfo.top, left = g.padInfo.left;
  let o = 0;
  for (let b = 0; b < g.batchSize; b++) {
    for (let p = 0; p < OH; p++) {
      const r = p * g.strideHeight - top;
      const h0 = Math.max(0, r), h1 = Math.min(H, r + g.filterHeight);
      for (let q = 0; q < OW; q++, o += C) {
        const c = q * g.strideWidth - left;
        fn(o, b, h0, h1, Math.max(0, c), Math.min(W, c + g.filterWidth));
      }
    }
  }
};

/** The {@link floatKey} of −∞ (every non-NaN key is at least this; NaN keys are below it). */
const KEY_NEG_INF = floatKey(0xff800000 | 0);
/**
 * NaN inputs get the key `1 << 31`, below every number, so NaN never wins a window. It is written
 * inline in the loops: read from a module constant (a heap number, outside the small-integer range)
 * it turned the keys into doubles and the loops 3× slower, as did a ternary instead of the `if`.
 */

/**
 * The window geometry of one output row (image b, output row p), as the row functions below take
 * it: input rows [h0, h1), and per output column the clipped window columns.
 */
interface RowGeometry {
  readonly H: number;
  readonly W: number;
  readonly C: number;
  readonly OW: number;
  readonly KW: number;
  readonly SW: number;
  readonly left: number;
}

const rowGeometry = (g: Info): RowGeometry => ({
  H: g.inHeight,
  W: g.inWidth,
  C: g.inChannels,
  OW: g.outWidth,
  KW: g.filterWidth,
  SW: g.strideWidth,
  left: g.padInfo.left,
});

/**
 * Calls `row(b, h0, h1, o)` for every output row (image b, input rows [h0, h1) of its windows, `o`
 * the offset of its first output pixel).
 *
 * The window loops run in a function called once per output row, not in one call over the whole
 * tensor: V8 tiers a function up by the work it has done, and a kernel called once per training
 * step (ResNet-18's stem pool) ran its sixth to ninth calls in Maglev's code, 3–4.5× slower than
 * TurboFan's (`--v8-flags=--no-maglev` removed it; ResNet-18 step: max-pool and its arg-max 144 ms
 * against 39). A row function is called hundreds of times per kernel call, so it reaches TurboFan
 * within the first call or two.
 */
const forEachOutputRow = (g: Info, row: (b: number, h0: number, h1: number, o: number) => void) => {
  const { outHeight: OH, outWidth: OW, inChannels: C, inHeight: H } = g;
  const KH = g.filterHeight, SH = g.strideHeight, top = g.padInfo.top;
  let o = 0;
  for (let b = 0; b < g.batchSize; b++) {
    for (let p = 0; p < OH; p++, o += OW * C) {
      const r = p * SH - top;
      row(b, Math.max(0, r), Math.min(H, r + KH), o);
    }
  }
};

/** One output row of {@link maxPoolValues}: keys into `yk` (filled with −∞'s key before). */
const maxPoolRow = (
  xi: Int32Array,
  yk: Int32Array,
  r: RowGeometry,
  b: number,
  h0: number,
  h1: number,
  o0: number,
) => {
  const { H, W, C, OW, KW, SW, left } = r;
  for (let q = 0, o = o0; q < OW; q++, o += C) {
    const cc = q * SW - left;
    const w0 = Math.max(0, cc), w1 = Math.min(W, cc + KW);
    for (let ih = h0; ih < h1; ih++) {
      for (let iw = w0; iw < w1; iw++) {
        const s = ((b * H + ih) * W + iw) * C;
        for (let c = 0; c < C; c++) {
          const v = xi[s + c];
          let k = (v ^ ((v >> 31) & 0x7fffffff)) - (v >> 31); // floatKey, inlined
          if ((v & 0x7fffffff) > 0x7f800000) k = 1 << 31; // NaN: below every key (see above)
          yk[o + c] = Math.max(yk[o + c], k);
        }
      }
    }
  }
};

/**
 * Max pooling forward values, on order-preserving integer keys with `Math.max` (branch-free). The
 * window loops are written out: through the {@link forEachWindow} callback the same loop measured
 * 2.5× slower; they run one output row per call ({@link forEachOutputRow}).
 */
export const maxPoolValues = (x: Float32Array, g: Info): Float32Array => {
  const { inHeight: H, inWidth: W, outHeight: OH, outWidth: OW } = g;
  const n = g.batchSize * OH * OW * g.inChannels;
  const y = allocF32(n);
  if (g.filterHeight === 1 && g.filterWidth === 1 && OH === H && OW === W) { // the identity
    y.set(x); // (the cpu kernel's shortcut)
    return y;
  }
  const xi = new Int32Array(x.buffer, x.byteOffset, x.length);
  const yk = new Int32Array(y.buffer, y.byteOffset, n).fill(KEY_NEG_INF);
  const r = rowGeometry(g);
  forEachOutputRow(g, (b, h0, h1, o) => maxPoolRow(xi, yk, r, b, h0, h1, o));
  for (let i = 0; i < n; i++) yk[i] = keyBits(yk[i]);
  return y;
};

/**
 * One output row of {@link firstMaxPositions}; returns false when a window of the row lies entirely
 * in the padding (its indices are then −1).
 */
const firstMaxRow = (
  xi: Int32Array,
  idx: Int32Array,
  best: Int32Array,
  r: RowGeometry,
  b: number,
  h0: number,
  h1: number,
  o0: number,
): boolean => {
  const { H, W, C, OW, KW, SW, left } = r;
  let allIn = true;
  for (let q = 0, o = o0; q < OW; q++, o += C) {
    const cc = q * SW - left;
    const w0 = Math.max(0, cc), w1 = Math.min(W, cc + KW);
    if (h0 >= h1 || w0 >= w1) {
      idx.fill(-1, o, o + C);
      allIn = false;
      continue;
    }
    best.fill(KEY_NEG_INF);
    const first = ((b * H + h0) * W + w0) * C;
    for (let c = 0; c < C; c++) idx[o + c] = first + c;
    for (let ih = h0; ih < h1; ih++) {
      for (let iw = w0; iw < w1; iw++) {
        const s = ((b * H + ih) * W + iw) * C;
        for (let c = 0; c < C; c++) {
          const v = xi[s + c];
          let k = (v ^ ((v >> 31) & 0x7fffffff)) - (v >> 31); // floatKey, inlined
          if ((v & 0x7fffffff) > 0x7f800000) k = 1 << 31; // NaN
          const m = best[c];
          const win = (0 - +(k > m)) | 0; // -1 where this element is a new maximum, else 0
          best[c] = Math.max(m, k);
          const ps = idx[o + c];
          idx[o + c] = ps ^ ((ps ^ (s + c)) & win);
        }
      }
    }
  }
  return allIn;
};

/**
 * Into `idx` (the output's length): the flat index into x of each window's first maximum (row-major
 * window order; NaN never wins; a window with nothing above −∞ gives its first in-bounds element),
 * by a branch-free select on order-preserving keys. A window entirely in the padding gets −1, or
 * throws when `emptyThrows`.
 */
const firstMaxPositions = (x: Float32Array, g: Info, idx: Int32Array, emptyThrows: boolean) => {
  const xi = new Int32Array(x.buffer, x.byteOffset, x.length);
  const best = new Int32Array(g.inChannels);
  const r = rowGeometry(g);
  forEachOutputRow(g, (b, h0, h1, o) => {
    if (!firstMaxRow(xi, idx, best, r, b, h0, h1, o) && emptyThrows) {
      throw new RangeError("max-pool arg-max: a window lies entirely in the padding");
    }
  });
};

/**
 * Max pooling gradient: zeros, then each dy added at its window's first maximum
 * ({@link firstMaxPositions}), in output order; windows entirely in the padding send nothing.
 */
export const maxPoolGradValues = (dy: Float32Array, x: Float32Array, g: Info): Float32Array => {
  const n = g.batchSize * g.outHeight * g.outWidth * g.inChannels;
  const buf = scratch(n); // the shared scratch floats, as int32 positions
  const idx = new Int32Array(buf.buffer, buf.byteOffset, n);
  firstMaxPositions(x, g, idx, false);
  const dx = zerosF32(g.batchSize * g.inHeight * g.inWidth * g.inChannels);
  for (let o = 0; o < n; o++) {
    const j = idx[o];
    if (j >= 0) dx[j] += dy[o];
  }
  return dx;
};

/**
 * One output row of {@link maxPoolWithArgMaxValues}: {@link maxPoolRow}'s keys into `yk` (filled
 * with −∞'s key before) and, in the same loop, {@link firstMaxRow}'s select into `idx`, with the
 * window's running maximum read from `yk` instead of a separate `best`. Returns false when a window
 * of the row lies entirely in the padding.
 */
const maxWithArgRow = (
  xi: Int32Array,
  yk: Int32Array,
  idx: Int32Array,
  r: RowGeometry,
  b: number,
  h0: number,
  h1: number,
  o0: number,
): boolean => {
  const { H, W, C, OW, KW, SW, left } = r;
  let allIn = true;
  for (let q = 0, o = o0; q < OW; q++, o += C) {
    const cc = q * SW - left;
    const w0 = Math.max(0, cc), w1 = Math.min(W, cc + KW);
    if (h0 >= h1 || w0 >= w1) {
      allIn = false;
      continue;
    }
    const first = ((b * H + h0) * W + w0) * C;
    for (let c = 0; c < C; c++) idx[o + c] = first + c;
    for (let ih = h0; ih < h1; ih++) {
      for (let iw = w0; iw < w1; iw++) {
        const s = ((b * H + ih) * W + iw) * C;
        for (let c = 0; c < C; c++) {
          const v = xi[s + c];
          let k = (v ^ ((v >> 31) & 0x7fffffff)) - (v >> 31); // floatKey, inlined
          if ((v & 0x7fffffff) > 0x7f800000) k = 1 << 31; // NaN
          const m = yk[o + c];
          const win = (0 - +(k > m)) | 0; // -1 where this element is a new maximum, else 0
          yk[o + c] = Math.max(m, k);
          const ps = idx[o + c];
          idx[o + c] = ps ^ ((ps ^ (s + c)) & win);
        }
      }
    }
  }
  return allIn;
};

/**
 * {@link maxPoolValues} and {@link maxPoolArgMaxValues} of one x in one pass over it (ResNet-18's
 * stem pool: two passes over 4×112×112×64 before). A window entirely in the padding throws, as the
 * arg-max does.
 */
export const maxPoolWithArgMaxValues = (x: Float32Array, g: Info): [Float32Array, Int32Array] => {
  const { inHeight: H, inWidth: W, outHeight: OH, outWidth: OW } = g;
  if (g.filterHeight === 1 && g.filterWidth === 1 && OH === H && OW === W) { // the identity
    return [maxPoolValues(x, g), maxPoolArgMaxValues(x, g)]; // (y keeps NaN there)
  }
  const n = g.batchSize * OH * OW * g.inChannels;
  const y = allocF32(n);
  const idx = alloc(Int32Array, n);
  const xi = new Int32Array(x.buffer, x.byteOffset, x.length);
  const yk = new Int32Array(y.buffer, y.byteOffset, n).fill(KEY_NEG_INF);
  const r = rowGeometry(g);
  forEachOutputRow(g, (b, h0, h1, o) => {
    if (!maxWithArgRow(xi, yk, idx, r, b, h0, h1, o)) {
      throw new RangeError("max-pool arg-max: a window lies entirely in the padding");
    }
  });
  for (let i = 0; i < n; i++) yk[i] = keyBits(yk[i]);
  return [y, idx];
};

/**
 * The flat index into x of the element {@link maxPoolGradValues} routes each output's cotangent to
 * (a window entirely in the padding throws: it routes nowhere).
 */
export const maxPoolArgMaxValues = (x: Float32Array, g: Info): Int32Array => {
  const idx = alloc(Int32Array, g.batchSize * g.outHeight * g.outWidth * g.inChannels);
  firstMaxPositions(x, g, idx, true);
  return idx;
};

const checkIndices = (bad: number, size: number, what: string) => {
  if (bad !== 0) throw new RangeError(`${what}: an index is outside [0, ${size})`);
};

/** out[o] = x[idx[o]] (indices checked: any outside x throws). */
export const gatherFlatValues = (x: Float32Array, idx: Int32Array): Float32Array => {
  const n = idx.length, size = x.length;
  const out = allocF32(n);
  let bad = 0;
  for (let o = 0; o < n; o++) {
    const j = idx[o];
    bad |= +((j >>> 0) >= size); // also catches negative indices (as large unsigned ones)
    out[o] = x[j];
  }
  checkIndices(bad, size, "MlhfGatherFlat");
  return out;
};

/** Zeros of `size`, then out[idx[o]] += u[o] for o = 0, 1, … (the adjoint of the gather). */
export const scatterAddFlatValues = (
  u: Float32Array,
  idx: Int32Array,
  size: number,
): Float32Array => {
  const n = idx.length;
  const out = zerosF32(size);
  let bad = 0;
  for (let o = 0; o < n; o++) {
    const j = idx[o];
    bad |= +((j >>> 0) >= size); // (a typed-array write outside its bounds is a no-op)
    out[j] += u[o];
  }
  checkIndices(bad, size, "MlhfScatterAddFlat");
  return out;
};

/** Average pooling forward values (mean over the in-bounds part of each window). */
export const avgPoolValues = (x: Float32Array, g: Info): Float32Array => {
  const { inHeight: H, inWidth: W, inChannels: C } = g;
  const y = zerosF32(g.batchSize * g.outHeight * g.outWidth * C);
  forEachWindow(g, (o, b, h0, h1, w0, w1) => {
    const count = (h1 - h0) * (w1 - w0);
    for (let ih = h0; ih < h1; ih++) {
      for (let iw = w0; iw < w1; iw++) {
        const s = ((b * H + ih) * W + iw) * C;
        for (let c = 0; c < C; c++) y[o + c] += x[s + c];
      }
    }
    const inv = count > 0 ? 1 / count : NaN;
    for (let c = 0; c < C; c++) y[o + c] = count > 0 ? y[o + c] * inv : NaN;
  });
  return y;
};

/** Average pooling gradient: the adjoint of {@link avgPoolValues}. */
export const avgPoolGradValues = (dy: Float32Array, g: Info): Float32Array => {
  const { inHeight: H, inWidth: W, inChannels: C } = g;
  const dx = zerosF32(g.batchSize * H * W * C);
  forEachWindow(g, (o, b, h0, h1, w0, w1) => {
    const count = (h1 - h0) * (w1 - w0);
    if (count === 0) return;
    const inv = 1 / count;
    for (let ih = h0; ih < h1; ih++) {
      for (let iw = w0; iw < w1; iw++) {
        const s = ((b * H + ih) * W + iw) * C;
        for (let c = 0; c < C; c++) dx[s + c] += dy[o + c] * inv;
      }
    }
  });
  return dx;
};

/** oneDNN's max pooling, made on first use (null when oneDNN does not load). */
const onednn = onDnnl(dnnlMaxPool, "max pooling by JS loops");

/**
 * Inputs of at least this many floats take oneDNN's max pooling (where `pool_dnnl.ts` allows it):
 * below it waking oneDNN's threads costs more than the loop.
 */
export const DNNL_POOL_MIN = 1 << 16;

/**
 * Whether oneDNN's max pooling gives this kernel's bits on `x` (`pool_dnnl.ts`): large enough, and
 * proven free of NaN and of negative numbers (−0, −∞) by the kernel that wrote it (ReLU).
 */
const dnnlExact = (x: Float32Array): boolean => {
  const f = factsOf(x);
  return x.length >= DNNL_POOL_MIN && f.noNaN === true && f.noNegative === true;
};

/** {@link maxPoolValues}, by oneDNN where it gives the same bits. */
export const maxPoolAny = (x: Float32Array, g: Info): Float32Array => {
  const e = dnnlExact(x) ? onednn() : null;
  if (e) {
    const y = allocF32(g.batchSize * g.outHeight * g.outWidth * g.inChannels);
    if (e.forward(x, g, y)) return y;
  }
  return maxPoolValues(x, g);
};

/** Whether no two windows share an element (oneDNN's backward pass then adds nothing twice). */
const windowsApart = (g: Info): boolean =>
  g.strideHeight >= g.filterHeight && g.strideWidth >= g.filterWidth;

/** {@link maxPoolGradValues}, by oneDNN where it gives the same bits (windows not overlapping). */
export const maxPoolGradAny = (dy: Float32Array, x: Float32Array, g: Info): Float32Array => {
  const e = windowsApart(g) && dnnlExact(x) ? onednn() : null;
  if (e) {
    const dx = allocF32(x.length);
    if (e.grad(dy, x, g, dx)) return dx;
  }
  return maxPoolGradValues(dy, x, g);
};

/**
 * {@link maxPoolWithArgMaxValues}, by oneDNN where it gives the same bits: its maxima, and its
 * workspace turned into flat indices, which keep the workspace as a fact for
 * {@link scatterAddFlatAny}.
 */
export const maxPoolWithArgMaxAny = (x: Float32Array, g: Info): [Float32Array, Int32Array] => {
  const e = dnnlExact(x) ? onednn() : null;
  if (e) {
    const n = g.batchSize * g.outHeight * g.outWidth * g.inChannels;
    const y = allocF32(n), ws = new Uint8Array(n);
    if (e.forward(x, g, y, ws)) {
      const idx = alloc(Int32Array, n);
      argMaxFromWorkspace(ws, g, idx);
      noteFacts(idx, { maxPoolWorkspace: { g, ws } });
      return [y, idx];
    }
  }
  return maxPoolWithArgMaxValues(x, g);
};

/**
 * {@link scatterAddFlatValues} into `size` floats, by oneDNN's max-pooling backward pass where the
 * indices are a max-pooling's arg-maxes that oneDNN recorded (their fact), of an input of `size`
 * floats, from windows that do not overlap: each element then gets at most one update, 0 + u, the
 * bits of the JS loop.
 */
export const scatterAddFlatAny = (
  updates: Float32Array,
  idx: Int32Array,
  size: number,
): Float32Array => {
  const w = factsOf(idx).maxPoolWorkspace;
  const fits = w !== undefined && windowsApart(w.g) && updates.length === idx.length &&
    w.g.batchSize * w.g.inHeight * w.g.inWidth * w.g.inChannels === size;
  const e = fits ? onednn() : null;
  if (e) {
    const out = allocF32(size);
    if (e.backward(updates, w!.ws, w!.g, out)) return out;
  }
  return scatterAddFlatValues(updates, idx, size);
};

/** The pooling kernels. */
export const poolKernels = (): NativeKernel[] => {
  const fallback = {
    MaxPool: cpuKernel("MaxPool"),
    MaxPoolGrad: cpuKernel("MaxPoolGrad"),
    AvgPool: cpuKernel("AvgPool"),
    AvgPoolGrad: cpuKernel("AvgPoolGrad"),
  };
  // The stock MaxPoolGrad and the project's (the same function: its contract is this kernel's).
  const maxPoolGrad = (args: KernelArgs) => {
    const { dy, input } = args.inputs;
    if (!allFloat32(dy, input)) return fallback.MaxPoolGrad(args);
    const backend = cpuBackend(args);
    const g = poolInfo(input.shape, args.attrs);
    const dx = maxPoolGradAny(f32(backend, dy), f32(backend, input), g);
    return backend.makeTensorInfo([...input.shape], "float32", dx);
  };
  const forward = (name: "MaxPool" | "AvgPool", values: typeof maxPoolValues) => ({
    kernelName: name,
    kernelFunc: (args: KernelArgs) => {
      const { x } = args.inputs;
      if (!allFloat32(x)) return fallback[name](args);
      const backend = cpuBackend(args);
      const g = poolInfo(x.shape, args.attrs);
      return backend.makeTensorInfo([...g.outShape], "float32", values(f32(backend, x), g));
    },
  });
  return [
    forward("MaxPool", maxPoolAny),
    forward("AvgPool", avgPoolValues),
    { kernelName: "MaxPoolGrad", kernelFunc: maxPoolGrad },
    { kernelName: MAX_POOL_GRAD_KERNEL, kernelFunc: maxPoolGrad },
    {
      kernelName: MAX_POOL_ARG_MAX_KERNEL,
      kernelFunc: (args) => {
        const { x } = args.inputs;
        const backend = cpuBackend(args);
        const g = poolInfo(x.shape, args.attrs);
        return backend.makeTensorInfo(
          [...g.outShape],
          "int32",
          maxPoolArgMaxValues(f32(backend, x), g),
        );
      },
    },
    {
      kernelName: MAX_POOL_WITH_ARG_MAX_KERNEL,
      kernelFunc: (args) => {
        const { x } = args.inputs;
        if (x.dtype !== "float32") {
          throw new TypeError(`MlhfMaxPoolWithArgMax: x must be float32, got ${x.dtype}`);
        }
        const backend = cpuBackend(args);
        const g = poolInfo(x.shape, args.attrs);
        const [y, idx] = maxPoolWithArgMaxAny(f32(backend, x), g);
        return [
          backend.makeTensorInfo([...g.outShape], "float32", y),
          backend.makeTensorInfo([...g.outShape], "int32", idx),
        ];
      },
    },
    {
      kernelName: GATHER_FLAT_KERNEL,
      kernelFunc: (args) => {
        const { x, indices } = args.inputs;
        const backend = cpuBackend(args);
        const out = gatherFlatValues(f32(backend, x), i32(backend, indices));
        return backend.makeTensorInfo([...indices.shape], "float32", out);
      },
    },
    {
      kernelName: SCATTER_ADD_FLAT_KERNEL,
      kernelFunc: (args) => {
        const { updates, indices } = args.inputs;
        if (!tf.util.arraysEqual(updates.shape, indices.shape)) {
          throw new RangeError(
            `MlhfScatterAddFlat: updates [${updates.shape}] and indices [${indices.shape}] differ`,
          );
        }
        const backend = cpuBackend(args);
        const shape = [...(args.attrs as unknown as { shape: number[] }).shape];
        const out = scatterAddFlatAny(f32(backend, updates), i32(backend, indices), sizeOf(shape));
        return backend.makeTensorInfo(shape, "float32", out);
      },
    },
    {
      kernelName: "AvgPoolGrad",
      kernelFunc: (args) => {
        const { dy, input } = args.inputs;
        if (!allFloat32(dy)) return fallback.AvgPoolGrad(args);
        const backend = cpuBackend(args);
        const g = poolInfo(input.shape, args.attrs);
        const dx = avgPoolGradValues(f32(backend, dy), g);
        return backend.makeTensorInfo([...input.shape], "float32", dx);
      },
    },
  ];
};

/**
 * The gradients of the index kernels, exact in any order: the gather and the scatter-add are linear
 * in their float input and each other's adjoint; nothing flows to the indices (float32 zeros, which
 * TF.js's tape requires), and the arg-max is piecewise constant (zero gradient, as `tf.argMax`).
 */
export const poolIndexGradients = (): tf.GradConfig[] => [
  {
    kernelName: MAX_POOL_ARG_MAX_KERNEL,
    inputsToSave: ["x"],
    gradFunc: (_dy, saved) => ({ x: () => tf.zerosLike(saved[0]) }),
  },
  {
    // y's cotangent goes to the indices (MaxPoolGrad's sums in its order); none to the indices.
    kernelName: MAX_POOL_WITH_ARG_MAX_KERNEL,
    inputsToSave: ["x"],
    outputsToSave: [false, true],
    gradFunc: (dy, saved) => {
      const [x, indices] = saved;
      const dys = Array.isArray(dy) ? dy : [dy];
      return { x: () => scatterAddFlat(dys[0], indices, x.shape) };
    },
  },
  {
    kernelName: GATHER_FLAT_KERNEL,
    inputsToSave: ["x", "indices"],
    gradFunc: (dy, saved) => {
      const [x, indices] = saved;
      return {
        x: () => scatterAddFlat(dy as tf.Tensor, indices, x.shape),
        indices: () => tf.zeros(indices.shape),
      };
    },
  },
  {
    kernelName: SCATTER_ADD_FLAT_KERNEL,
    inputsToSave: ["indices"],
    gradFunc: (dy, saved) => {
      const [indices] = saved;
      return {
        updates: () => gatherFlat(dy as tf.Tensor, indices),
        indices: () => tf.zeros(indices.shape),
      };
    },
  },
];
