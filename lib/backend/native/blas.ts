/**
 * The BLAS binding of the `native` backend: `cblas_sgemm` through Deno FFI, with Float32Arrays
 * passed as `buffer` arguments (no copies; a subarray passes its own offset).
 *
 * The library comes from `MLHF_BLAS_PATH` when set (only that path is tried), else the first of
 * {@link BLAS_CANDIDATES} that opens and exports `cblas_sgemm`. It is opened at most once per
 * process; {@link loadBlas} returns the same result on every call, with the reason for each failed
 * candidate when none could be used. Needs `--allow-ffi` (tasks and tests run with `-A`).
 * Threads follow the BLAS (OpenBLAS pthreads uses every core unless `OPENBLAS_NUM_THREADS` says
 * otherwise).
 * @module
 */

/** Library names tried in order when `MLHF_BLAS_PATH` is not set. */
export const BLAS_CANDIDATES: readonly string[] = [
  "libopenblas.so.0",
  "libopenblas.so",
  "libblis.so.4",
  "libmkl_rt.so",
  "libcblas.so.3",
  "libblas.so.3",
];

const SYMBOLS = {
  cblas_sgemm: {
    parameters: [
      "i32", // order
      "i32", // transA
      "i32", // transB
      "i32", // M
      "i32", // N
      "i32", // K
      "f32", // alpha
      "buffer", // A
      "i32", // lda
      "buffer", // B
      "i32", // ldb
      "f32", // beta
      "buffer", // C
      "i32", // ldc
    ],
    result: "void",
  },
  openblas_get_num_threads: { parameters: [], result: "i32", optional: true },
  openblas_get_config: { parameters: [], result: "pointer", optional: true },
} as const;

const ROW_MAJOR = 101;
const NO_TRANS = 111;
const TRANS = 112;

/** A loaded BLAS: row-major single-precision GEMM and where it came from. */
export interface Blas {
  /** The path or soname that was opened. */
  readonly path: string;
  /** Threads the BLAS reports (OpenBLAS only), else null. */
  readonly threads: number | null;
  /** OpenBLAS's build description (`openblas_get_config`), else null. */
  readonly config: string | null;
  /**
   * Row-major C = alpha·op(A)·op(B) + beta·C, with op(A) m×k, op(B) k×n, C m×n. The arrays may be
   * subarrays (their offset is passed). Leading dimensions are row strides in elements.
   */
  sgemm(
    transA: boolean,
    transB: boolean,
    m: number,
    n: number,
    k: number,
    alpha: number,
    a: Float32Array,
    lda: number,
    b: Float32Array,
    ldb: number,
    beta: number,
    c: Float32Array,
    ldc: number,
  ): void;
}

/** Either the BLAS, or why none could be loaded. */
export type BlasResult =
  | { readonly ok: true; readonly blas: Blas }
  | { readonly ok: false; readonly reason: string };

let cached: BlasResult | null = null;

const ffiPermitted = (): boolean => {
  try {
    return Deno.permissions.querySync({ name: "ffi" }).state === "granted";
  } catch {
    return false;
  }
};

const open = (path: string): Blas => {
  const lib = Deno.dlopen(path, SYMBOLS);
  const sym = lib.symbols;
  const threads = sym.openblas_get_num_threads ? Number(sym.openblas_get_num_threads()) : null;
  let config: string | null = null;
  if (sym.openblas_get_config) {
    const p = sym.openblas_get_config();
    if (p) config = Deno.UnsafePointerView.getCString(p);
  }
  const gemm = sym.cblas_sgemm;
  return {
    path,
    threads,
    config,
    sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) {
      // The arrays must cover what BLAS will touch: a wrong size would corrupt memory.
      const rowsA = transA ? k : m, rowsB = transB ? n : k;
      const colsA = transA ? m : k, colsB = transB ? k : n;
      if (
        m <= 0 || n <= 0 || k <= 0 || lda < colsA || ldb < colsB || ldc < n ||
        a.length < (rowsA - 1) * lda + colsA || b.length < (rowsB - 1) * ldb + colsB ||
        c.length < (m - 1) * ldc + n
      ) {
        throw new RangeError(
          `sgemm: bad arguments m=${m} n=${n} k=${k} lda=${lda} ldb=${ldb} ldc=${ldc} ` +
            `lengths ${a.length}/${b.length}/${c.length}`,
        );
      }
      gemm(
        ROW_MAJOR,
        transA ? TRANS : NO_TRANS,
        transB ? TRANS : NO_TRANS,
        m,
        n,
        k,
        alpha,
        a as Float32Array<ArrayBuffer>,
        lda,
        b as Float32Array<ArrayBuffer>,
        ldb,
        beta,
        c as Float32Array<ArrayBuffer>,
        ldc,
      );
    },
  };
};

/**
 * Opens the BLAS once per process. On failure the reason lists every candidate tried and why it
 * failed (or that FFI is not permitted).
 */
export const loadBlas = (): BlasResult => {
  if (cached) return cached;
  if (!ffiPermitted()) {
    cached = { ok: false, reason: "FFI not permitted (run with --allow-ffi or -A)" };
    return cached;
  }
  const env = Deno.env.get("MLHF_BLAS_PATH");
  const candidates = env ? [env] : BLAS_CANDIDATES;
  const failures: string[] = [];
  for (const path of candidates) {
    try {
      cached = { ok: true, blas: open(path) };
      return cached;
    } catch (e) {
      failures.push(`${path}: ${String((e as Error).message).split("\n")[0]}`);
    }
  }
  cached = {
    ok: false,
    reason: `no BLAS with cblas_sgemm could be opened (${env ? "MLHF_BLAS_PATH " : ""}${
      failures.join("; ")
    })`,
  };
  return cached;
};
