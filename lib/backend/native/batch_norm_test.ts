/**
 * The native train-mode batch-norm kernels (`kernels/batch_norm.ts`) through the DSL op
 * (`ops/batch_norm.ts`), on both engines:
 * - JS loops: y, mean and variance bit-identical to the op composition they replace on native;
 * - oneDNN (`kernels/batch_norm_dnnl.ts`, asserted to run): y, mean, variance and the gradient
 *   kernel's dx, dγ, dβ (with the statistics' cotangents dMean, dVariance) against a plain float64
 *   reference written here, to float32 rounding;
 * and for both: close to cpu; `tf.grads` of a loss that uses y, mean and variance (so the gradient
 * kernel's dMean/dVariance terms count) against the composition's tape gradients on cpu; the fused
 * kernel asserted to run; no leaks; fully written recycled outputs.
 * @module
 */
import { tf } from "../../_deps.ts";
import { assert } from "../../../tests/_util/deps.ts";
import { assertAllClose, withNoLeaks } from "../../../tests/_util/numeric.ts";
import { plain } from "../../../ops/interpret.ts";
import { nativeAvailable, onBoth, randArray, runOn, testName } from "./_test_util.ts";
import { loadDnnl } from "./dnnl.ts";
import {
  addStatisticsCotangent,
  type BatchNormEngine,
  batchNormImpl,
  setBatchNormEngine,
} from "./kernels/batch_norm.ts";

const dnnlLoaded = nativeAvailable && loadDnnl().ok;
/** The engines to test here: the JS loops always, oneDNN where it loads. */
const ENGINES: BatchNormEngine[] = dnnlLoaded ? ["js", "onednn"] : ["js"];

/** Runs `f` with the batch-norm kernels on `engine`, restoring the previous choice. */
const withEngine = async <T>(engine: BatchNormEngine, f: () => Promise<T>): Promise<T> => {
  const prev = setBatchNormEngine(engine);
  try {
    return await f();
  } finally {
    setBatchNormEngine(prev);
  }
};

const EPS = 1e-5;

/** Shapes: NHWC with several channel counts, dense [N, C], a single row per channel group. */
const SHAPES: number[][] = [[2, 3, 3, 4], [5, 7], [3, 5, 5, 16], [1, 2, 2, 1], [4, 1, 1, 3]];

const inputs = (shape: number[], seed: number) => {
  const c = shape[shape.length - 1], n = shape.reduce((a, b) => a * b, 1);
  // An offset mean and a spread that differs by channel, as activations have.
  const x = tf.add(tf.mul(tf.tensor(randArray(n, seed), shape), 3), 0.5);
  return {
    x,
    gamma: tf.tensor(randArray(c, seed + 1).map((v) => 1 + v), [c]),
    beta: tf.tensor(randArray(c, seed + 2), [c]),
  };
};

/** The op composition `Nn.batchNormTrain` used before (and the op's primal off native). */
const composition = (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor): tf.Tensor[] => {
  const axes = Array.from({ length: x.rank - 1 }, (_, i) => i), c = gamma.size;
  const mu = tf.mean(x, axes, true);
  const centered = tf.sub(x, mu);
  const variance = tf.mean(tf.square(centered), axes, true);
  const s = tf.rsqrt(tf.add(variance, tf.scalar(EPS)));
  const y = tf.add(tf.mul(tf.mul(centered, s), gamma), beta);
  return [y, tf.reshape(mu, [c]), tf.reshape(variance, [c])];
};

const viaOp = (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor): tf.Tensor[] => {
  const { y, mean, variance } = plain.batchNormTrain(x, gamma, beta, EPS);
  return [y, mean, variance];
};

