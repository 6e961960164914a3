/**
 * `Slice`, `PadV2`, `Tile`, `Pack`, `Unpack` and `SplitV` as strided block copies, for every numeric
 * dtype, `Concat` as block copies too (K-FAC's conv patches: ≈ 0.5 s a step in the cpu kernel), and
 * large float32 or int32 `Transpose`s by oneDNN (`transpose_dnnl.ts`; K-FAC's factor
 * products transpose [32768, 1601] activations, ≈ 2 s a step in the cpu kernel's loop).
 *
 * Why: the stock cpu `Slice` copies a non-contiguous slice element by element through
 * `TensorBuffer.get` (profiled: 34 slices of a 16×20×20×64 tensor took 14.7 s), and its `PadV2`
 * maps every element through index arithmetic. The project's window ops (`ops/windows.ts`:
 * im2col by pad + slices, max-pool masks, col2im by pads) and hence the gradient fixes and the
 * DSL's R-forward and transpose rules of conv and pooling are built from exactly these two ops.
 * Here trailing axes the block covers fully are merged into one run, and each run is one
 * `TypedArray.set` (or a short loop). Contiguous slices, empty tensors and strings use the cpu
 * kernels (the cpu contiguous slice is already a zero-copy view). `Tile` (every `tf.broadcastTo`,
 * e.g. in batch norm's gradient; profiled at 1.6 s of a 6.3 s ResNet-20 step) and `Pack` (the
 * max-pool masks stack their patches) are per-element index arithmetic on cpu. The cpu `Unpack`
 * (the gradient of `Pack`: the meta-networks' stacked [N, 3] inputs, profiled at 30 ms a call, 40 %
 * of a meta-iteration) and `SplitV` call the cpu `Slice` directly, so they get their own.
 * @module
 */
import { tf } from "../../../_deps.ts";
import {
  alloc,
  cpuBackend,
  cpuKernel,
  type KernelArgs,
  type NativeKernel,
  sizeOf,
} from "./_util.ts";
import { onDnnl } from "../dnnl.ts";
import { dnnlTranspose } from "./transpose_dnnl.ts";

type Numeric = Float32Array | Int32Array | Uint8Array;

const strides = (shape: readonly number[]): number[] => {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    s[d] = acc;
    acc *= shape[d];
  }
  return s;
};

/**
 * Copies the box of extent `size` starting at `srcBegin` in `src` (row-major, shape `srcShape`) to
 * the box starting at `dstBegin` in `dst` (shape `dstShape`).
 */
export const copyBox = (
  src: Numeric,
  srcShape: readonly number[],
  srcBegin: readonly number[],
  dst: Numeric,
  dstShape: readonly number[],
  dstBegin: readonly number[],
  size: readonly number[],
): void => {
  const r = size.length;
  if (r === 0) {
    dst[0] = src[0];
    return;
  }
  if (sizeOf(size) === 0) return;
  // Merge trailing axes the box covers fully in both arrays into one contiguous run.
  let t = r - 1;
  while (t > 0 && size[t] === srcShape[t] && size[t] === dstShape[t]) t--;
  const run = sizeOf(size.slice(t));
  const ss = strides(srcShape), ds = strides(dstShape);
  let s = 0, d = 0;
  for (let i = 0; i < r; i++) {
    s += srcBegin[i] * ss[i];
    d += dstBegin[i] * ds[i];
  }
  const idx = new Array<number>(t).fill(0);
  const outer = sizeOf(size.slice(0, t));
  for (let o = 0; o < outer; o++) {
    if (run >= 64) dst.set(src.subarray(s, s + run), d);
    else for (let j = 0; j < run; j++) dst[d + j] = src[s + j];
    for (let a = t - 1; a >= 0; a--) {
      idx[a]++;
      s += ss[a];
      d += ds[a];
      if (idx[a] < size[a]) break;
      s -= size[a] * ss[a];
      d -= size[a] * ds[a];
      idx[a] = 0;
    }
  }
};

/** The array type the cpu backend stores each numeric dtype in. */
const ARRAY_OF = { float32: Float32Array, int32: Int32Array, bool: Uint8Array } as const;

const sameShape = (a: readonly number[], b: readonly number[]) =>
  a.length === b.length && a.every((d, i) => d === b[i]);

