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
  makeTensorInfo(
    shape: number[],
    dtype: tf.DataType,
    values?: Float32Array | Int32Array,
  ): tf.TensorInfo;
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

/** A tensor's values as an array of `ctor`'s type, without a copy when they already are one. */
const valuesAs = <C extends Float32ArrayConstructor | Int32ArrayConstructor>(
  ctor: C,
  backend: CpuBackendLike,
  t: tf.TensorInfo,
): InstanceType<C> => {
  const v = backend.data.get(t.dataId).values;
  if (v instanceof ctor) return v as InstanceType<C>;
  if (v == null) throw new Error(`native backend: tensor ${t.shape} has no values on this backend`);
  return ctor.from(v as ArrayLike<number>) as InstanceType<C>;
};

/** The values of a float32 tensor as a Float32Array, without a copy when they already are one. */
export const f32 = (backend: CpuBackendLike, t: tf.TensorInfo): Float32Array =>
  valuesAs(Float32Array, backend, t);

/** The values of an int32 tensor as an Int32Array, without a copy when they already are one. */
export const i32 = (backend: CpuBackendLike, t: tf.TensorInfo): Int32Array =>
  valuesAs(Int32Array, backend, t);

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

// ---------------------------------------------------------------------------------------------
// Output buffer recycling

/**
 * Large output arrays of the native kernels are recycled: a fresh array costs a page fault per 4 KiB
 * on first touch (measured ≈17 ms for 33 MB, more than most kernels' own work), so the arrays of
 * disposed tensors are kept by element type and length and handed to the next kernel that needs
 * one of the same size. Only arrays {@link alloc} made are ever recycled, and only while they stayed
 * private to one tensor: {@link installRecycling} marks an array as escaped (never recycled) once
 * its values are read out (`dataSync`, `data`, `bufferSync` all go through `readSync`, which on the
 * cpu backend returns the stored array itself), once it is stored for a second tensor, or once a
 * view of it is (the cpu contiguous `Slice` returns a `subarray`).
 */
type Pooled = Float32Array | Int32Array | Uint8Array;
type PooledCtor = Float32ArrayConstructor | Int32ArrayConstructor | Uint8ArrayConstructor;

/** Arrays below this many elements are allocated normally (small allocations are cheap). */
export const RECYCLE_MIN_ELEMENTS = 1 << 14;
/**
 * At most this many bytes are kept for reuse. A disposed array that does not fit evicts the arrays
 * waiting longest (to the GC) until it does: a pool full of one model's sizes would otherwise refuse
 * every array of the next (the bench's ResNet-18 row, run after ResNet-20's, found 1 GiB of
 * ResNet-20 arrays and got fresh pages for every one of its own: median 622 ms against 456 alone).
 */
export const RECYCLE_MAX_BYTES = 1024 * (1 << 20);
let maxBytes = RECYCLE_MAX_BYTES;

const free = new Map<PooledCtor, Map<number, Pooled[]>>();
/** The arrays in `free`, oldest first (eviction order). */
const waiting = new Set<Pooled>();
let freeBytes = 0;
const stats = { fresh: 0, reused: 0, evicted: 0 };
/** Buffers made by {@link alloc}. */
const owned = new WeakSet<ArrayBufferLike>();
/** Owned buffers currently stored for a tensor. */
const live = new WeakSet<ArrayBufferLike>();
/** Owned buffers that may be referenced outside the backend: never recycled. */
const escaped = new WeakSet<ArrayBufferLike>();
/** Owned buffers waiting in `free`. */
const isFree = new WeakSet<ArrayBufferLike>();

/**
 * An array of `n` elements with UNSPECIFIED contents (a recycled one when available); the kernel
 * must write every element. Pass it to `makeTensorInfo`, which takes ownership.
 */
export const alloc = <C extends PooledCtor>(ctor: C, n: number): InstanceType<C> => {
  if (n >= RECYCLE_MIN_ELEMENTS) {
    const list = free.get(ctor)?.get(n);
    const a = list?.pop();
    if (a) {
      stats.reused++;
      freeBytes -= a.byteLength;
      isFree.delete(a.buffer);
      waiting.delete(a);
      return a as InstanceType<C>;
    }
  }
  const a = new ctor(n);
  if (n >= RECYCLE_MIN_ELEMENTS) {
    stats.fresh++;
    owned.add(a.buffer);
  }
  return a as InstanceType<C>;
};

/** {@link alloc} of float32s. */
export const allocF32 = (n: number): Float32Array => alloc(Float32Array, n);

/** {@link alloc} of float32s, zero-filled. */
export const zerosF32 = (n: number): Float32Array => allocF32(n).fill(0);

const ownedArray = (v: unknown): v is Pooled =>
  (v instanceof Float32Array || v instanceof Int32Array || v instanceof Uint8Array) &&
  owned.has(v.buffer);

