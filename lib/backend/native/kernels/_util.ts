/**
 * What the native kernels share: the slice of the cpu backend's interface they use (its data
 * storage and `makeTensorInfo`), float32 views of tensor data without copies, a reusable scratch
 * buffer for im2col columns, and the cpu kernel a native kernel falls back to for cases it does not
 * handle (other dtypes, NCHW, dilation).
 * @module
 */
import { tf } from "../../../_deps.ts";
import type { Blas } from "../blas.ts";
import { MMAP_THRESHOLD_BYTES } from "../malloc.ts";

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
 * disposed tensors are kept by element type, length and kind of buffer (plain or shared) and handed
 * to the next kernel that needs one of the same size. Only arrays {@link alloc} (or
 * {@link allocSharedF32}) made are ever recycled, and only while they stayed inside the backend:
 * {@link installRecycling} counts the tensors whose stored values lie on an array's buffer (the
 * array itself, or a view of it: the cpu contiguous `Slice` stores a `subarray`), and the array
 * returns to the pool only when the last of them is disposed. It marks an array as escaped (never
 * recycled) once its values are read out (`dataSync`, `data`, `bufferSync` all go through
 * `readSync`, which on the cpu backend returns the stored array itself; a view's values are read out
 * as a copy instead, so that the array stays recyclable), once it is moved in from elsewhere
 * (`move`), or once it is stored again after its tensors were disposed.
 */
type Pooled = Float32Array | Int32Array | Uint8Array;
type PooledCtor = Float32ArrayConstructor | Int32ArrayConstructor | Uint8ArrayConstructor;

/** Arrays below this many elements are allocated normally (small allocations are cheap). */
export const RECYCLE_MIN_ELEMENTS = 1 << 14;
/**
 * At most this many bytes are kept for reuse. Beyond that a disposed array makes room by dropping
 * free arrays (to the GC), the longest-kept first: a large one ({@link RECYCLE_FIRST_BYTES}) drops
 * smaller ones, a smaller one drops other smaller ones, never a large one. (A pool full of one
 * model's sizes would otherwise refuse every array of the next: the bench's ResNet-18 row, run
 * after ResNet-20's, found 1 GiB of ResNet-20 arrays and got fresh pages for every one of its own,
 * median 622 ms against 456 alone.) When the droppable arrays cannot make room, the array goes.
 */
export const RECYCLE_MAX_BYTES = 1024 * (1 << 20);
/**
 * Arrays of at least this many bytes take precedence in the pool: glibc serves them by a fresh
 * `mmap` (`malloc.ts`), so a fresh one is new pages (≈ 0.3–0.7 s of page faults for the LSTM pass's
 * 112 MB on this project's VMs), while a smaller one comes from the process's heap.
 */
export const RECYCLE_FIRST_BYTES = MMAP_THRESHOLD_BYTES;

/** The pool's limits in force (tests shrink them). */
export interface RecycleLimits {
  readonly maxBytes: number;
  readonly firstBytes: number;
}
let limits: RecycleLimits = { maxBytes: RECYCLE_MAX_BYTES, firstBytes: RECYCLE_FIRST_BYTES };

/** Sets the pool's limits (for tests; arrays already kept stay); returns the previous ones. */
export const setRecycleLimits = (next: RecycleLimits): RecycleLimits => {
  const prev = limits;
  limits = next;
  return prev;
};

/** Pools by kind of buffer (plain or shared), element type and length. */
const free = new Map<boolean, Map<PooledCtor, Map<number, Pooled[]>>>();
let freeBytes = 0;
const stats = { fresh: 0, reused: 0, evicted: 0 };
/** Buffers made by {@link alloc}, with the array made on each. */
const owned = new WeakMap<ArrayBufferLike, Pooled>();
/** Owned buffers → how many stored tensors' values lie on them (the array or views of it). */
const live = new WeakMap<ArrayBufferLike, number>();
/** Owned buffers that may be referenced outside the backend: never recycled. */
const escaped = new WeakSet<ArrayBufferLike>();
/** Owned buffers waiting in `free`. */
const isFree = new WeakSet<ArrayBufferLike>();
/** The arrays in `free`, in the order they were put there. */
const freeOrder = new Set<Pooled>();

const isShared = (a: Pooled): boolean =>
  typeof SharedArrayBuffer !== "undefined" && a.buffer instanceof SharedArrayBuffer;

const poolOf = (shared: boolean, ctor: PooledCtor, n: number): Pooled[] => {
  let byCtor = free.get(shared);
  if (!byCtor) free.set(shared, byCtor = new Map());
  let bySize = byCtor.get(ctor);
  if (!bySize) byCtor.set(ctor, bySize = new Map());
  let list = bySize.get(n);
  if (!list) bySize.set(n, list = []);
  return list;
};

/**
 * What a kernel proved about the values it wrote into an array, for the kernels that read it next:
 * - `noNaN`: no element is NaN;
 * - `noNegative`: no element is negative, −0 or −∞ (NaN is allowed unless `noNaN` says otherwise).
 * A fact lives with the array object: tensors never change their values, and {@link alloc} clears
 * an array's facts before handing it out again. (A ReLU output proves both where its input had no
 * NaN; max-pooling takes oneDNN's path only for such inputs, `pool.ts`.)
 */
export interface ArrayFacts {
  readonly noNaN?: true;
  readonly noNegative?: true;
  /**
   * Int32 arg-max indices that oneDNN's max-pooling of geometry `g` computed (`pool.ts`), with the
   * workspace it recorded them in (one byte per window: the position in the window), from which its
   * backward pass can scatter.
   */
  readonly maxPoolWorkspace?: { readonly g: tf.backend_util.Conv2DInfo; readonly ws: Uint8Array };
}
const facts = new WeakMap<object, ArrayFacts>();

