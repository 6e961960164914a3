/**
 * BLAS-backed `BatchMatMul` and `_FusedMatMul` for the native backend.
 *
 * `BatchMatMul` handles every transpose flag and NumPy-style broadcasting of the batch (outer)
 * dimensions, calling `cblas_sgemm` on the tensors' own Float32Arrays (subarrays per batch slice; no
 * copies). When B is shared by every batch slice and A is not transposed, the batch is folded into
 * one GEMM with batch·m rows. `_FusedMatMul` adds the bias and the activation in place for the common
 * cases (bias over the last axis; linear, relu, relu6, leakyrelu) and uses the cpu kernels otherwise.
 * Non-float32 inputs fall back to the cpu kernels.
 * @module
 */
import { tf } from "../../../_deps.ts";
import type { Blas } from "../blas.ts";
import {
  allFloat32,
  allocF32,
  cpuBackend,
  type CpuBackendLike,
  cpuKernel,
  cpuKernel1,
  f32,
  type KernelArgs,
  type NativeKernel,
  sizeOf,
  zerosF32,
} from "./_util.ts";

/** Offsets of the broadcast source slice for each output batch index (row-major outer dims). */
const batchOffsets = (outer: readonly number[], src: readonly number[]): Int32Array => {
  const total = sizeOf(outer);
  const idx = new Int32Array(total);
  const srcSize = sizeOf(src);
  if (srcSize === total) {
    for (let i = 0; i < total; i++) idx[i] = i;
    return idx;
  }
  if (srcSize === 1) return idx;
  const padded = [...new Array(outer.length - src.length).fill(1), ...src];
  for (let i = 0; i < total; i++) {
    let rem = i, s = 0, stride = 1;
    for (let d = outer.length - 1; d >= 0; d--) {
      const coord = rem % outer[d];
      rem = Math.floor(rem / outer[d]);
      if (padded[d] !== 1) s += coord * stride;
      stride *= padded[d];
    }
    idx[i] = s;
  }
  return idx;
};

/** C = op(A)·op(B) with batch broadcasting, into a fresh Float32Array; returns it and its shape. */
export const batchMatMulValues = (
  blas: Blas,
  av: Float32Array,
  aShape: readonly number[],
  bv: Float32Array,
  bShape: readonly number[],
  transposeA: boolean,
  transposeB: boolean,
): { values: Float32Array; shape: number[] } => {
  const ra = aShape.length, rb = bShape.length;
  const m = transposeA ? aShape[ra - 1] : aShape[ra - 2];
  const k = transposeA ? aShape[ra - 2] : aShape[ra - 1];
  const kb = transposeB ? bShape[rb - 1] : bShape[rb - 2];
  const n = transposeB ? bShape[rb - 2] : bShape[rb - 1];
  if (k !== kb) {
    throw new Error(
      `Error in matMul: inner shapes (${k}) and (${kb}) of Tensors with shapes ${aShape} and ` +
        `${bShape} and transposeA=${transposeA} and transposeB=${transposeB} must match.`,
    );
  }
  const outerA = aShape.slice(0, -2), outerB = bShape.slice(0, -2);
  const outer = tf.broadcast_util.assertAndGetBroadcastShape(outerA, outerB);
  const batch = sizeOf(outer);
  const out = k === 0 ? zerosF32(batch * m * n) : allocF32(batch * m * n);
  const shape = [...outer, m, n];
  if (out.length === 0 || k === 0) return { values: out, shape };
  const lda = transposeA ? m : k, ldb = transposeB ? k : n;
  const batchA = sizeOf(outerA), batchB = sizeOf(outerB);
  if (batchB === 1 && batchA === batch && !transposeA) {
    blas.sgemm(false, transposeB, batch * m, n, k, 1, av, lda, bv, ldb, 0, out, n);
    return { values: out, shape };
  }
  const ia = batchOffsets(outer, outerA), ib = batchOffsets(outer, outerB);
  const sa = m * k, sb = k * n, sc = m * n;
  for (let i = 0; i < batch; i++) {
    blas.sgemm(
      transposeA,
      transposeB,
      m,
      n,
      k,
      1,
      av.subarray(ia[i] * sa),
      lda,
      bv.subarray(ib[i] * sb),
      ldb,
      0,
      out.subarray(i * sc),
      n,
    );
  }
  return { values: out, shape };
};