const numericValues = (args: KernelArgs, x: tf.TensorInfo): Numeric | null => {
  if (x.dtype === "string" || x.dtype === "complex64") return null;
  const v = cpuBackend(args).data.get(x.dataId).values;
  return v instanceof Float32Array || v instanceof Int32Array || v instanceof Uint8Array ? v : null;
};

/** An array of the same element type, contents unspecified (recycled when possible). */
const sameType = (like: Numeric, n: number): Numeric =>
  alloc(like.constructor as Float32ArrayConstructor, n);

/**
 * `Tile`: the input repeated `reps[d]` times along each axis. Each axis's first copy is built
 * recursively, then doubled in place with `copyWithin` (a broadcast of a [1, 1, 1, C] tensor to
 * [N, H, W, C] is a few block copies instead of the cpu kernel's per-element index arithmetic).
 */
export const tileValues = (
  x: Numeric,
  shape: readonly number[],
  reps: readonly number[],
  out: Numeric,
): void => {
  const r = shape.length;
  const outShape = shape.map((d, i) => d * reps[i]);
  const os = strides(outShape), xs = strides(shape);
  // Fills the block of axis `d` at out offset `o` from x offset `s` (one copy of every later axis
  // tiled), then repeats it reps[d] times.
  const fill = (d: number, s: number, o: number) => {
    if (d === r - 1) {
      const len = shape[d];
      if (len >= 64) out.set(x.subarray(s, s + len), o);
      else for (let j = 0; j < len; j++) out[o + j] = x[s + j];
    } else {
      for (let i = 0; i < shape[d]; i++) fill(d + 1, s + i * xs[d], o + i * os[d]);
    }
    const block = shape[d] * os[d];
    for (let k = 1; k < reps[d]; k *= 2) { // double the filled part each time
      const len = Math.min(k, reps[d] - k) * block;
      out.copyWithin(o + k * block, o, o + len);
    }
  };
  fill(0, 0, 0);
};

/**
 * `Concat` along `axis` of arrays whose shapes agree but on that axis: each input's blocks of
 * `inners[k]` elements (its sizes from `axis` on) copied in turn into each of the `outer` output
 * rows, by `set` where a block is long, a loop where it is short, and strided stores where it is one
 * element (stacking vectors as columns: the meta-networks' inputs).
 */
export const concatValues = (
  xs: readonly Numeric[],
  outer: number,
  inners: readonly number[],
  out: Numeric,
): void => {
  const total = inners.reduce((a, b) => a + b, 0);
  let offset = 0;
  xs.forEach((x, k) => {
    const inner = inners[k];
    if (inner === 1) {
      for (let o = 0, d = offset; o < outer; o++, d += total) out[d] = x[o];
    } else {
      for (let o = 0; o < outer; o++) {
        const d = o * total + offset, s = o * inner;
        if (inner >= 64) out.set(x.subarray(s, s + inner), d);
        else for (let j = 0; j < inner; j++) out[d + j] = x[s + j];
      }
    }
    offset += inner;
  });
};

/**
 * `Pack` (stack) of same-shape numeric tensors along `axis`: their {@link concatValues} along a new
 * axis of size 1 at `axis`.
 */
export const packValues = (
  xs: readonly Numeric[],
  shape: readonly number[],
  axis: number,
  out: Numeric,
): void => {
  const inner = sizeOf(shape.slice(axis));
  concatValues(xs, sizeOf(shape.slice(0, axis)), xs.map(() => inner), out);
};

/**
 * `Unpack` (unstack) along `axis` into `outs` (one per index of that axis): the inverse of
 * {@link packValues}, strided loads instead of stores.
 */
export const unpackValues = (
  x: Numeric,
  shape: readonly number[],
  axis: number,
  outs: readonly Numeric[],
): void => {
  const outer = sizeOf(shape.slice(0, axis)), inner = sizeOf(shape.slice(axis + 1));
  const n = shape[axis];
  if (inner === 1) { // columns of a matrix (the gradient of the meta-networks' stacked inputs)
    for (let k = 0; k < n; k++) {
      const out = outs[k];
      for (let o = 0, s = k; o < outer; o++, s += n) out[o] = x[s];
    }
    return;
  }
  for (let k = 0; k < n; k++) {
    const out = outs[k];
    for (let o = 0; o < outer; o++) {
      const s = (o * n + k) * inner, d = o * inner;
      if (inner >= 64) out.set(x.subarray(s, s + inner), d);
      else for (let j = 0; j < inner; j++) out[d + j] = x[s + j];
    }
  }
};