/** Counts of large arrays {@link alloc} made fresh or reused, and the bytes waiting for reuse. */
export const recycleStats = (): {
  fresh: number;
  reused: number;
  evicted: number;
  freeBytes: number;
} => ({ ...stats, freeBytes });

/**
 * Sets the bytes kept for reuse (default {@link RECYCLE_MAX_BYTES}; evicting the oldest arrays down
 * to it) and returns the previous limit. For tests.
 */
export const setRecycleMaxBytes = (n: number): number => {
  const prev = maxBytes;
  maxBytes = n;
  evictUntil(0);
  return prev;
};

/** A cpu-backend instance's storage hooks recycling relies on. */
interface Recyclable {
  data: { get(dataId: object): { values?: unknown } | undefined; has(dataId: object): boolean };
  write(values: unknown, shape: number[], dtype: tf.DataType): object;
  move(dataId: object, values: unknown, shape: number[], dtype: tf.DataType, rc: number): void;
  readSync(dataId: object): unknown;
  disposeData(dataId: object, force?: boolean): boolean;
}

const takeFromFree = (v: Pooled) => {
  const list = free.get(v.constructor as PooledCtor)?.get(v.length);
  const i = list ? list.indexOf(v) : -1;
  if (i >= 0) {
    list!.splice(i, 1);
    freeBytes -= v.byteLength;
  }
  isFree.delete(v.buffer);
  waiting.delete(v);
};

/** Drops the arrays waiting longest until `bytes` more fit in the limit (or none is left). */
const evictUntil = (bytes: number) => {
  for (const v of waiting) {
    if (freeBytes + bytes <= maxBytes) return;
    takeFromFree(v);
    stats.evicted++;
  }
};

/** Wraps a cpu-backend instance's storage methods so that disposed kernel outputs are recycled. */
export const installRecycling = (backend: object): void => {
  const b = backend as Recyclable;
  const write = b.write.bind(b), move = b.move.bind(b);
  const readSync = b.readSync.bind(b), disposeData = b.disposeData.bind(b);
  const valuesOf = (dataId: object) => b.data.has(dataId) ? b.data.get(dataId)?.values : undefined;
  const stored = (v: unknown, shared: boolean) => {
    if (!ownedArray(v)) return;
    const buf = v.buffer;
    if (isFree.has(buf)) { // stored again after its tensor was disposed: never reuse it
      takeFromFree(v);
      shared = true;
    }
    if (shared || live.has(buf) || v.byteOffset !== 0 || v.byteLength !== buf.byteLength) {
      escaped.add(buf);
    }
    live.add(buf);
  };
  b.write = (values, shape, dtype) => {
    stored(values, false);
    return write(values, shape, dtype);
  };
  b.move = (dataId, values, shape, dtype, rc) => {
    stored(values, true);
    move(dataId, values, shape, dtype, rc);
  };
  b.readSync = (dataId) => {
    const out = readSync(dataId);
    const v = valuesOf(dataId);
    if (ownedArray(v)) escaped.add(v.buffer);
    return out;
  };
  b.disposeData = (dataId, force) => {
    const v = valuesOf(dataId);
    const done = disposeData(dataId, force);
    if (ownedArray(v) && !b.data.has(dataId)) {
      const buf = v.buffer;
      live.delete(buf);
      if (!escaped.has(buf) && !isFree.has(buf) && v.byteLength <= maxBytes) {
        evictUntil(v.byteLength);
        const ctor = v.constructor as PooledCtor;
        let bySize = free.get(ctor);
        if (!bySize) free.set(ctor, bySize = new Map());
        let list = bySize.get(v.length);
        if (!list) bySize.set(v.length, list = []);
        list.push(v);
        isFree.add(buf);
        waiting.add(v);
        freeBytes += v.byteLength;
      }
    }
    return done;
  };
};

/**
 * An int32 key of the (non-NaN) float32 bits `b` that orders like the floats, −0 equal to +0: the
 * max and arg-max loops compare keys with `Math.max` and `+(k > m)`, which V8 compiles without
 * branches (a data-dependent float branch mispredicts on random data: measured 4–5× slower).
 * The loops test NaN bits as `(b & 0x7fffffff) > 0x7f800000` and write such constants inline: read
 * from module constants (heap numbers, beyond the small-integer range) they made V8 treat the keys
 * as doubles, 3× slower.
 */
export const floatKey = (b: number): number => (b ^ ((b >> 31) & 0x7fffffff)) - (b >> 31);

/** The float32 bits of a {@link floatKey} (−0 comes back as +0). */
export const keyBits = (k: number): number => {
  const t = k + (k >> 31);
  return t ^ ((t >> 31) & 0x7fffffff);
};

/** Reads a `[h, w]`-or-scalar attribute as a pair. */
export const pair = (v: unknown): [number, number] =>
  typeof v === "number" ? [v, v] : [(v as number[])[0], (v as number[])[1]];
