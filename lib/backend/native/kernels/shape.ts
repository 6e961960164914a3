/**
 * `Slice` and `PadV2` as strided block copies, for every numeric dtype.
 *
 * Why: the stock cpu `Slice` copies a non-contiguous slice element by element through
 * `TensorBuffer.get` (profiled: 34 slices of a 16×20×20×64 tensor took 14.7 s), and its `PadV2`
 * maps every element through index arithmetic. The project's window ops (`ops/_windows.ts`:
 * im2col by pad + slices, max-pool masks, col2im by pads) and hence the gradient fixes and the
 * DSL's R-forward and transpose rules of conv and pooling are built from exactly these two ops.
 * Here trailing axes the block covers fully are merged into one run, and each run is one
 * `TypedArray.set` (or a short loop). Contiguous slices, empty tensors and strings use the cpu
 * kernels (the cpu contiguous slice is already a zero-copy view).
 * @module
 */
import { tf } from "../../../_deps.ts";
import { cpuBackend, cpuKernel, type KernelArgs, type NativeKernel, sizeOf } from "./_util.ts";

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

const numericValues = (args: KernelArgs, x: tf.TensorInfo): Numeric | null => {
  if (x.dtype === "string" || x.dtype === "complex64") return null;
  const v = cpuBackend(args).data.get(x.dataId).values;
  return v instanceof Float32Array || v instanceof Int32Array || v instanceof Uint8Array ? v : null;
};

const sameType = (like: Numeric, n: number): Numeric =>
  new (like.constructor as new (n: number) => Numeric)(n);

/** The shape kernels. */
export const shapeKernels = (): NativeKernel[] => {
  const cpuSlice = cpuKernel("Slice");
  const cpuPad = cpuKernel("PadV2");
  return [
    {
      kernelName: "Slice",
      kernelFunc: (args) => {
        const { x } = args.inputs;
        const xv = numericValues(args, x);
        if (!xv) return cpuSlice(args);
        const at = args.attrs as { begin: number | number[]; size?: number | number[] };
        const [begin, size] = tf.slice_util.parseSliceParams(
          x as unknown as tf.Tensor,
          at.begin,
          at.size,
        );
        tf.slice_util.assertParamsValid(x as unknown as tf.Tensor, begin, size);
        if (sizeOf(size) === 0 || tf.slice_util.isSliceContinous(x.shape, begin, size)) {
          return cpuSlice(args);
        }
        const out = sameType(xv, sizeOf(size));
        copyBox(xv, x.shape, begin, out, size, size.map(() => 0), size);
        return cpuBackend(args).makeTensorInfo(size, x.dtype, out as Float32Array);
      },
    },
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
        if (at.constantValue !== 0) out.fill(at.constantValue);
        copyBox(xv, x.shape, x.shape.map(() => 0), out, outShape, before, x.shape);
        return cpuBackend(args).makeTensorInfo(outShape, x.dtype, out as Float32Array);
      },
    },
  ];
};
