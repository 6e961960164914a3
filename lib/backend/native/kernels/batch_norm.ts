/**
 * Train-mode batch norm over every axis but the last as two native kernels (the DSL's
 * `ops/batch_norm.ts` calls them when the active backend has them), by oneDNN when it loads
 * (`batch_norm_dnnl.ts`: vectorized, on its OpenMP threads; ≈ 10× the JS loops' speed at ResNet
 * sizes), else by the JS loops below (`MLHF_DNNL=0`, or {@link setBatchNormEngine}):
 *
 * - `MlhfBatchNormTrain` (x [..., C], gamma [C], beta [C]; attr `epsilon`) → [y, mean [C],
 *   variance [C]] (biased variance). The JS loops run three passes over x with the float operations
 *   of the op composition they replace on this backend (native `Mean`, `Sub`, `Square`, `Mean`,
 *   `Add`, cpu `Rsqrt`, `Multiply` ×2, `Add`: float64 sums in row order, every intermediate
 *   rounded to float32), so their y, mean and variance are bit-identical to it; oneDNN's agree with
 *   a float64 reference to float32 rounding (its sums are float32, by blocks and threads).
 * - `MlhfBatchNormTrainGrad` (dy, x, mean, variance, gamma, dMean, dVariance; attr `epsilon`) →
 *   [dx, dGamma, dBeta]: dβ = Σ dy, dγ = Σ dy·x̂,
 *   dx = γ·s·(dy − dβ/N − x̂·dγ/N) + dMean/N + 2(x − μ)·dVariance/N with s = (variance + ε)^−½ and
 *   x̂ = (x − μ)·s. The JS loops: two passes, float64 sums and arithmetic, rounded once. oneDNN
 *   computes the terms without dMean and dVariance; the statistics' term is added here where they
 *   are not all zero (the DSL's rules pass zeros). Its gradient throws (no second-order tape
 *   gradients through batch norm on this backend; the DSL's rules have none either way).
 * @module
 */
import { tf } from "../../../_deps.ts";
import {
  allFloat32,
  allocF32,
  cpuBackend,
  f32,
  type KernelArgs,
  type NativeKernel,
  sizeOf,
} from "./_util.ts";
import { onDnnl } from "../dnnl.ts";
import { type BatchNormPass, type DnnlBatchNorm, dnnlBatchNorm } from "./batch_norm_dnnl.ts";

const fr = Math.fround;

/**
 * Rows per block of the per-channel sums: within a block the loops run channel by channel with the
 * sums in local variables (a row-major loop kept them in a Float64Array: 3.9× slower for the
 * gradient's pass at [128,32,32,16], measured in alternation); each channel still adds its rows
 * in order, so the sums are the same.
 */
const BLOCK_ROWS = 256;

/** y, mean and variance of train-mode batch norm on rows of `c` channels. */
export const batchNormTrainValues = (
  x: Float32Array,
  c: number,
  gamma: Float32Array,
  beta: Float32Array,
  epsilon: number,
): { y: Float32Array; mean: Float32Array; variance: Float32Array } => {
  const rows = x.length / c;
  const sum = new Float64Array(c), sq = new Float64Array(c);
  const mean = new Float32Array(c), variance = new Float32Array(c), s = new Float32Array(c);
  for (let r0 = 0; r0 < rows; r0 += BLOCK_ROWS) {
    const end = Math.min(rows, r0 + BLOCK_ROWS) * c;
    for (let j = 0; j < c; j++) {
      let a = sum[j];
      for (let i = r0 * c + j; i < end; i += c) a += x[i];
      sum[j] = a;
    }
  }
  for (let j = 0; j < c; j++) mean[j] = fr(sum[j]) / rows; // Sum to float32, then / count
  for (let r0 = 0; r0 < rows; r0 += BLOCK_ROWS) {
    const end = Math.min(rows, r0 + BLOCK_ROWS) * c;
    for (let j = 0; j < c; j++) {
      let a = sq[j];
      const m = mean[j];
      for (let i = r0 * c + j; i < end; i += c) {
        const d = fr(x[i] - m);
        a += fr(d * d);
      }
      sq[j] = a;
    }
  }
  const eps = fr(epsilon);
  for (let j = 0; j < c; j++) {
    variance[j] = fr(sq[j]) / rows;
    s[j] = 1 / Math.sqrt(fr(variance[j] + eps));
  }
  // The per-channel values as float64 (the same numbers): the loop then loads them without a
  // conversion (≈1.5× faster in alternation).
  const m64 = Float64Array.from(mean), s64 = Float64Array.from(s);
  const g64 = Float64Array.from(gamma), b64 = Float64Array.from(beta);
  const y = allocF32(x.length);
  for (let i = 0; i < x.length; i += c) {
    for (let j = 0; j < c; j++) {
      y[i + j] = fr(fr(fr(x[i + j] - m64[j]) * s64[j]) * g64[j]) + b64[j];
    }
  }
  return { y, mean, variance };
};