Deno.test({
  name: testName(
    "batch norm: the JS kernel is bit-identical to the composition; both engines close to cpu",
  ),
  ignore: !nativeAvailable,
  fn: async () => {
    for (const [k, shape] of SHAPES.entries()) {
      let kernelRan = false;
      const fusedVals = await withEngine("js", () =>
        runOn("native", () => {
          const { x, gamma, beta } = inputs(shape, 10 * k);
          const info = tf.engine().runKernel("MlhfBatchNormTrain", { x, gamma, beta }, {
            epsilon: EPS,
          }) as tf.Tensor[];
          tf.dispose(info);
          kernelRan = true;
          return viaOp(x, gamma, beta);
        }));
      assert.ok(kernelRan);
      const composed = await runOn("native", () => {
        const { x, gamma, beta } = inputs(shape, 10 * k);
        return composition(x, gamma, beta);
      });
      for (let o = 0; o < 3; o++) {
        assert.deepEqual(fusedVals[o], composed[o], `shape [${shape}], output ${o}`);
      }
      for (const engine of ENGINES) {
        const { cpu, native } = await withEngine(engine, () =>
          onBoth(() => {
            const { x, gamma, beta } = inputs(shape, 10 * k);
            return viaOp(x, gamma, beta);
          }));
        native.forEach((v, o) =>
          assertAllClose(
            v,
            cpu[o],
            { rtol: 1e-5, atol: 1e-5 },
            `${engine}: shape [${shape}] vs cpu, output ${o}`,
          )
        );
      }
    }
  },
});

/** Train-mode batch norm and its gradient in float64, from the definitions (module doc). */
const reference = (
  x: Float32Array,
  c: number,
  gamma: Float32Array,
  beta: Float32Array,
  dy: Float32Array,
  dMean: Float32Array,
  dVariance: Float32Array,
) => {
  const n = x.length / c;
  const mean = new Float64Array(c), variance = new Float64Array(c);
  for (let i = 0; i < x.length; i++) mean[i % c] += x[i] / n;
  for (let i = 0; i < x.length; i++) variance[i % c] += (x[i] - mean[i % c]) ** 2 / n;
  const s = Float64Array.from(variance, (v) => 1 / Math.sqrt(v + EPS));
  const xhat = Float64Array.from(x, (v, i) => (v - mean[i % c]) * s[i % c]);
  const y = Float64Array.from(xhat, (v, i) => gamma[i % c] * v + beta[i % c]);
  const dBeta = new Float64Array(c), dGamma = new Float64Array(c);
  for (let i = 0; i < x.length; i++) {
    dBeta[i % c] += dy[i];
    dGamma[i % c] += dy[i] * xhat[i];
  }
  const dx = Float64Array.from(x, (v, i) => {
    const j = i % c;
    return gamma[j] * s[j] * (dy[i] - dBeta[j] / n - xhat[i] * dGamma[j] / n) + dMean[j] / n +
      2 * (v - mean[j]) * dVariance[j] / n;
  });
  return { y, mean, variance, dx, dGamma, dBeta };
};

Deno.test({
  name: testName("batch norm: oneDNN's kernels agree with a float64 reference, with dMean, dVar"),
  ignore: !dnnlLoaded,
  fn: async () => {
    // Larger shapes too: oneDNN's kernels block over channels and rows.
    for (const [k, shape] of [...SHAPES, [16, 8, 8, 32], [300, 24]].entries()) {
      const c = shape[shape.length - 1], n = shape.reduce((a, b) => a * b, 1);
      const x = randArray(n, k).map((v) => 3 * v + 0.5);
      const gamma = randArray(c, k + 1).map((v) => 1 + v), betaArr = randArray(c, k + 2);
      const dy = randArray(n, k + 3), dMean = randArray(c, k + 4), dVariance = randArray(c, k + 5);
      const got = await withEngine("onednn", () =>
        runOn("native", () => {
          assert.ok(batchNormImpl("forward", shape, EPS), `oneDNN takes [${shape}]`);
          assert.ok(batchNormImpl("backward", shape, EPS), `oneDNN takes [${shape}] backward`);
          const [y, mean, variance] = tf.engine().runKernel("MlhfBatchNormTrain", {
            x: tf.tensor(x, shape),
            gamma: tf.tensor(gamma, [c]),
            beta: tf.tensor(betaArr, [c]),
          }, { epsilon: EPS }) as tf.Tensor[];
          const grads = tf.engine().runKernel("MlhfBatchNormTrainGrad", {
            dy: tf.tensor(dy, shape),
            x: tf.tensor(x, shape),
            mean,
            variance,
            gamma: tf.tensor(gamma, [c]),
            dMean: tf.tensor(dMean, [c]),
            dVariance: tf.tensor(dVariance, [c]),
          }, { epsilon: EPS }) as tf.Tensor[];
          return [y, mean, variance, ...grads];
        }));
      const want = reference(x, c, gamma, betaArr, dy, dMean, dVariance);
      const names = ["y", "mean", "variance", "dx", "dGamma", "dBeta"] as const;
      names.forEach((name, o) =>
        assertAllClose(got[o], Array.from(want[name]), {
          rtol: 2e-5,
          atol: 2e-5,
        }, `[${shape}] ${name}`)
      );
    }
  },
});

