/**
 * Open MPI's C ABI through Deno FFI: the few calls data-parallel training needs (init, rank, size,
 * all-reduce of float32 and float64 buffers, broadcast of bytes, abort, finalize).
 *
 * Open MPI's predefined handles (`MPI_COMM_WORLD`, `MPI_FLOAT`, `MPI_SUM`, …) are the *addresses* of
 * global symbols (`ompi_mpi_comm_world`, …; mpi.h's `OMPI_PREDEFINED_GLOBAL`). Deno's FFI `statics`
 * read the value stored at a symbol, not its address, so the addresses come from libc's `dlsym`.
 * libmpi is first opened by libc's `dlopen` with `RTLD_GLOBAL`: Open MPI's plugins (`mca_*.so`)
 * resolve libmpi's symbols globally and fail to load when it was opened `RTLD_LOCAL`.
 *
 * MPI works on host memory: every call here takes a typed array, so the device→host read that a
 * reduction needs happens in the caller of this module (lib/distributed/, never the step path).
 * All calls block the calling thread. Errors are fatal (MPI's default handler
 * `MPI_ERRORS_ARE_FATAL`): a failed call or a dead peer ends the whole job through `mpirun`, which
 * names the rank, instead of hanging.
 * @module
 */

/**
 * The library file this binding opens: Open MPI 4.x (Debian's `libopenmpi3`), or the path in
 * `MLHF_MPI_LIBRARY` (another Open MPI 4 build).
 */
export const mpiLibrary = (): string => Deno.env.get("MLHF_MPI_LIBRARY") || "libmpi.so.40";

/** The one line `--distributed` prints when Open MPI is missing. */
export const mpiMissing = (): string =>
  `--distributed: Open MPI's ${mpiLibrary()} was not found; install it (Debian/Ubuntu: ` +
  "apt-get install openmpi-bin libopenmpi-dev) and launch with mpirun -n N";

const RTLD_NOW = 2, RTLD_GLOBAL = 0x100;
const MPI_THREAD_SINGLE = 0;

const SYMBOLS = {
  MPI_Init_thread: { parameters: ["pointer", "pointer", "i32", "buffer"], result: "i32" },
  MPI_Initialized: { parameters: ["buffer"], result: "i32" },
  MPI_Finalized: { parameters: ["buffer"], result: "i32" },
  MPI_Finalize: { parameters: [], result: "i32" },
  MPI_Comm_rank: { parameters: ["pointer", "buffer"], result: "i32" },
  MPI_Comm_size: { parameters: ["pointer", "buffer"], result: "i32" },
  MPI_Allreduce: {
    parameters: ["pointer", "buffer", "i32", "pointer", "pointer", "pointer"],
    result: "i32",
  },
  MPI_Bcast: { parameters: ["buffer", "i32", "pointer", "i32", "pointer"], result: "i32" },
  MPI_Barrier: { parameters: ["pointer"], result: "i32" },
  MPI_Abort: { parameters: ["pointer", "i32"], result: "i32" },
} as const;

/** The reduction operations this binding exposes. */
export type ReduceOp = "sum" | "max" | "min";

/** One process's handle on MPI_COMM_WORLD. */
export interface Mpi {
  /** This process's rank in MPI_COMM_WORLD. */
  readonly rank: number;
  /** The number of processes. */
  readonly size: number;
  /** In-place all-reduce of a float32 or float64 buffer (every rank passes the same length). */
  allreduce(buf: Float32Array | Float64Array, op: ReduceOp): void;
  /** In-place broadcast of `buf` from `root` (every rank passes the same length). */
  bcast(buf: Uint8Array, root: number): void;
  /** Blocks until every rank has called it. */
  barrier(): void;
  /** Ends every process of the job with `code` (MPI_Abort). */
  abort(code: number): never;
  /**
   * MPI_Finalize (idempotent). Call it only on success: a process that exits without it (an error,
   * a signal) makes `mpirun` end the whole job and name the rank, while a finalize that waits for
   * peers blocked in a collective would hang.
   */
  finalize(): void;
}

const cstr = (s: string): Uint8Array<ArrayBuffer> => new TextEncoder().encode(`${s}\0`);

let opened: Mpi | null | undefined;

/**
 * Opens Open MPI and initializes it (MPI_Init_thread, MPI_THREAD_SINGLE), once per process; null
 * when the library cannot be loaded (not installed). Later calls return the same handle.
 */
export const openMpi = (): Mpi | null => {
  if (opened !== undefined) return opened;
  const libc = Deno.dlopen("libc.so.6", {
    dlopen: { parameters: ["buffer", "i32"], result: "pointer" },
    dlsym: { parameters: ["pointer", "buffer"], result: "pointer" },
  });
  const path = mpiLibrary();
  const handle = libc.symbols.dlopen(cstr(path), RTLD_NOW | RTLD_GLOBAL);
  if (handle === null) {
    libc.close();
    return (opened = null);
  }
  const address = (name: string): Deno.PointerObject => {
    const p = libc.symbols.dlsym(handle, cstr(name));
    if (p === null) throw new Error(`${path}: no symbol ${name} (not Open MPI 4?)`);
    return p;
  };
  const world = address("ompi_mpi_comm_world");
  const types = { float32: address("ompi_mpi_float"), float64: address("ompi_mpi_double") };
  const byte = address("ompi_mpi_byte");
  const ops: Record<ReduceOp, Deno.PointerObject> = {
    sum: address("ompi_mpi_op_sum"),
    max: address("ompi_mpi_op_max"),
    min: address("ompi_mpi_op_min"),
  };
  const lib = Deno.dlopen(path, SYMBOLS).symbols;
  const check = (what: string, rc: number): void => {
    if (rc !== 0) throw new Error(`MPI: ${what} returned error code ${rc}`);
  };
  const int = new Int32Array(1);
  const flag = (f: (b: Int32Array) => number): number => (f(int), int[0]);
  if (!flag(lib.MPI_Initialized)) {
    check("MPI_Init_thread", lib.MPI_Init_thread(null, null, MPI_THREAD_SINGLE, int));
  }
  const rank = flag((b) => lib.MPI_Comm_rank(world, b));
  const size = flag((b) => lib.MPI_Comm_size(world, b));
  // MPI_IN_PLACE is (void *) 1 in Open MPI's mpi.h.
  const inPlace = Deno.UnsafePointer.create(1n);
  const finalize = (): void => {
    if (!flag(lib.MPI_Finalized)) lib.MPI_Finalize();
  };
  opened = {
    rank,
    size,
    allreduce: (buf, op) => {
      const type = buf instanceof Float32Array ? types.float32 : types.float64;
      // MPI counts are C ints: reduce in chunks below 2³¹ elements.
      for (let at = 0; at < buf.length; at += 1 << 30) {
        const part = buf.subarray(at, Math.min(buf.length, at + (1 << 30)));
        check("MPI_Allreduce", lib.MPI_Allreduce(inPlace, part, part.length, type, ops[op], world));
      }
    },
    bcast: (buf, root) => {
      for (let at = 0; at < buf.length; at += 1 << 30) {
        const part = buf.subarray(at, Math.min(buf.length, at + (1 << 30)));
        check("MPI_Bcast", lib.MPI_Bcast(part, part.length, byte, root, world));
      }
    },
    barrier: () => check("MPI_Barrier", lib.MPI_Barrier(world)),
    abort: (code) => {
      lib.MPI_Abort(world, code);
      Deno.exit(code);
    },
    finalize,
  };
  return opened;
};
