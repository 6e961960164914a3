/**
 * `BatchMatMul` for the webgpu backend by the register-blocked GEMM (`gemm.ts`): float32, both
 * transpose flags, a batch shared by both operands or broadcast from one of them; odd sizes by
 * bounds-checked loads and stores (vector loads where a row length is a multiple of 4). Thin
 * products (m or n below {@link MIN_SIDE}, where most of a 64-wide tile would idle), other dtypes
 * and batch broadcasts of other kinds run TF.js's own program.
 * @module
 */
import { tf } from "../../../_deps.ts";
import type { GemmOperand, Tiling } from "./gemm.ts";
import { runGemm } from "./gemm.ts";
import {
  type Fallback,
  type KernelArgs,
  webgpuBackend,
  type WebGpuBackendLike,
  type WebGpuKernel,
} from "./_util.ts";

/** Products with fewer output rows or columns than this run TF.js's program. */
export const MIN_SIDE = 16;

/**
 * A dense operand stored row-major as [batches, outer, contiguous]: `fnName(z, p, q)` returns four
 * consecutive elements along the contiguous axis, zero past either end; `outer`/`contig` say which
 * parameter indexes which axis and `outerLen`/`rowLen` their lengths (WGSL expressions), `batchStride`
 * the elements between batches (0 when broadcast).
 */
export const denseOperand = (
  name: "A" | "B",
  params: readonly [string, string],
  outer: string,
  contig: string,
  outerLen: string,
  rowLen: string,
  batchStride: string,
  aligned: boolean,
  contiguous: GemmOperand["contiguous"],
): GemmOperand => {
  const fnName = name === "A" ? "loadA" : "loadB";
  const body = aligned
    ? `return ${name}[i / 4];`
    : `return vec4<f32>(${name}[i], select(0.0, ${name}[i + 1], c + 1 < ${rowLen}),
         select(0.0, ${name}[i + 2], c + 2 < ${rowLen}), select(0.0, ${name}[i + 3], c + 3 < ${rowLen}));`;
  return {
    contiguous,
    components: aligned ? 4 : 1,
    key: `dense${name}${contiguous}${aligned ? "v" : "s"}`,
    code: `
fn ${fnName}(z : i32, ${params[0]} : i32, ${params[1]} : i32) -> vec4<f32> {
  let o = ${outer};
  let c = ${contig};
  if (o >= ${outerLen} || c >= ${rowLen}) { return vec4<f32>(0.0); }
  let i = z * ${batchStride} + o * ${rowLen} + c;
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
  const A = transposeA
    ? denseOperand(
      "A",
      ["m", "k"],
      "k",
      "m",
      "uniforms.gK",
      "uniforms.gM",
      "uniforms.gABatch",
      m % 4 === 0,
      "m",
    )
    : denseOperand(
      "A",
      ["m", "k"],
      "m",
      "k",
      "uniforms.gM",
      "uniforms.gK",
      "uniforms.gABatch",
      k % 4 === 0,
      "k",
    );
  const B = transposeB
    ? denseOperand(
      "B",
      ["k", "n"],
      "n",
      "k",
      "uniforms.gN",
      "uniforms.gK",
      "uniforms.gBBatch",
      k % 4 === 0,
      "k",
    )
    : denseOperand(
      "B",
      ["k", "n"],
      "k",
      "n",
      "uniforms.gK",
      "uniforms.gN",
      "uniforms.gBBatch",
      n % 4 === 0,
      "n",
    );
  const out = runGemm(backend, { batch: p.batch, m, n, k }, {
    a: A,
    b: B,
    inputs: [a, b],
    uniforms: "gABatch : i32, gBBatch : i32,",
    values: [p.batchA === 1 ? 0 : m * k, p.batchB === 1 ? 0 : k * n],
  }, tiling);
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
