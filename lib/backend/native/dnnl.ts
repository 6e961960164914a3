/**
 * The oneDNN binding of the `native` backend: the C API of oneDNN 2.x (`dnnl.h`, Debian's
 * `libdnnl2`) through Deno FFI, as a few checked calls the convolution kernels build on
 * (`kernels/conv_dnnl.ts`) and train-mode batch norm (`kernels/batch_norm_dnnl.ts`): engine and stream, memory descriptors, primitive descriptors and
 * primitives, memory objects over the tensors' Float32Arrays, reorders, execution.
 *
 * The library comes from `MLHF_DNNL_PATH` when set (only that path is tried), else
 * {@link DNNL_CANDIDATES}; `MLHF_DNNL=0` turns it off. It is opened at most once per process;
 * {@link loadDnnl} returns the same result on every call, with the reason when it could not be used.
 * Only major version 2 is accepted: the structs below have the sizes of oneDNN 2.x's headers
 * (3.x replaced this API). Every call's status is checked; a failure names the call and the status.
 * Threads: oneDNN's own runtime (Debian builds it with OpenMP: `OMP_NUM_THREADS`, default every
 * core); {@link Dnnl.threads} reports it. (Until the strided 1×1 filter gradient was taken from
 * oneDNN, `kernels/conv_dnnl.ts`, this binding set one thread: that pass corrupted the heap on more.)
 * @module
 */

/** Library names tried in order when `MLHF_DNNL_PATH` is not set. */
export const DNNL_CANDIDATES: readonly string[] = ["libdnnl.so.2"];

// Sizes and constants of oneDNN 2.6's dnnl_types.h, printed by a C program compiled against
// /usr/include/oneapi/dnnl (sizeof, offsetof, enum values); stable across 2.x.
/** sizeof(dnnl_memory_desc_t). */
export const MD_BYTES = 696;
/** sizeof(dnnl_convolution_desc_t) (5976), rounded up: the call only writes into it. */
const CONV_DESC_BYTES = 6144;
/** sizeof(dnnl_batch_normalization_desc_t) (3496), rounded up: the call only writes into it. */
const BNORM_DESC_BYTES = 4096;
/** sizeof(dnnl_binary_desc_t) (2096), rounded up. */
const BINARY_DESC_BYTES = 3072;
/** sizeof(dnnl_pooling_v2_desc_t) (3288), rounded up. */
const POOL_DESC_BYTES = 4096;
/** sizeof(dnnl_reduction_desc_t) (1408), rounded up. */
const REDUCTION_DESC_BYTES = 2048;
/** sizeof(dnnl_exec_arg_t): { int arg; dnnl_memory_t memory; } with memory at offset 8. */
const EXEC_ARG_BYTES = 16;

const ENGINE_CPU = 1;
const STREAM_DEFAULT_FLAGS = 1;
const F32 = 3;
const S32 = 4;
/** Format tags (dnnl_format_tag_t). */
export const TAG = { any: 1, a: 2, ab: 3, nhwc: 20, hwio: 30 } as const;
/** Propagation kinds (dnnl_prop_kind_t). */
const PROP_FORWARD_TRAINING = 64;
const PROP_BACKWARD = 128;
/** Batch-normalization flags (dnnl_normalization_flags_t): separate scale (γ) and shift (β). */
const BNORM_USE_SCALE = 0x8, BNORM_USE_SHIFT = 0x10;
const CONVOLUTION_DIRECT = 1;
/** Algorithm kinds (dnnl_alg_kind_t) of the binary, eltwise, reduction and pooling primitives. */
export const ALG = {
  binaryAdd: 0x1fff0,
  binaryMul: 0x1fff1,
  binaryMax: 0x1fff2,
  binaryLt: 0x1fff9,
  eltwiseLinear: 0x7f,
  reductionSum: 0x2fff4,
  poolingMax: 0x1ff,
} as const;
/** Execution argument ids (DNNL_ARG_*). */
export const ARG = {
  src: 1,
  src1: 2,
  dst: 17,
  weights: 33,
  diffSrc: 129,
  diffDst: 145,
  diffWeights: 161,
  mean: 49,
  variance: 50,
  scale: 51,
  shift: 52,
  diffScale: 255,
  diffShift: 256,
  workspace: 64,
  /** DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1: the first post-op's second operand. */
  postOp0Src1: 16386,
  from: 1,
  to: 17,
} as const;
/** Memory-descriptor queries (dnnl_query_t). */
export const QUERY = {
  srcMd: 129,
  diffSrcMd: 130,
  weightsMd: 131,
  diffWeightsMd: 132,
  dstMd: 133,
  diffDstMd: 134,
  workspaceMd: 135,
} as const;
const QUERY_IMPL_INFO_STR = 8;
const RUNTIME_OMP = 2;
/** DNNL_MEMORY_ALLOCATE ((void *)-1): the library allocates (and frees) the buffer. */
const MEMORY_ALLOCATE = 0xffff_ffff_ffff_ffffn;