/** dx, dγ and dβ of train-mode batch norm (module doc). */
export const batchNormTrainGradValues = (
  dy: Float32Array,
  x: Float32Array,
  mean: Float32Array,
  variance: Float32Array,
  gamma: Float32Array,
  dMean: Float32Array,
  dVariance: Float32Array,
  epsilon: number,
): { dx: Float32Array; dGamma: Float32Array; dBeta: Float32Array } => {
  const c = mean.length, rows = x.length / c;
  const eps = fr(epsilon);
  // Σ dy and Σ dy·(x − μ) per channel.
  const sg = new Float64Array(c), sgd = new Float64Array(c);
  for (let r0 = 0; r0 < rows; r0 += BLOCK_ROWS) {
    const end = Math.min(rows, r0 + BLOCK_ROWS) * c;
    for (let j = 0; j < c; j++) {
      let a = sg[j], b = sgd[j];
      const m = mean[j];
      for (let i = r0 * c + j; i < end; i += c) {
        const g = dy[i];
        a += g;
        b += g * (x[i] - m);
      }
      sg[j] = a;
      sgd[j] = b;
    }
  }
  // dx = γs·(dy − Σdy/N − x̂·Σdy·x̂/N) + dMean/N + 2(x − μ)·dVariance/N = A·dy + B·(x − μ) + C.
  const A = new Float64Array(c), B = new Float64Array(c), C = new Float64Array(c);
  const dGamma = new Float32Array(c), dBeta = new Float32Array(c);
  for (let j = 0; j < c; j++) {
    const s = fr(1 / Math.sqrt(fr(variance[j] + eps)));
    const sgx = sgd[j] * s; // Σ dy·x̂
    A[j] = gamma[j] * s;
    B[j] = (2 * dVariance[j]) / rows - (A[j] * s * sgx) / rows;
    C[j] = dMean[j] / rows - (A[j] * sg[j]) / rows;
    dGamma[j] = sgx;
    dBeta[j] = sg[j];
  }
  const m64 = Float64Array.from(mean);
  const dx = allocF32(x.length);
  for (let i = 0; i < x.length; i += c) {
    for (let j = 0; j < c; j++) dx[i + j] = A[j] * dy[i + j] + B[j] * (x[i + j] - m64[j]) + C[j];
  }
  return { dx, dGamma, dBeta };
};

/** Which implementation the batch-norm kernels use: oneDNN (when loaded) or the JS loops. */
export type BatchNormEngine = "onednn" | "js";

let wanted: BatchNormEngine = "onednn";

/** oneDNN's batch norm, made on first use; null (said once, on stderr) when unavailable. */
const onednn = onDnnl(dnnlBatchNorm, "batch norm by JS loops");

