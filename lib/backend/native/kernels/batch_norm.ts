/**
 * Train-mode batch norm over every axis but the last as two native kernels (the DSL's
 * `ops/batch_norm.ts` calls them when the active backend has them):
 *
 * - `MlhfBatchNormTrain` (x [..., C], gamma [C], beta [C]; attr `epsilon`) → [y, mean [C],
 *   variance [C]] in three passes over x. Its float operations are those of the op composition it
 *   replaces on this backend (native `Mean`, `Sub`, `Square`, `Mean`, `Add`, cpu `Rsqrt`, `Multiply`
 *   ×2, `Add`: float64 sums in row order, every intermediate rounded to float32), so y, mean and
 *   variance are bit-identical to it.
 * - `MlhfBatchNormTrainGrad` (dy, x, mean, variance, gamma, dMean, dVariance; attr `epsilon`) →
 *   [dx, dGamma, dBeta] in two passes: dβ = Σ dy, dγ = Σ dy·x̂,
 *   dx = γ·s·(dy − dβ/N − x̂·dγ/N) + dMean/N + 2(x − μ)·dVariance/N with s = (variance + ε)^−½ and
 *   x̂ = (x − μ)·s (float64 sums and arithmetic, rounded once). Its gradient is not defined (no
 *   second-order tape gradients through batch norm on this backend).
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

const fr = Math.fround;

/** y, mean and variance of train-mode batch norm on rows of `c` channels. */
export const batchNormTrainValues = (
  x: Float32Array,
  c: number,
  gamma: Float32Array,
  beta: Float32Array,
  epsilon: number,
): { y: Float32Array; mean: Float32Array; variance: Float32Array } => {
  const rows = x.length / c;
  const acc = new Float64Array(c);
  for (let i = 0; i < x.length; i += c) for (let j = 0; j < c; j++) acc[j] += x[i + j];
  const mean = new Float32Array(c);
  for (let j = 0; j < c; j++) mean[j] = fr(acc[j]) / rows; // Sum to float32, then / count
  acc.fill(0);
  for (let i = 0; i < x.length; i += c) {
    for (let j = 0; j < c; j++) {
      const d = fr(x[i + j] - mean[j]);
      acc[j] += fr(d * d);
    }
  }
  const variance = new Float32Array(c), s = new Float32Array(c);
  const eps = fr(epsilon);
  for (let j = 0; j < c; j++) {
    variance[j] = fr(acc[j]) / rows;
    s[j] = 1 / Math.sqrt(fr(variance[j] + eps));
  }
  const y = allocF32(x.length);
  for (let i = 0; i < x.length; i += c) {
    for (let j = 0; j < c; j++) {
      y[i + j] = fr(fr(fr(x[i + j] - mean[j]) * s[j]) * gamma[j]) + beta[j];
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
  const s = new Float64Array(c);
  for (let j = 0; j < c; j++) s[j] = fr(1 / Math.sqrt(fr(variance[j] + eps)));
  const sg = new Float64Array(c), sgx = new Float64Array(c);
  for (let i = 0; i < x.length; i += c) {
    for (let j = 0; j < c; j++) {
      const g = dy[i + j];
      sg[j] += g;
      sgx[j] += g * (x[i + j] - mean[j]) * s[j];
    }
  }
  const scale = new Float64Array(c), mg = new Float64Array(c), mgx = new Float64Array(c);
  const m0 = new Float64Array(c), v2 = new Float64Array(c);
  for (let j = 0; j < c; j++) {
    scale[j] = gamma[j] * s[j];
    mg[j] = sg[j] / rows;
    mgx[j] = sgx[j] / rows;
    m0[j] = dMean[j] / rows;
    v2[j] = (2 * dVariance[j]) / rows;
  }
  const dx = allocF32(x.length);
  for (let i = 0; i < x.length; i += c) {
    for (let j = 0; j < c; j++) {
      const d = x[i + j] - mean[j];
      dx[i + j] = scale[j] * (dy[i + j] - mg[j] - d * s[j] * mgx[j]) + m0[j] + v2[j] * d;
    }
  }
  return { dx, dGamma: Float32Array.from(sgx), dBeta: Float32Array.from(sg) };
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
      const r = batchNormTrainValues(
        f32(backend, x),
        c,
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
      const r = batchNormTrainGradValues(
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

/** The gradient of `MlhfBatchNormTrain`: one `MlhfBatchNormTrainGrad` call for all three inputs. */
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
];
