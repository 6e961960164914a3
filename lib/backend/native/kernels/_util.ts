/**
 * What the native kernels share: the slice of the cpu backend's interface they use (its data
 * storage and `makeTensorInfo`), float32 views of tensor data without copies, a reusable scratch
 * buffer for im2col columns, and the cpu kernel a native kernel falls back to for cases it does not
 * handle (other dtypes, NCHW, dilation).
 * @module
 */
import { tf } from "../../../_deps.ts";
import type { Blas } from "../blas.ts";

/** The part of TF.js's cpu backend (`MathBackendCPU`) the native kernels rely on. */
export interface CpuBackendLike {
  readonly data: { get(dataId: object): { values?: unknown } };
  makeTensorInfo(shape: number[], dtype: tf.DataType, values?: Float32Array): tf.TensorInfo;
  disposeIntermediateTensorInfo(info: tf.TensorInfo): void;
}

/** The arguments every TF.js kernel function receives. */
export interface KernelArgs {
  /** Required inputs are present; optional ones (bias, prelu weights) are read as possibly absent. */
  readonly inputs: { readonly [name: string]: tf.TensorInfo };
  readonly backend: unknown;
  readonly attrs?: tf.NamedAttrMap;
}

/** A native kernel: its name and its function, given the BLAS. */
export interface NativeKernel {
  readonly kernelName: string;
  readonly kernelFunc: (args: KernelArgs) => tf.TensorInfo | tf.TensorInfo[];
}

/** Builds the native kernels of one family from the loaded BLAS. */
export type KernelFactory = (blas: Blas) => NativeKernel[];

/** The cpu backend's own kernel for `name`, called on the native backend (a cpu subclass). */
export const cpuKernel = (name: string) => {
  const k = tf.getKernel(name, "cpu");
  if (!k) {
    throw new Error(`native backend: the cpu backend has no '${name}' kernel to fall back to`);
  }
  return (args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] =>
    k.kernelFunc(args as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo | tf.TensorInfo[];
};

/** Calls a single-output cpu kernel. */
export const cpuKernel1 = (name: string) => {
  const k = cpuKernel(name);
  return (args: KernelArgs): tf.TensorInfo => k(args) as tf.TensorInfo;
};

/** The backend argument, typed as the cpu backend the native one derives from. */
export const cpuBackend = (args: KernelArgs): CpuBackendLike => args.backend as CpuBackendLike;

/** True when every input is float32 (the only dtype the BLAS kernels handle). */
export const allFloat32 = (...ts: Array<tf.TensorInfo | undefined>): boolean =>
  ts.every((t) => t === undefined || t.dtype === "float32");

/** The values of a float32 tensor as a Float32Array, without a copy when they already are one. */
export const f32 = (backend: CpuBackendLike, t: tf.TensorInfo): Float32Array => {
  const v = backend.data.get(t.dataId).values;
  if (v instanceof Float32Array) return v;
  if (v == null) throw new Error(`native backend: tensor ${t.shape} has no values on this backend`);
  return Float32Array.from(v as ArrayLike<number>);
};

/** Number of elements of a shape. */
export const sizeOf = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

let scratchBuf = new Float32Array(0);
/** Scratch floats kept between calls (larger requests grow it; not kept above this many). */
const SCRATCH_KEEP = 1 << 24;

/**
 * A scratch Float32Array of at least `n` elements with unspecified contents, reused across kernel
 * calls (kernels run synchronously and never nest a scratch user inside another).
 */
export const scratch = (n: number): Float32Array => {
  if (scratchBuf.length >= n) return scratchBuf.subarray(0, n);
  const fresh = new Float32Array(n);
  if (n <= SCRATCH_KEEP) scratchBuf = fresh;
  return fresh;
};

/** Reads a `[h, w]`-or-scalar attribute as a pair. */
export const pair = (v: unknown): [number, number] =>
  typeof v === "number" ? [v, v] : [(v as number[])[0], (v as number[])[1]];