/** oneDNN's batch norm when it is selected and loaded, else null. */
const active = (): DnnlBatchNorm | null => wanted === "onednn" ? onednn() : null;

/**
 * Selects the batch-norm kernels' engine (default "onednn"; without oneDNN every call uses the JS
 * loops) and returns the previous choice. For tests and benches that compare the two in one process.
 */
export const setBatchNormEngine = (e: BatchNormEngine): BatchNormEngine => {
  const prev = wanted;
  wanted = e;
  return prev;
};

/**
 * The oneDNN implementation a batch-norm pass takes for x of `shape` (e.g. "bnorm_jit:avx512_core"),
 * or null when oneDNN is not selected, not loaded, or takes no implementation (then the JS loops).
 */
export const batchNormImpl = (
  pass: BatchNormPass,
  shape: readonly number[],
  epsilon: number,
): string | null => active()?.impl(pass, shape, epsilon) ?? null;

/**
 * Adds the statistics' cotangents to dx in place: dMean/N + 2(x − μ)·dVariance/N per channel (N the
 * rows), skipped when both are all zero.
 */
export const addStatisticsCotangent = (
  dx: Float32Array,
  x: Float32Array,
  mean: Float32Array,
  dMean: Float32Array,
  dVariance: Float32Array,
): void => {
  const c = mean.length, rows = x.length / c;
  if (dMean.every((v) => v === 0) && dVariance.every((v) => v === 0)) return;
  const a = Float64Array.from(dMean, (v) => v / rows);
  const b = Float64Array.from(dVariance, (v) => (2 * v) / rows);
  const m64 = Float64Array.from(mean);
  for (let i = 0; i < x.length; i += c) {
    for (let j = 0; j < c; j++) dx[i + j] += a[j] + b[j] * (x[i + j] - m64[j]);
  }
};

/** y, mean and variance: by oneDNN when it is active and takes the shape, else the JS loops. */
const forwardAny = (
  shape: readonly number[],
  x: Float32Array,
  gamma: Float32Array,
  beta: Float32Array,
  epsilon: number,
) => {
  const d = active(), c = gamma.length;
  if (d) {
    const r = { y: allocF32(x.length), mean: new Float32Array(c), variance: new Float32Array(c) };
    if (d.forward(shape, epsilon, { x, gamma, beta, ...r })) return r;
  }
  return batchNormTrainValues(x, c, gamma, beta, epsilon);
};

/** dx, dγ and dβ: by oneDNN (plus the statistics' cotangent) when active, else the JS loops. */
const gradAny = (
  shape: readonly number[],
  dy: Float32Array,
  x: Float32Array,
  mean: Float32Array,
  variance: Float32Array,
  gamma: Float32Array,
  dMean: Float32Array,
  dVariance: Float32Array,
  epsilon: number,
) => {
  const d = active(), c = gamma.length;
  if (d) {
    const r = { dx: allocF32(x.length), dGamma: new Float32Array(c), dBeta: new Float32Array(c) };
    if (d.backward(shape, epsilon, { dy, x, mean, variance, gamma, ...r })) {
      addStatisticsCotangent(r.dx, x, mean, dMean, dVariance);
      return r;
    }
  }
  return batchNormTrainGradValues(dy, x, mean, variance, gamma, dMean, dVariance, epsilon);
};

/** True when `t` holds exactly `c` values (a per-channel vector, any shape). */
const perChannel = (t: tf.TensorInfo, c: number) => sizeOf(t.shape) === c;

const check = (cond: boolean, what: string) => {
  if (!cond) throw new Error(`native backend: ${what}`);
};

