/**
 * `BatchMatMul` for the webgpu backend by the register-blocked GEMM (`gemm.ts`): float32, both
 * transpose flags, a batch shared by both operands or broadcast from one of them; odd sizes by
 * bounds-checked loads and stores (vector loads where a row length is a multiple of 4; no checks
 * where the tiles cover the product exactly, e.g. 4096³). Thin
 * products (m or n below {@link MIN_SIDE}, where most of a 64-wide tile would idle), other dtypes
 * and batch broadcasts of other kinds run TF.js's own program.
 * @module
 */
import { tf } from "../../../_deps.ts";
import { chooseTiling, type GemmOperand, runGemm, tilesExactly, type Tiling } from "./gemm.ts";
import {
  type Fallback,
  type KernelArgs,
  webgpuBackend,
  type WebGpuBackendLike,
  type WebGpuKernel,
} from "./_util.ts";

/** Products with fewer output rows or columns than this run TF.js's program. */
export const MIN_SIDE = 16;

/** Where a dense operand's elements are (WGSL expressions over `uniforms`). */
export interface DenseLayout {
  readonly name: "A" | "B";
  /** The load function's two index parameters, in order ((m, k) for A, (k, n) for B). */
  readonly params: readonly [string, string];
  /** Which parameter indexes the outer axis and which the contiguous one. */
  readonly outer: string;
  readonly contig: string;
  /** The two axes' lengths. */
  readonly outerLen: string;
  readonly rowLen: string;
  /** Elements between batches (0 when broadcast). */
  readonly batchStride: string;
  /** The contiguous axis, in the GEMM's terms. */
  readonly contiguous: GemmOperand["contiguous"];
  /** The row length is a multiple of 4: one vector load. */
  readonly aligned: boolean;
  /** Bounds checks (off only where the tiles cover the matrix exactly and loads are aligned). */
  readonly checked: boolean;
}

/**
 * A dense operand stored row-major as [batches, outer, contiguous]: its load function returns four
 * consecutive elements along the contiguous axis, zero past either end.
 */
export const denseOperand = (d: DenseLayout): GemmOperand => {
  const { name, rowLen } = d;
  const fnName = name === "A" ? "loadA" : "loadB";
  const head = `fn ${fnName}(z : i32, ${d.params[0]} : i32, ${d.params[1]} : i32) -> vec4<f32> {`;
  if (!d.checked && d.aligned) {
    return {
      contiguous: d.contiguous,
      components: 4,
      key: `dense${name}${d.contiguous}x`,
      code: `
${head}
  return ${name}[(z * ${d.batchStride} + ${d.outer} * ${rowLen} + ${d.contig}) / 4];
}`,
    };
  }
  const body = d.aligned
    ? `return ${name}[i / 4];`
    : `return vec4<f32>(${name}[i], select(0.0, ${name}[i + 1], c + 1 < ${rowLen}),
         select(0.0, ${name}[i + 2], c + 2 < ${rowLen}), select(0.0, ${name}[i + 3], c + 3 < ${rowLen}));`;
  return {
    contiguous: d.contiguous,
    components: d.aligned ? 4 : 1,
    key: `dense${name}${d.contiguous}${d.aligned ? "v" : "s"}`,
    code: `
${head}
  let o = ${d.outer};
  let c = ${d.contig};
  if (o >= ${d.outerLen} || c >= ${rowLen}) { return vec4<f32>(0.0); }
  let i = z * ${d.batchStride} + o * ${rowLen} + c;
  ${body}
}`,
  };
};

/** The product's sizes and layout, or null when this kernel does not take it. */
interface MatMulPlan {
  readonly batch: number;
  readonly m: number;
  readonly n: number;
  readonly k: number;
  readonly batchA: number;
  readonly batchB: number;
  readonly outShape: number[];
}

const planMatMul = (
  a: tf.TensorInfo,
  b: tf.TensorInfo,
  transposeA: boolean,
  transposeB: boolean,
): MatMulPlan | null => {
  const ra = a.shape.length, rb = b.shape.length;
  if (ra < 2 || rb < 2 || a.dtype !== "float32" || b.dtype !== "float32") return null;
  const k = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
  if (k !== (transposeB ? b.shape[rb - 1] : b.shape[rb - 2])) return null;
  const m = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
  const n = transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
  const outerA = a.shape.slice(0, -2), outerB = b.shape.slice(0, -2);
  const batchA = tf.util.sizeFromShape(outerA), batchB = tf.util.sizeFromShape(outerB);
  let outer: number[];
  try {
    outer = tf.broadcast_util.assertAndGetBroadcastShape(outerA, outerB);
  } catch {
    return null;
  }
  const batch = Math.max(batchA, batchB);
  if (!(batchA === batchB || batchA === 1 || batchB === 1)) return null;
  if (tf.util.sizeFromShape(outer) !== batch) return null;
  return { batch, m, n, k, batchA, batchB, outShape: [...outer, m, n] };
};

/**
 * The product by the GEMM (float32 result of shape `outShape`), or null when this kernel does not
 * take the case. `tiling` forces a tiling (tests); `minSide` the thin-product cut-off.
 */
export const matMulInfo = (
  backend: WebGpuBackendLike,
  a: tf.TensorInfo,
  b: tf.TensorInfo,
  transposeA: boolean,
  transposeB: boolean,
  tiling?: Tiling,
  minSide = MIN_SIDE,
): tf.TensorInfo | null => {
  const p = planMatMul(a, b, transposeA, transposeB);
  if (!p || p.m < minSide || p.n < minSide) return null;
  const { m, n, k } = p;
  const size = { batch: p.batch, m, n, k };
  const t = tiling ?? chooseTiling(size);
  const checked = !tilesExactly(size, t);
  const [M, N, K] = ["uniforms.gM", "uniforms.gN", "uniforms.gK"];
  const A = denseOperand({
    name: "A",
    params: ["m", "k"],
    ...(transposeA
      ? { outer: "k", contig: "m", outerLen: K, rowLen: M, contiguous: "m", aligned: m % 4 === 0 }
      : { outer: "m", contig: "k", outerLen: M, rowLen: K, contiguous: "k", aligned: k % 4 === 0 }),
    batchStride: "uniforms.gABatch",
    checked,
  });
  const B = denseOperand({
    name: "B",
    params: ["k", "n"],
    ...(transposeB
      ? { outer: "n", contig: "k", outerLen: N, rowLen: K, contiguous: "k", aligned: k % 4 === 0 }
      : { outer: "k", contig: "n", outerLen: K, rowLen: N, contiguous: "n", aligned: n % 4 === 0 }),
    batchStride: "uniforms.gBBatch",
    checked,
  });
  const out = runGemm(backend, size, {
    a: A,
    b: B,
    inputs: [a, b],
    uniforms: "gABatch : i32, gBBatch : i32,",
    values: [p.batchA === 1 ? 0 : m * k, p.batchB === 1 ? 0 : k * n],
  }, t);
  return out && { dataId: out.dataId, shape: p.outShape, dtype: "float32" };
};

/** The `BatchMatMul` kernel; `fallback` is TF.js's own. */
export const batchMatMulKernel = (fallback: Fallback): WebGpuKernel => ({
  kernelName: "BatchMatMul",
  kernelFunc: (args: KernelArgs) => {
    const { a, b } = args.inputs;
    const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
    const out = matMulInfo(webgpuBackend(args), a, b, !!transposeA, !!transposeB);
    if (out) return out;
    if (!fallback) throw new Error("webgpu BatchMatMul: no TF.js kernel to fall back to");
    return fallback(args);
  },
});
