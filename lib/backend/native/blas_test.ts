/**
 * The FFI binding of `cblas_sgemm`: it equals a float64 reference GEMM for every transpose, leading
 * dimensions larger than the matrix, subarray offsets, alpha and beta; it refuses arguments that
 * would make BLAS read or write outside the arrays; and it is opened once per process.
 * @module
 */
import { assert, fc } from "../../../tests/_util/deps.ts";
import { assertAllClose } from "../../../tests/_util/numeric.ts";
import { loadBlas } from "./blas.ts";
import { randArray, testName } from "./_test_util.ts";

const r = loadBlas();
const ignore = !r.ok;

/** Reference row-major GEMM in float64 on strided views. */
const refGemm = (
  tA: boolean,
  tB: boolean,
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
): Float32Array => {
  const out = Float32Array.from(c);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) {
        s += (tA ? a[p * lda + i] : a[i * lda + p]) * (tB ? b[j * ldb + p] : b[p * ldb + j]);
      }
      out[i * ldc + j] = alpha * s + beta * c[i * ldc + j];
    }
  }
  return out;
};

Deno.test({
  name: testName("sgemm equals a float64 reference (transposes, strides, offsets, alpha, beta)"),
  ignore,
  fn: () => {
    if (!r.ok) return;
    const { blas } = r;
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 12 }),
        fc.boolean(),
        fc.boolean(),
        fc.integer({ min: 0, max: 3 }),
        fc.integer({ min: 0, max: 5 }),
        fc.constantFrom(1, -0.5, 2),
        fc.constantFrom(0, 1, 0.25),
        fc.integer({ min: 0, max: 1e6 }),
        (m, n, k, tA, tB, extra, off, alpha, beta, seed) => {
          const lda = (tA ? m : k) + extra, ldb = (tB ? k : n) + extra, ldc = n + extra;
          const a = randArray(off + (tA ? k : m) * lda, seed).subarray(off);
          const b = randArray(off + (tB ? n : k) * ldb, seed + 1).subarray(off);
          const cBuf = randArray(off + m * ldc, seed + 2);
          const c = cBuf.subarray(off);
          const want = refGemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
          const before = cBuf.slice(0, off);
          blas.sgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
          assertAllClose(c, want, { rtol: 1e-5, atol: 1e-5 }, "sgemm");
          assert.deepEqual(cBuf.slice(0, off), before, "wrote before the subarray");
        },
      ),
      { numRuns: 150 },
    );
  },
});

Deno.test({
  name: testName("sgemm refuses sizes that would read or write outside the arrays"),
  ignore,
  fn: () => {
    if (!r.ok) return;
    const { blas } = r;
    const a = new Float32Array(6), b = new Float32Array(6), c = new Float32Array(4);
    blas.sgemm(false, false, 2, 2, 3, 1, a, 3, b, 2, 0, c, 2); // fits
    assert.throws(() => blas.sgemm(false, false, 2, 3, 3, 1, a, 3, b, 3, 0, c, 3), RangeError);
    assert.throws(() => blas.sgemm(false, false, 2, 2, 4, 1, a, 4, b, 2, 0, c, 2), RangeError);
    assert.throws(() => blas.sgemm(true, false, 2, 2, 3, 1, a, 1, b, 2, 0, c, 2), RangeError);
    assert.throws(() => blas.sgemm(false, false, 0, 2, 3, 1, a, 3, b, 2, 0, c, 2), RangeError);
  },
});

Deno.test({
  name: testName("loadBlas opens the library once and reports where it came from"),
  ignore,
  fn: () => {
    assert.equal(loadBlas(), r, "a second load returns the cached result");
    if (!r.ok) return;
    assert.ok(r.blas.path.length > 0);
    const env = Deno.env.get("MLHF_BLAS_PATH");
    if (env) assert.equal(r.blas.path, env);
  },
});