/** The two batch-norm kernels. */
export const batchNormKernels = (): NativeKernel[] => [
  {
    kernelName: "MlhfBatchNormTrain",
    kernelFunc: (args: KernelArgs) => {
      const { x, gamma, beta } = args.inputs;
      const c = x.shape[x.shape.length - 1];
      check(
        allFloat32(x, gamma, beta) && x.shape.length >= 2 && c > 0 && sizeOf(x.shape) > 0 &&
          perChannel(gamma, c) && perChannel(beta, c),
        `MlhfBatchNormTrain needs float32 x of rank ≥ 2 (non-empty) and gamma, beta of its ` +
          `${c} channels, got x ${x.dtype} [${x.shape}], gamma [${gamma.shape}], beta [${beta.shape}]`,
      );
      const { epsilon } = args.attrs as { epsilon: number };
      const backend = cpuBackend(args);
      const r = forwardAny(
        x.shape,
        f32(backend, x),
        f32(backend, gamma),
        f32(backend, beta),
        epsilon,
      );
      return [
        backend.makeTensorInfo([...x.shape], "float32", r.y),
        backend.makeTensorInfo([c], "float32", r.mean),
        backend.makeTensorInfo([c], "float32", r.variance),
      ];
    },
  },
  {
    kernelName: "MlhfBatchNormTrainGrad",
    kernelFunc: (args: KernelArgs) => {
      const { dy, x, mean, variance, gamma, dMean, dVariance } = args.inputs;
      const c = x.shape[x.shape.length - 1];
      check(
        allFloat32(dy, x, mean, variance, gamma, dMean, dVariance) &&
          tf.util.arraysEqual(dy.shape, x.shape) &&
          [mean, variance, gamma, dMean, dVariance].every((t) => perChannel(t, c)),
        `MlhfBatchNormTrainGrad needs float32 dy and x of one shape and per-channel vectors of ` +
          `${c}, got dy [${dy.shape}], x [${x.shape}]`,
      );
      const { epsilon } = args.attrs as { epsilon: number };
      const backend = cpuBackend(args);
      const r = gradAny(
        x.shape,
        f32(backend, dy),
        f32(backend, x),
        f32(backend, mean),
        f32(backend, variance),
        f32(backend, gamma),
        f32(backend, dMean),
        f32(backend, dVariance),
        epsilon,
      );
      return [
        backend.makeTensorInfo([...x.shape], "float32", r.dx),
        backend.makeTensorInfo([c], "float32", r.dGamma),
        backend.makeTensorInfo([c], "float32", r.dBeta),
      ];
    },
  },
];

/**
 * The gradient of `MlhfBatchNormTrain` (one `MlhfBatchNormTrainGrad` call for all three inputs), and
 * that of `MlhfBatchNormTrainGrad`: an error naming the limitation (no second-order tape gradients).
 */
export const batchNormGradients = (): tf.GradConfig[] => [
  {
    kernelName: "MlhfBatchNormTrain",
    inputsToSave: ["x", "gamma", "beta"],
    outputsToSave: [false, true, true],
    gradFunc: (dys, saved, attrs) => {
      const [dy, dMean, dVariance] = dys as tf.Tensor[];
      const [x, gamma, beta, mean, variance] = saved;
      void beta;
      // Computed here, not in the per-input closures: each closure runs in its own tidy, and the
      // backward scope around this call frees whichever output no closure returns.
      const [dx, dGamma, dBeta] = tf.engine().runKernel("MlhfBatchNormTrainGrad", {
        dy,
        x,
        mean,
        variance,
        gamma,
        dMean: dMean ?? tf.zerosLike(mean),
        dVariance: dVariance ?? tf.zerosLike(variance),
      }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
      return {
        x: () => dx,
        gamma: () => tf.reshape(dGamma, gamma.shape),
        beta: () => tf.reshape(dBeta, beta.shape),
      };
    },
  },
  {
    kernelName: "MlhfBatchNormTrainGrad",
    gradFunc: () => {
      throw new Error(
        "native backend: MlhfBatchNormTrainGrad has no gradient (second-order tape gradients " +
          "through train-mode batch norm); use the cpu or wasm backend, or the DSL's J·v rules",
      );
    },
  },
];