Deno.test({
  name: testName("batch norm: the statistics' cotangent term, explicit numbers"),
  fn: () => {
    // Two rows of two channels: x = [[1, 4], [3, 8]], mean [2, 6]; N = 2.
    const dx = new Float32Array([10, 20, 30, 40]);
    const x = new Float32Array([1, 4, 3, 8]), mean = new Float32Array([2, 6]);
    addStatisticsCotangent(dx, x, mean, new Float32Array([2, 0]), new Float32Array([0, 3]));
    // + dMean/2 on channel 0; + 2·(x − μ)·3/2 = 3·(x − μ) on channel 1.
    assert.deepEqual(Array.from(dx), [11, 20 + 3 * -2, 31, 40 + 3 * 2]);
    const same = new Float32Array([1, 2, 3, 4]);
    addStatisticsCotangent(same, x, mean, new Float32Array(2), new Float32Array(2));
    assert.deepEqual(Array.from(same), [1, 2, 3, 4]);
  },
});

Deno.test({
  name: testName("batch norm: tf.grads through y, mean and variance agree with cpu's composition"),
  ignore: !nativeAvailable,
  fn: async () => {
    for (const [k, shape] of SHAPES.entries()) {
      for (const engine of ENGINES) {
        const grads = () => {
          const { x, gamma, beta } = inputs(shape, 7 + k);
          const c = gamma.size, n = x.size;
          const w = tf.tensor(randArray(n, 100 + k), x.shape);
          const a = tf.tensor(randArray(c, 200 + k), [c]),
            b = tf.tensor(randArray(c, 300 + k), [c]);
          const f = (xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => {
            const [y, mean, variance] = viaOp(xx, gg, bb);
            return tf.addN([
              tf.sum(tf.mul(y, w)),
              tf.sum(tf.mul(mean, a)),
              tf.sum(tf.mul(variance, b)),
            ])
              .asScalar();
          };
          return tf.grads(f)([x, gamma, beta]);
        };
        const { cpu, native } = await withEngine(engine, () => onBoth(grads));
        native.forEach((v, o) =>
          assertAllClose(
            v,
            cpu[o],
            { rtol: 1e-4, atol: 1e-5 },
            `${engine}: grads, shape [${shape}], input ${o}`,
          )
        );
        // The fused gradient kernel ran on native (it is the only kernel of that name).
        const profile = await withEngine(engine, () =>
          tf.profile(async () => {
            await tf.setBackend("native");
            tf.dispose(tf.tidy(grads));
          }));
        await tf.setBackend("cpu");
        assert.ok(profile.kernelNames.includes("MlhfBatchNormTrainGrad"), `shape [${shape}]`);
      }
    }
  },
});

Deno.test({
  name: testName("batch norm: no leaks; recycled outputs are fully written"),
  ignore: !nativeAvailable,
  fn: async () => {
    const prev = tf.getBackend();
    await tf.setBackend("native");
    try {
      const shape = [8, 16, 16, 32]; // ≥ RECYCLE_MIN_ELEMENTS: outputs come from the pool
      for (const engine of ENGINES) {
        await withEngine(engine, () =>
          withNoLeaks(() => {
            // Dirty the pool with NaNs of the same size first.
            tf.dispose(tf.tidy(() => tf.mul(tf.fill(shape, NaN), 1)));
            const vals = tf.tidy(() => {
              const { x, gamma, beta } = inputs(shape, 3);
              const y = viaOp(x, gamma, beta)[0];
              const [dx] = tf.grads((xx: tf.Tensor) =>
                tf.sum(tf.mul(viaOp(xx, gamma, beta)[0], y))
              )([
                x,
              ]);
              return [y.dataSync(), dx.dataSync()];
            });
            for (const v of vals) assert.ok(v.every(Number.isFinite));
          }, `batch norm on native (${engine})`));
      }
    } finally {
      await tf.setBackend(prev);
    }
  },
});