/** Records facts of `a`'s values, added to those known. */
export const noteFacts = (a: ArrayBufferView, f: ArrayFacts): void => {
  facts.set(a, { ...facts.get(a), ...f });
};

/** The facts recorded of `a`'s values ({} when none). */
export const factsOf = (a: ArrayBufferView): ArrayFacts => facts.get(a) ?? {};

const allocIn = <C extends PooledCtor>(ctor: C, n: number, shared: boolean): InstanceType<C> => {
  if (n >= RECYCLE_MIN_ELEMENTS) {
    const a = free.get(shared)?.get(ctor)?.get(n)?.pop();
    if (a) {
      facts.delete(a);
      stats.reused++;
      freeBytes -= a.byteLength;
      isFree.delete(a.buffer);
      freeOrder.delete(a);
      return a as InstanceType<C>;
    }
  }
  const a = shared
    ? new ctor(new SharedArrayBuffer(n * ctor.BYTES_PER_ELEMENT) as unknown as ArrayBuffer)
    : new ctor(n);
  if (n >= RECYCLE_MIN_ELEMENTS) {
    stats.fresh++;
    owned.set(a.buffer, a);
  }
  return a as InstanceType<C>;
};

/**
 * An array of `n` elements with UNSPECIFIED contents (a recycled one when available); the kernel
 * must write every element. Pass it (or views of it, each for its own tensor) to `makeTensorInfo`,
 * which takes ownership.
 */
export const alloc = <C extends PooledCtor>(ctor: C, n: number): InstanceType<C> =>
  allocIn(ctor, n, false);

/** {@link alloc} of float32s. */
export const allocF32 = (n: number): Float32Array => alloc(Float32Array, n);

/**
 * {@link alloc} of float32s on a SharedArrayBuffer (threads write into it; pooled apart from the
 * plain arrays).
 */
export const allocSharedF32 = (n: number): Float32Array => allocIn(Float32Array, n, true);

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

/** A cpu-backend instance's storage hooks recycling relies on. */
interface Recyclable {
  data: { get(dataId: object): { values?: unknown } | undefined; has(dataId: object): boolean };
  write(values: unknown, shape: number[], dtype: tf.DataType): object;
  move(dataId: object, values: unknown, shape: number[], dtype: tf.DataType, rc: number): void;
  readSync(dataId: object): unknown;
  disposeData(dataId: object, force?: boolean): boolean;
}

const takeFromFree = (a: Pooled) => {
  const list = free.get(isShared(a))?.get(a.constructor as PooledCtor)?.get(a.length);
  const i = list ? list.indexOf(a) : -1;
  if (i >= 0) {
    list!.splice(i, 1);
    freeBytes -= a.byteLength;
  }
  isFree.delete(a.buffer);
  freeOrder.delete(a);
};

/**
 * Makes room for `bytes` more in the pool when they do not fit, by dropping free arrays the
 * longest-kept first: for a large array ({@link RECYCLE_FIRST_BYTES}) smaller ones, for a smaller
 * one other arrays below {@link RECYCLE_FIRST_BYTES}. True when they fit.
 */
const makeRoom = (bytes: number): boolean => {
  const { maxBytes, firstBytes } = limits;
  if (freeBytes + bytes <= maxBytes) return true;
  if (bytes > maxBytes) return false;
  const droppable = (a: Pooled) => a.byteLength < (bytes >= firstBytes ? bytes : firstBytes);
  let room = 0;
  for (const a of freeOrder) if (droppable(a)) room += a.byteLength;
  if (freeBytes - room + bytes > maxBytes) return false;
  for (const a of freeOrder) {
    if (freeBytes + bytes <= maxBytes) break;
    if (droppable(a)) {
      takeFromFree(a);
      stats.evicted++;
    }
  }
  return true;
};

/** Wraps a cpu-backend instance's storage methods so that disposed kernel outputs are recycled. */
export const installRecycling = (backend: object): void => {
  const b = backend as Recyclable;
  const write = b.write.bind(b), move = b.move.bind(b);
  const readSync = b.readSync.bind(b), disposeData = b.disposeData.bind(b);
  const valuesOf = (dataId: object) => b.data.has(dataId) ? b.data.get(dataId)?.values : undefined;
  const stored = (v: unknown, moved: boolean) => {
    if (!ownedArray(v)) return;
    const buf = v.buffer;
    if (isFree.has(buf)) { // stored again after its tensors were disposed: never reuse it
      takeFromFree(owned.get(buf)!);
      escaped.add(buf);
    }
    if (moved) escaped.add(buf);
    live.set(buf, (live.get(buf) ?? 0) + 1);
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
    if (!ownedArray(v)) return out;
    // A view (a contiguous slice) is read out as a copy, so the array under it stays recyclable:
    // reading one element of a slice would otherwise cost the whole array (its next use is fresh
    // pages).
    if (out === v && v !== owned.get(v.buffer)) return v.slice();
    escaped.add(v.buffer);
    return out;
  };
  b.disposeData = (dataId, force) => {
    const v = valuesOf(dataId);
    const done = disposeData(dataId, force);
    if (ownedArray(v) && !b.data.has(dataId)) {
      const buf = v.buffer;
      const left = (live.get(buf) ?? 1) - 1;
      if (left > 0) { // other tensors' values still lie on this buffer
        live.set(buf, left);
        return done;
      }
      live.delete(buf);
      const a = owned.get(buf)!;
      if (!escaped.has(buf) && !isFree.has(buf) && makeRoom(a.byteLength)) {
        poolOf(isShared(a), a.constructor as PooledCtor, a.length).push(a);
        isFree.add(buf);
        freeOrder.add(a);
        freeBytes += a.byteLength;
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