const STATUS: readonly string[] = [
  "success",
  "out_of_memory",
  "invalid_arguments",
  "unimplemented",
  "iterator_ends",
  "runtime_error",
  "not_required",
];

const SYMBOLS = {
  dnnl_version: { parameters: [], result: "pointer" },
  dnnl_engine_create: { parameters: ["buffer", "i32", "usize"], result: "i32" },
  dnnl_stream_create: { parameters: ["buffer", "pointer", "u32"], result: "i32" },
  dnnl_stream_wait: { parameters: ["pointer"], result: "i32" },
  dnnl_memory_desc_init_by_tag: {
    parameters: ["buffer", "i32", "buffer", "i32", "i32"],
    result: "i32",
  },
  dnnl_memory_desc_init_by_strides: {
    // md, ndims, dims, data type, strides
    parameters: ["buffer", "i32", "buffer", "i32", "buffer"],
    result: "i32",
  },
  dnnl_memory_desc_equal: { parameters: ["buffer", "buffer"], result: "i32" },
  dnnl_memory_desc_get_size: { parameters: ["buffer"], result: "usize" },
  dnnl_convolution_forward_desc_init: {
    // desc, prop, alg, src, weights, bias (null), dst, strides, padding_l, padding_r
    parameters: [
      "buffer",
      "i32",
      "i32",
      "buffer",
      "buffer",
      "pointer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
    ],
    result: "i32",
  },
  dnnl_convolution_backward_data_desc_init: {
    // desc, alg, diff_src, weights, diff_dst, strides, padding_l, padding_r
    parameters: ["buffer", "i32", "buffer", "buffer", "buffer", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  dnnl_convolution_backward_weights_desc_init: {
    // desc, alg, src, diff_weights, diff_bias (null), diff_dst, strides, padding_l, padding_r
    parameters: [
      "buffer",
      "i32",
      "buffer",
      "buffer",
      "pointer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
    ],
    result: "i32",
  },
  dnnl_batch_normalization_forward_desc_init: {
    // desc, prop, data, epsilon, flags
    parameters: ["buffer", "i32", "buffer", "f32", "u32"],
    result: "i32",
  },
  dnnl_batch_normalization_backward_desc_init: {
    // desc, prop, diff data, data, epsilon, flags
    parameters: ["buffer", "i32", "buffer", "buffer", "f32", "u32"],
    result: "i32",
  },
  dnnl_binary_desc_init: {
    // desc, alg, src0, src1, dst
    parameters: ["buffer", "i32", "buffer", "buffer", "buffer"],
    result: "i32",
  },
  dnnl_primitive_desc_create: {
    // out, op desc, attr (or null), engine, hint (forward pd or null)
    parameters: ["buffer", "buffer", "pointer", "pointer", "pointer"],
    result: "i32",
  },
  dnnl_primitive_attr_create: { parameters: ["buffer"], result: "i32" },
  dnnl_primitive_attr_destroy: { parameters: ["pointer"], result: "i32" },
  dnnl_primitive_attr_set_post_ops: { parameters: ["pointer", "pointer"], result: "i32" },
  dnnl_post_ops_create: { parameters: ["buffer"], result: "i32" },
  dnnl_post_ops_destroy: { parameters: ["pointer"], result: "i32" },
  dnnl_post_ops_append_binary: { parameters: ["pointer", "i32", "buffer"], result: "i32" },
  dnnl_post_ops_append_eltwise: {
    // post_ops, scale, alg, alpha, beta
    parameters: ["pointer", "f32", "i32", "f32", "f32"],
    result: "i32",
  },
  dnnl_pooling_v2_forward_desc_init: {
    // desc, prop, alg, src, dst, strides, kernel, dilation, padding_l, padding_r
    parameters: [
      "buffer",
      "i32",
      "i32",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
    ],
    result: "i32",
  },
  dnnl_pooling_v2_backward_desc_init: {
    // desc, alg, diff_src, diff_dst, strides, kernel, dilation, padding_l, padding_r
    parameters: [
      "buffer",
      "i32",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
    ],
    result: "i32",
  },
  dnnl_reduction_desc_init: {
    // desc, alg, src, dst, p, eps
    parameters: ["buffer", "i32", "buffer", "buffer", "f32", "f32"],
    result: "i32",
  },
  dnnl_primitive_attr_set_scales: {
    // attr, arg, count, mask, scales
    parameters: ["pointer", "i32", "i64", "i32", "buffer"],
    result: "i32",
  },
  dnnl_reorder_primitive_desc_create: {
    // out, src md, src engine, dst md, dst engine, attr (null)
    parameters: ["buffer", "buffer", "pointer", "buffer", "pointer", "pointer"],
    result: "i32",
  },
  dnnl_primitive_desc_query: { parameters: ["pointer", "i32", "i32", "buffer"], result: "i32" },
  dnnl_primitive_desc_query_md: { parameters: ["pointer", "i32", "i32"], result: "pointer" },
  dnnl_primitive_desc_destroy: { parameters: ["pointer"], result: "i32" },
  dnnl_primitive_create: { parameters: ["buffer", "pointer"], result: "i32" },
  dnnl_primitive_execute: { parameters: ["pointer", "pointer", "i32", "buffer"], result: "i32" },
  dnnl_primitive_destroy: { parameters: ["pointer"], result: "i32" },
  dnnl_memory_create: { parameters: ["buffer", "buffer", "pointer", "pointer"], result: "i32" },
  dnnl_memory_set_data_handle: { parameters: ["pointer", "pointer"], result: "i32" },
  dnnl_memory_destroy: { parameters: ["pointer"], result: "i32" },
} as const;

type Ptr = Deno.PointerObject;
/** A memory descriptor (the bytes of a dnnl_memory_desc_t). */
export type MemoryDesc = Uint8Array<ArrayBuffer>;
/** An operation descriptor (the bytes of e.g. a dnnl_convolution_desc_t). */
export type OpDesc = Uint8Array<ArrayBuffer>;
/** Spatial strides and paddings of a 2-D convolution, (height, width) each. */
export interface ConvSpatial {
  readonly strides: readonly [number, number];
  readonly padL: readonly [number, number];
  readonly padR: readonly [number, number];
}

/** A post-op of a binary primitive (see {@link Dnnl.binaryAttr}). */
export type PostOp =
  | { readonly alg: number; readonly src1: MemoryDesc }
  | { readonly eltwise: number; readonly alpha: number; readonly beta: number };

/** A loaded oneDNN with a CPU engine and stream. */
export interface Dnnl {
  /** The path or soname that was opened. */
  readonly path: string;
  /** "major.minor.patch". */
  readonly version: string;
  /** OpenMP threads oneDNN runs on (`omp_get_max_threads`), or null for other runtimes. */
  readonly threads: number | null;
  /** `OMP_WAIT_POLICY` as the OpenMP runtime saw it at load (null for other runtimes). */
  readonly waitPolicy: string | null;
  /** A f32 memory descriptor of logical dims (oneDNN order: N,C,H,W / O,I,H,W) in `tag`'s layout. */
  memoryDesc(dims: readonly number[], tag: number): MemoryDesc;
  /**
   * A memory descriptor of logical dims laid out by element strides (f32, or s32 with `int32`):
   * any permutation of a dense array's axes is such a layout.
   */
  memoryDescStrides(
    dims: readonly number[],
    strides: readonly number[],
    int32?: boolean,
  ): MemoryDesc;
  /** Bytes of a memory described by `md`. */
  mdSize(md: MemoryDesc): number;
  /** True when two memory descriptors describe the same layout. */
  mdEqual(a: MemoryDesc, b: MemoryDesc): boolean;
  /** A forward (training) convolution descriptor, direct algorithm, no bias. */
  convForwardDesc(src: MemoryDesc, w: MemoryDesc, dst: MemoryDesc, s: ConvSpatial): OpDesc;
  /** A backward-data convolution descriptor, direct algorithm. */
  convBackwardDataDesc(dSrc: MemoryDesc, w: MemoryDesc, dDst: MemoryDesc, s: ConvSpatial): OpDesc;
  /** A backward-weights convolution descriptor, direct algorithm, no bias. */
  convBackwardWeightsDesc(
    src: MemoryDesc,
    dW: MemoryDesc,
    dDst: MemoryDesc,
    s: ConvSpatial,
  ): OpDesc;
  /**
   * A forward-training batch-normalization descriptor over `data` (statistics computed per channel
   * over every other axis; scale γ and shift β as separate [C] memories).
   */
  bnormForwardDesc(data: MemoryDesc, epsilon: number): OpDesc;
  /** The backward one (dx, dγ and dβ), for `data` as in {@link bnormForwardDesc}. */
  bnormBackwardDesc(data: MemoryDesc, epsilon: number): OpDesc;
  /** A binary descriptor dst = src0 op src1 (`alg` an {@link ALG} binary kind). */
  binaryDesc(alg: number, src0: MemoryDesc, src1: MemoryDesc, dst: MemoryDesc): OpDesc;
  /**
   * A primitive descriptor for `op` (`hint`: the forward one, for backward passes), or null when
   * oneDNN has no implementation (status unimplemented). Destroy it with {@link destroyPd}.
   */
  primitiveDesc(op: OpDesc, hint: Ptr | null, attr?: Ptr | null): Ptr | null;
  /**
   * Primitive attributes of a binary primitive: its first operand scaled by `src0Scale` before the
   * operation, then the post-ops in order, each on the result so far: a binary one (dst = dst `alg`
   * src1, the i-th post-op's src1 bound as DNNL_ARG_ATTR_MULTIPLE_POST_OP(i) | DNNL_ARG_SRC_1:
   * {@link ARG}.postOp0Src1 for the first) or an element-wise one (dst = `eltwise`(dst; alpha,
   * beta)). Destroy them with {@link destroyAttr}.
   */
  binaryAttr(src0Scale: number, postOps: readonly PostOp[]): Ptr;
  /** A max-pooling descriptor, forward training (with a workspace of the arg-max), no dilation. */
  poolForwardDesc(
    src: MemoryDesc,
    dst: MemoryDesc,
    kernel: readonly [number, number],
    s: ConvSpatial,
  ): OpDesc;
  /** The max-pooling backward descriptor (it takes the forward's workspace). */
  poolBackwardDesc(
    dSrc: MemoryDesc,
    dDst: MemoryDesc,
    kernel: readonly [number, number],
    s: ConvSpatial,
  ): OpDesc;
  /** A reduction descriptor (`alg` an {@link ALG} reduction kind) from `src` to `dst`'s shape. */
  reductionDesc(alg: number, src: MemoryDesc, dst: MemoryDesc): OpDesc;
  destroyAttr(attr: Ptr): void;
  /** A reorder primitive descriptor from `src`'s layout to `dst`'s. */
  reorderDesc(src: MemoryDesc, dst: MemoryDesc): Ptr;
  /** A copy of the memory descriptor a primitive descriptor chose for `what` (a {@link QUERY}). */
  queryMd(pd: Ptr, what: number): MemoryDesc;
  /** The implementation oneDNN picked (e.g. "brgconv:avx512_core"). */
  implInfo(pd: Ptr): string;
  destroyPd(pd: Ptr): void;
  primitive(pd: Ptr): Ptr;
  destroyPrimitive(p: Ptr): void;
  /** A memory object: with a buffer oneDNN allocates, or none (set one with {@link setData}). */
  memory(md: MemoryDesc, allocate: boolean): Ptr;
  destroyMemory(m: Ptr): void;
  /**
   * Points a memory object at `a`'s elements. Call it in the same synchronous turn as the execute
   * that uses it: the pointer is valid while `a` is alive and JS does not run.
   */
  setData(m: Ptr, a: Float32Array | Int32Array | Uint8Array): void;
  /** Execution arguments: (DNNL_ARG_*, memory) pairs as a dnnl_exec_arg_t array. */
  execArgs(pairs: ReadonlyArray<readonly [number, Ptr]>): Uint8Array<ArrayBuffer>;
  /** Runs a primitive on the stream and waits for it. */
  execute(p: Ptr, args: Uint8Array<ArrayBuffer>): void;
  /**
   * Runs a primitive as {@link execute} does on one OpenMP thread (where the runtime is OpenMP; else
   * as {@link execute}): for small ones, whose parallel region costs more than their work.
   */
  executeSerial(p: Ptr, args: Uint8Array<ArrayBuffer>): void;
}

/** Either oneDNN, or why it could not be loaded. */
export type DnnlResult =
  | { readonly ok: true; readonly dnnl: Dnnl }
  | { readonly ok: false; readonly reason: string };

let cached: DnnlResult | null = null;

const ffiPermitted = (): boolean => {
  try {
    return Deno.permissions.querySync({ name: "ffi" }).state === "granted";
  } catch {
    return false;
  }
};

/** An environment variable, or undefined when unset or not readable (no --allow-env). */
const envVar = (name: string): string | undefined => {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
};

/** Throws unless a oneDNN call returned success, naming the call and the status. */
const check = (call: string, status: number): void => {
  if (status !== 0) {
    throw new Error(`oneDNN: ${call} failed with status ${status} (${STATUS[status] ?? "?"})`);
  }
};

/** A pointer read from an out-parameter (one pointer-sized slot). */
const outPtr = (slot: BigUint64Array<ArrayBuffer>, call: string): Ptr => {
  const p = Deno.UnsafePointer.create(slot[0]);
  if (!p) throw new Error(`oneDNN: ${call} returned a null handle`);
  return p;
};

const slotBytes = (slot: BigUint64Array<ArrayBuffer>) => new Uint8Array(slot.buffer);

/** dnnl_dims_t (int64[12]) holding `vals`. */
const dims = (vals: readonly number[]): Uint8Array<ArrayBuffer> => {
  const d = new BigInt64Array(12);
  vals.forEach((v, i) => (d[i] = BigInt(v)));
  return new Uint8Array(d.buffer);
};

/** The OpenMP runtime oneDNN loaded (libgomp): its thread count, and a setter for this thread. */
interface OmpControl {
  /** `omp_get_max_threads()`. */
  readonly threads: number;
  /** `omp_set_num_threads(n)`: the threads of the calling thread's next parallel regions. */
  readonly setThreads: (n: number) => void;
}

/** libgomp's thread controls (null if not found). */
const ompControl = (): OmpControl | null => {
  try {
    const gomp = Deno.dlopen("libgomp.so.1", {
      omp_get_max_threads: { parameters: [], result: "i32" },
      omp_set_num_threads: { parameters: ["i32"], result: "void" },
    });
    return {
      threads: Number(gomp.symbols.omp_get_max_threads()),
      setThreads: (n) => gomp.symbols.omp_set_num_threads(n),
    };
  } catch {
    return null;
  }
};

/**
 * Makes OpenMP's idle threads sleep instead of spin (`OMP_WAIT_POLICY=passive`) unless the variable
 * is set already: it must be in the environment before the OpenMP runtime loads with oneDNN.
 * Spinning workers took the cores from the JS thread and OpenBLAS's threads between calls: a small
 * conv took 1.5–19 ms per call instead of 0.07–0.2 ms on the shared 2-core machine (README).
 * Returns the policy in effect ("default" when unset and not settable).
 */
const passiveOpenMp = (): string => {
  const set = envVar("OMP_WAIT_POLICY");
  if (set !== undefined) return set;
  try {
    Deno.env.set("OMP_WAIT_POLICY", "passive");
    return "passive";
  } catch {
    return "default";
  }
};

/**
 * Keeps the library mapped until the process ends (glibc's `dlopen` with `RTLD_NODELETE`): Deno
 * closes its FFI libraries at exit, and unmapping oneDNN (and with it the OpenMP runtime) while
 * OpenMP's idle worker threads still sleep in its code crashed the process after its last line
 * (SIGSEGV, SIGBUS or abort in about one exit of six). Returns false where that cannot be done.
 */
const pinLibrary = (path: string): boolean => {
  const RTLD_NOW = 2, RTLD_NODELETE = 0x1000;
  try {
    const libc = Deno.dlopen("libc.so.6", {
      dlopen: { parameters: ["buffer", "i32"], result: "pointer" },
    });
    const handle = libc.symbols.dlopen(
      new TextEncoder().encode(`${path}\0`),
      RTLD_NOW | RTLD_NODELETE,
    );
    libc.close();
    return handle !== null;
  } catch {
    return false;
  }
};

const open = (path: string): Dnnl => {
  const waitPolicy = passiveOpenMp();
  const lib = Deno.dlopen(path, SYMBOLS);
  pinLibrary(path);
  const sym = lib.symbols;
  const vp = sym.dnnl_version();
  if (!vp) throw new Error("dnnl_version returned null");
  const vv = new Deno.UnsafePointerView(vp);
  const [major, minor, patch] = [vv.getInt32(0), vv.getInt32(4), vv.getInt32(8)];
  const cpuRuntime = vv.getUint32(24);
  if (major !== 2) {
    lib.close();
    throw new Error(`oneDNN ${major}.${minor}.${patch}: only 2.x is supported`);
  }
  const slot = new BigUint64Array(1);
  const allocated = Deno.UnsafePointer.create(MEMORY_ALLOCATE);
  check("dnnl_engine_create", sym.dnnl_engine_create(slotBytes(slot), ENGINE_CPU, 0n));
  const engine = outPtr(slot, "dnnl_engine_create");
  check(
    "dnnl_stream_create",
    sym.dnnl_stream_create(slotBytes(slot), engine, STREAM_DEFAULT_FLAGS),
  );
  const stream = outPtr(slot, "dnnl_stream_create");

  const memoryDesc = (d: readonly number[], tag: number): MemoryDesc => {
    const md = new Uint8Array(MD_BYTES);
    check(
      `dnnl_memory_desc_init_by_tag(dims [${d}], tag ${tag})`,
      sym.dnnl_memory_desc_init_by_tag(md, d.length, dims(d), F32, tag),
    );
    return md;
  };
  // The descriptor layout assumed above: ndims (int) at 0, dims (int64[12]) at 8.
  const probe = memoryDesc([2, 3, 5, 7], TAG.nhwc);
  const pv = new DataView(probe.buffer);
  if (
    pv.getInt32(0, true) !== 4 || Number(pv.getBigInt64(8 + 24, true)) !== 7 ||
    Number(sym.dnnl_memory_desc_get_size(probe)) !== 4 * 2 * 3 * 5 * 7
  ) {
    lib.close();
    throw new Error(`oneDNN ${major}.${minor}.${patch}: unexpected dnnl_memory_desc_t layout`);
  }
  const convDesc = () => new Uint8Array(CONV_DESC_BYTES);
  const sp = (s: ConvSpatial) => [dims(s.strides), dims(s.padL), dims(s.padR)] as const;

  const execute = (p: Ptr, args: Uint8Array<ArrayBuffer>) => {
    check(
      "dnnl_primitive_execute",
      sym.dnnl_primitive_execute(p, stream, args.length / EXEC_ARG_BYTES, args),
    );
    check("dnnl_stream_wait", sym.dnnl_stream_wait(stream));
  };
  const omp = cpuRuntime === RUNTIME_OMP ? ompControl() : null;
  return {
    path,
    version: `${major}.${minor}.${patch}`,
    threads: omp?.threads ?? null,
    waitPolicy: cpuRuntime === RUNTIME_OMP ? waitPolicy : null,
    memoryDesc,
    memoryDescStrides(d, st, int32 = false) {
      const md = new Uint8Array(MD_BYTES);
      check(
        `dnnl_memory_desc_init_by_strides(dims [${d}], strides [${st}])`,
        sym.dnnl_memory_desc_init_by_strides(md, d.length, dims(d), int32 ? S32 : F32, dims(st)),
      );
      return md;
    },
    mdSize: (md) => Number(sym.dnnl_memory_desc_get_size(md)),
    mdEqual: (a, b) => sym.dnnl_memory_desc_equal(a, b) !== 0,
    convForwardDesc(src, w, dst, s) {
      const d = convDesc();
      check(
        "dnnl_convolution_forward_desc_init",
        sym.dnnl_convolution_forward_desc_init(
          d,
          PROP_FORWARD_TRAINING,
          CONVOLUTION_DIRECT,
          src,
          w,
          null,
          dst,
          ...sp(s),
        ),
      );
      return d;
    },
    convBackwardDataDesc(dSrc, w, dDst, s) {
      const d = convDesc();
      check(
        "dnnl_convolution_backward_data_desc_init",
        sym.dnnl_convolution_backward_data_desc_init(
          d,
          CONVOLUTION_DIRECT,
          dSrc,
          w,
          dDst,
          ...sp(s),
        ),
      );
      return d;
    },
    convBackwardWeightsDesc(src, dW, dDst, s) {
      const d = convDesc();
      check(
        "dnnl_convolution_backward_weights_desc_init",
        sym.dnnl_convolution_backward_weights_desc_init(
          d,
          CONVOLUTION_DIRECT,
          src,
          dW,
          null,
          dDst,
          ...sp(s),
        ),
      );
      return d;
    },
    bnormForwardDesc(data, epsilon) {
      const d = new Uint8Array(BNORM_DESC_BYTES);
      check(
        "dnnl_batch_normalization_forward_desc_init",
        sym.dnnl_batch_normalization_forward_desc_init(
          d,
          PROP_FORWARD_TRAINING,
          data,
          epsilon,
          BNORM_USE_SCALE | BNORM_USE_SHIFT,
        ),
      );
      return d;
    },
    bnormBackwardDesc(data, epsilon) {
      const d = new Uint8Array(BNORM_DESC_BYTES);
      check(
        "dnnl_batch_normalization_backward_desc_init",
        sym.dnnl_batch_normalization_backward_desc_init(
          d,
          PROP_BACKWARD,
          data,
          data,
          epsilon,
          BNORM_USE_SCALE | BNORM_USE_SHIFT,
        ),
      );
      return d;
    },
    poolForwardDesc(src, dst, kernel, s) {
      const d = new Uint8Array(POOL_DESC_BYTES);
      check(
        "dnnl_pooling_v2_forward_desc_init",
        sym.dnnl_pooling_v2_forward_desc_init(
          d,
          PROP_FORWARD_TRAINING,
          ALG.poolingMax,
          src,
          dst,
          dims(s.strides),
          dims(kernel),
          dims([0, 0]),
          dims(s.padL),
          dims(s.padR),
        ),
      );
      return d;
    },
    poolBackwardDesc(dSrc, dDst, kernel, s) {
      const d = new Uint8Array(POOL_DESC_BYTES);
      check(
        "dnnl_pooling_v2_backward_desc_init",
        sym.dnnl_pooling_v2_backward_desc_init(
          d,
          ALG.poolingMax,
          dSrc,
          dDst,
          dims(s.strides),
          dims(kernel),
          dims([0, 0]),
          dims(s.padL),
          dims(s.padR),
        ),
      );
      return d;
    },
    reductionDesc(alg, src, dst) {
      const d = new Uint8Array(REDUCTION_DESC_BYTES);
      check("dnnl_reduction_desc_init", sym.dnnl_reduction_desc_init(d, alg, src, dst, 0, 0));
      return d;
    },
    binaryDesc(alg, src0, src1, dst) {
      const d = new Uint8Array(BINARY_DESC_BYTES);
      check("dnnl_binary_desc_init", sym.dnnl_binary_desc_init(d, alg, src0, src1, dst));
      return d;
    },
    primitiveDesc(op, hint, attr = null) {
      const st = sym.dnnl_primitive_desc_create(slotBytes(slot), op, attr, engine, hint);
      if (st === 3) return null; // unimplemented
      check("dnnl_primitive_desc_create", st);
      return outPtr(slot, "dnnl_primitive_desc_create");
    },
    reorderDesc(src, dst) {
      check(
        "dnnl_reorder_primitive_desc_create",
        sym.dnnl_reorder_primitive_desc_create(slotBytes(slot), src, engine, dst, engine, null),
      );
      return outPtr(slot, "dnnl_reorder_primitive_desc_create");
    },
    queryMd(pd, what) {
      const p = sym.dnnl_primitive_desc_query_md(pd, what, 0);
      if (!p) throw new Error(`oneDNN: dnnl_primitive_desc_query_md(${what}) returned null`);
      const md = new Uint8Array(MD_BYTES);
      Deno.UnsafePointerView.copyInto(p, md);
      return md;
    },
    implInfo(pd) {
      check(
        "dnnl_primitive_desc_query(impl_info_str)",
        sym.dnnl_primitive_desc_query(pd, QUERY_IMPL_INFO_STR, 0, slotBytes(slot)),
      );
      return Deno.UnsafePointerView.getCString(outPtr(slot, "impl_info_str"));
    },
    binaryAttr(src0Scale, postOps) {
      check("dnnl_post_ops_create", sym.dnnl_post_ops_create(slotBytes(slot)));
      const ops = outPtr(slot, "dnnl_post_ops_create");
      try {
        for (const op of postOps) {
          if ("src1" in op) {
            check(
              "dnnl_post_ops_append_binary",
              sym.dnnl_post_ops_append_binary(ops, op.alg, op.src1),
            );
          } else {
            check(
              "dnnl_post_ops_append_eltwise",
              sym.dnnl_post_ops_append_eltwise(ops, 1, op.eltwise, op.alpha, op.beta),
            );
          }
        }
        check("dnnl_primitive_attr_create", sym.dnnl_primitive_attr_create(slotBytes(slot)));
        const attr = outPtr(slot, "dnnl_primitive_attr_create");
        try {
          const scale = new Uint8Array(Float32Array.of(src0Scale).buffer);
          check(
            "dnnl_primitive_attr_set_scales",
            sym.dnnl_primitive_attr_set_scales(attr, ARG.src, 1n, 0, scale),
          );
          check(
            "dnnl_primitive_attr_set_post_ops",
            sym.dnnl_primitive_attr_set_post_ops(attr, ops),
          );
        } catch (e) {
          sym.dnnl_primitive_attr_destroy(attr);
          throw e;
        }
        return attr;
      } finally {
        check("dnnl_post_ops_destroy", sym.dnnl_post_ops_destroy(ops));
      }
    },
    destroyAttr: (a) => check("dnnl_primitive_attr_destroy", sym.dnnl_primitive_attr_destroy(a)),
    destroyPd: (pd) => check("dnnl_primitive_desc_destroy", sym.dnnl_primitive_desc_destroy(pd)),
    primitive(pd) {
      check("dnnl_primitive_create", sym.dnnl_primitive_create(slotBytes(slot), pd));
      return outPtr(slot, "dnnl_primitive_create");
    },
    destroyPrimitive: (p) => check("dnnl_primitive_destroy", sym.dnnl_primitive_destroy(p)),
    memory(md, allocate) {
      check(
        "dnnl_memory_create",
        sym.dnnl_memory_create(slotBytes(slot), md, engine, allocate ? allocated : null),
      );
      return outPtr(slot, "dnnl_memory_create");
    },
    destroyMemory: (m) => check("dnnl_memory_destroy", sym.dnnl_memory_destroy(m)),
    setData(m, a) {
      // Reading `.buffer` moves a small typed array's elements off V8's heap (where a GC could
      // move them) into a backing store that stays put for the array's lifetime.
      void a.buffer;
      const p = Deno.UnsafePointer.of(a as Float32Array<ArrayBuffer>);
      if (!p) throw new Error(`oneDNN: no pointer to an array of ${a.length} elements`);
      check("dnnl_memory_set_data_handle", sym.dnnl_memory_set_data_handle(m, p));
    },
    execArgs(pairs) {
      const bytes = new Uint8Array(pairs.length * EXEC_ARG_BYTES);
      const v = new DataView(bytes.buffer);
      pairs.forEach(([arg, mem], i) => {
        v.setInt32(i * EXEC_ARG_BYTES, arg, true);
        v.setBigUint64(i * EXEC_ARG_BYTES + 8, BigInt(Deno.UnsafePointer.value(mem)), true);
      });
      return bytes;
    },
    execute,
    executeSerial(p, args) {
      if (!omp || omp.threads <= 1) return execute(p, args);
      omp.setThreads(1);
      try {
        execute(p, args);
      } finally {
        omp.setThreads(omp.threads);
      }
    },
  };
};

/**
 * A family of kernels on oneDNN (`build` runs on the loaded library), made on first use; null when
 * oneDNN cannot be loaded, which is said once on stderr as `native backend: <fallback> (oneDNN:
 * <reason>)`.
 */
export const onDnnl = <T>(build: (d: Dnnl) => T, fallback: string): () => T | null => {
  let made: T | null | undefined;
  return () => {
    if (made === undefined) {
      const r = loadDnnl();
      made = r.ok ? build(r.dnnl) : null;
      if (!r.ok) console.error(`native backend: ${fallback} (oneDNN: ${r.reason})`);
    }
    return made;
  };
};

/**
 * Opens oneDNN once per process (unless `MLHF_DNNL=0`). On failure the reason says what was tried
 * and why it failed (or that FFI is not permitted, or that it was turned off).
 */
export const loadDnnl = (): DnnlResult => {
  if (cached) return cached;
  if (!ffiPermitted()) {
    cached = { ok: false, reason: "FFI not permitted (run with --allow-ffi or -A)" };
    return cached;
  }
  if (envVar("MLHF_DNNL") === "0") {
    cached = { ok: false, reason: "turned off (MLHF_DNNL=0)" };
    return cached;
  }
  const env = envVar("MLHF_DNNL_PATH");
  const candidates = env ? [env] : DNNL_CANDIDATES;
  const failures: string[] = [];
  for (const path of candidates) {
    try {
      cached = { ok: true, dnnl: open(path) };
      return cached;
    } catch (e) {
      failures.push(`${path}: ${String((e as Error).message).split("\n")[0]}`);
    }
  }
  cached = {
    ok: false,
    reason: `could not be opened (${env ? "MLHF_DNNL_PATH " : ""}${failures.join("; ")})`,
  };
  return cached;
};