/** oneDNN's transposes, made on first use (null when oneDNN does not load). */
const onednn = onDnnl(dnnlTranspose, "transposes by the cpu kernel");

/** Transposes of at least this many elements take oneDNN's reorder (below it: the cpu kernel). */
export const DNNL_TRANSPOSE_MIN = 1 << 16;

/**
 * `Transpose` of float32 or int32 by a oneDNN reorder (`transpose_dnnl.ts`: the values' bits,
 * threaded) from {@link DNNL_TRANSPOSE_MIN} elements on; else null (the caller uses the cpu kernel).
 */
export const transposeAny = (
  xv: Numeric,
  shape: readonly number[],
  perm: readonly number[],
): Float32Array | Int32Array | null => {
  if (xv instanceof Uint8Array || xv.length < DNNL_TRANSPOSE_MIN) return null;
  if (perm.every((p, i) => p === i)) return null;
  const e = onednn();
  if (!e) return null;
  const out = sameType(xv, xv.length) as Float32Array | Int32Array;
  return e.transpose(xv, shape, perm, out) ? out : null;
};

/** The shape kernels. */
export const shapeKernels = (): NativeKernel[] => {
  const cpuTranspose = cpuKernel("Transpose");
  const cpuConcat = cpuKernel("Concat");
  const cpuSlice = cpuKernel("Slice");
  const cpuPad = cpuKernel("PadV2");
  const cpuTile = cpuKernel("Tile");
  const cpuPack = cpuKernel("Pack");
  const cpuUnpack = cpuKernel("Unpack");
  const cpuSplitV = cpuKernel("SplitV");
  const slice = (args: KernelArgs): tf.TensorInfo => {
    const { x } = args.inputs;
    const xv = numericValues(args, x);
    if (!xv) return cpuSlice(args) as tf.TensorInfo;
    const at = args.attrs as { begin: number | number[]; size?: number | number[] };
    const [begin, size] = tf.slice_util.parseSliceParams(
      x as unknown as tf.Tensor,
      at.begin,
      at.size,
    );
    tf.slice_util.assertParamsValid(x as unknown as tf.Tensor, begin, size);
    if (sizeOf(size) === 0 || tf.slice_util.isSliceContinous(x.shape, begin, size)) {
      return cpuSlice(args) as tf.TensorInfo;
    }
    const out = sameType(xv, sizeOf(size));
    copyBox(xv, x.shape, begin, out, size, size.map(() => 0), size);
    return cpuBackend(args).makeTensorInfo(size, x.dtype, out as Float32Array);
  };
  return [
    {
      kernelName: "Transpose",
      kernelFunc: (args) => {
        const { x } = args.inputs;
        const xv = numericValues(args, x);
        const perm = (args.attrs as { perm: number[] }).perm;
        const out = xv && transposeAny(xv, x.shape, perm);
        if (!out) return cpuTranspose(args);
        const shape = perm.map((p) => x.shape[p]);
        return cpuBackend(args).makeTensorInfo(shape, x.dtype, out as Float32Array);
      },
    },
    {
      kernelName: "Tile",
      kernelFunc: (args) => {
        const { x } = args.inputs;
        const xv = numericValues(args, x);
        const reps = (args.attrs as { reps: number[] }).reps;
        if (!xv || x.shape.length === 0 || reps.length !== x.shape.length) return cpuTile(args);
        const outShape = x.shape.map((d, i) => d * reps[i]);
        const n = sizeOf(outShape);
        if (n === 0) return cpuTile(args);
        const out = sameType(xv, n);
        tileValues(xv, x.shape, reps, out);
        return cpuBackend(args).makeTensorInfo(outShape, x.dtype, out as Float32Array);
      },
    },
    {
      kernelName: "Concat",
      kernelFunc: (args) => {
        const ts = Object.keys(args.inputs).map((k) => args.inputs[k]);
        if (ts.length === 0) return cpuConcat(args);
        const rank = ts[0].shape.length, dtype = ts[0].dtype;
        const axis = tf.util.parseAxisParam((args.attrs as { axis: number }).axis, ts[0].shape)[0];
        const vals = ts.map((t) => numericValues(args, t));
        const agree = (t: tf.TensorInfo) =>
          t.dtype === dtype && t.shape.length === rank &&
          t.shape.every((d, i) => i === axis || d === ts[0].shape[i]);
        if (
          rank === 0 || !ts.every(agree) ||
          vals.some((v) => !v || v.constructor !== ARRAY_OF[dtype as keyof typeof ARRAY_OF])
        ) return cpuConcat(args);
        const outShape = [...ts[0].shape];
        outShape[axis] = ts.reduce((a, t) => a + t.shape[axis], 0);
        const n = sizeOf(outShape);
        if (n === 0) return cpuConcat(args);
        const out = sameType(vals[0]!, n);
        const outer = sizeOf(outShape.slice(0, axis));
        concatValues(vals as Numeric[], outer, ts.map((t) => sizeOf(t.shape.slice(axis))), out);
        return cpuBackend(args).makeTensorInfo(outShape, dtype, out as Float32Array);
      },
    },
    {
      kernelName: "Pack",
      kernelFunc: (args) => {
        const ts = Object.keys(args.inputs).map((k) => args.inputs[k]);
        const axis0 = (args.attrs as { axis: number }).axis;
        if (ts.length === 0) return cpuPack(args);
        const shape = ts[0].shape, dtype = ts[0].dtype;
        const vals = ts.map((t) => numericValues(args, t));
        if (
          ts.some((t) => t.dtype !== dtype || !sameShape(t.shape, shape)) ||
          vals.some((v) => !v || v.constructor !== ARRAY_OF[dtype as keyof typeof ARRAY_OF])
        ) return cpuPack(args);
        const axis = axis0 < 0 ? axis0 + shape.length + 1 : axis0;
        const outShape = [...shape.slice(0, axis), ts.length, ...shape.slice(axis)];
        const n = sizeOf(outShape);
        if (n === 0 || axis < 0 || axis > shape.length) return cpuPack(args);
        const out = sameType(vals[0]!, n);
        packValues(vals as Numeric[], shape, axis, out);
        return cpuBackend(args).makeTensorInfo(outShape, dtype, out as Float32Array);
      },
    },
    {
      kernelName: "Unpack",
      kernelFunc: (args) => {
        const { value } = args.inputs;
        const xv = numericValues(args, value);
        const shape = value.shape, r = shape.length;
        const axis0 = (args.attrs as { axis: number }).axis;
        const axis = axis0 < 0 ? axis0 + r : axis0;
        // Along the first axis every part is contiguous: the cpu kernel's views copy nothing.
        if (!xv || axis <= 0 || axis >= r || sizeOf(shape) === 0) return cpuUnpack(args);
        const outShape = shape.filter((_, i) => i !== axis);
        const len = sizeOf(outShape);
        const outs = Array.from({ length: shape[axis] }, () => sameType(xv, len));
        unpackValues(xv, shape, axis, outs);
        const be = cpuBackend(args);
        return outs.map((o) => be.makeTensorInfo([...outShape], value.dtype, o as Float32Array));
      },
    },
    {
      kernelName: "SplitV",
      kernelFunc: (args) => {
        // The cpu kernel's split, with this backend's block-copy Slice for each part (the cpu
        // kernel calls its own element-by-element one).
        const { x } = args.inputs;
        if (!numericValues(args, x)) return cpuSplitV(args);
        const at = args.attrs as { numOrSizeSplits: number | number[]; axis: number | number[] };
        const axis = tf.util.parseAxisParam(at.axis, x.shape)[0];
        const sizes = tf.backend_util.prepareSplitSize(
          x as unknown as tf.Tensor,
          at.numOrSizeSplits,
          axis,
        );
        const begin = x.shape.map(() => 0);
        return sizes.map((s) => {
          const size = [...x.shape];
          size[axis] = s;
          const part = slice({ ...args, attrs: { begin: [...begin], size } });
          begin[axis] += s;
          return part;
        });
      },
    },
    { kernelName: "Slice", kernelFunc: slice },
    {
      kernelName: "PadV2",
      kernelFunc: (args) => {
        const { x } = args.inputs;
        const xv = numericValues(args, x);
        if (!xv || sizeOf(x.shape) === 0) return cpuPad(args);
        const at = args.attrs as { paddings: Array<[number, number]>; constantValue: number };
        const before = at.paddings.map((p) => p[0]);
        const outShape = at.paddings.map((p, i) => p[0] + x.shape[i] + p[1]);
        const out = sameType(xv, sizeOf(outShape));
        out.fill(at.constantValue);
        copyBox(xv, x.shape, x.shape.map(() => 0), out, outShape, before, x.shape);
        return cpuBackend(args).makeTensorInfo(outShape, x.dtype, out as Float32Array);
      },
    },
  ];
};