/**
 * Adds `bias` and applies `activation` to `out` (a tensor this kernel created and owns). Returns the
 * result, which is `out` itself when done in place; otherwise `out` is disposed.
 */
export const epilogue = (
  backend: CpuBackendLike,
  out: tf.TensorInfo,
  bias: tf.TensorInfo | undefined,
  activation: string | undefined,
  preluActivationWeights: tf.TensorInfo | undefined,
  leakyreluAlpha: number | undefined,
): tf.TensorInfo => {
  let cur = out;
  const replace = (next: tf.TensorInfo) => {
    backend.disposeIntermediateTensorInfo(cur);
    cur = next;
  };
  if (bias) {
    const last = cur.shape[cur.shape.length - 1] ?? 1;
    const bSize = sizeOf(bias.shape);
    const lastAxisOnly = bias.shape.length <= cur.shape.length &&
      bias.shape.slice(0, -1).every((d) => d === 1) && (bSize === last || bSize === 1);
    if (bias.dtype === "float32" && lastAxisOnly) {
      const v = f32(backend, cur), bv = f32(backend, bias);
      if (bSize === 1) {
        const b0 = bv[0];
        for (let i = 0; i < v.length; i++) v[i] += b0;
      } else {
        for (let i = 0; i < v.length; i += last) {
          for (let j = 0; j < last; j++) v[i + j] += bv[j];
        }
      }
    } else {
      replace(cpuKernel1("Add")({ inputs: { a: cur, b: bias }, backend }));
    }
  }
  const act = activation ?? "linear";
  if (act === "linear") return cur;
  if (act === "relu" || act === "relu6" || act === "leakyrelu") {
    const v = f32(backend, cur);
    if (act === "relu") { for (let i = 0; i < v.length; i++) if (v[i] < 0) v[i] = 0; }
    else if (act === "relu6") {
      for (let i = 0; i < v.length; i++) v[i] = v[i] < 0 ? 0 : v[i] > 6 ? 6 : v[i];
    } else {
      const alpha = leakyreluAlpha ?? 0.2;
      for (let i = 0; i < v.length; i++) if (v[i] < 0) v[i] *= alpha;
    }
    return cur;
  }
  if (act === "elu") replace(cpuKernel1("Elu")({ inputs: { x: cur }, backend }));
  else if (act === "sigmoid") replace(cpuKernel1("Sigmoid")({ inputs: { x: cur }, backend }));
  else if (act === "prelu") {
    if (!preluActivationWeights) throw new Error("prelu activation needs preluActivationWeights");
    replace(
      cpuKernel1("Prelu")({ inputs: { x: cur, alpha: preluActivationWeights }, backend }),
    );
  } else throw new Error(`Activation ${act} has not been implemented for the native backend.`);
  return cur;
};

/** The matMul kernels, given the BLAS. */
export const matMulKernels = (blas: Blas): NativeKernel[] => {
  const cpuBatchMatMul = cpuKernel("BatchMatMul");
  const cpuFused = cpuKernel("_FusedMatMul");
  const run = (args: KernelArgs, a: tf.TensorInfo, b: tf.TensorInfo): tf.TensorInfo => {
    const backend = cpuBackend(args);
    const at = args.attrs as { transposeA?: boolean; transposeB?: boolean };
    const { values, shape } = batchMatMulValues(
      blas,
      f32(backend, a),
      a.shape,
      f32(backend, b),
      b.shape,
      !!at.transposeA,
      !!at.transposeB,
    );
    return backend.makeTensorInfo(shape, "float32", values);
  };
  return [
    {
      kernelName: "BatchMatMul",
      kernelFunc: (args) => {
        const { a, b } = args.inputs;
        if (!allFloat32(a, b)) return cpuBatchMatMul(args);
        return run(args, a, b);
      },
    },
    {
      kernelName: "_FusedMatMul",
      kernelFunc: (args) => {
        const { a, b } = args.inputs;
        const { bias, preluActivationWeights } = args.inputs as Partial<KernelArgs["inputs"]>;
        if (!allFloat32(a, b)) return cpuFused(args);
        const at = args.attrs as { activation?: string; leakyreluAlpha?: number };
        return epilogue(
          cpuBackend(args),
          run(args, a, b),
          bias,
          at.activation,
          preluActivationWeights,
          at.leakyreluAlpha,
        );
      },
    },
  ];
};
