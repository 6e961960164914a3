/**
 * The native train-mode batch-norm kernels (`kernels/batch_norm.ts`) through the DSL op
 * (`ops/batch_norm.ts`): y, mean and variance bit-identical to the op composition they replace on
 * native, and close to cpu; `tf.grads` of a loss that uses y, mean and variance (so the gradient
 * kernel's dMean/dVariance terms count) against the composition's tape gradients on cpu; the fused
 * kernel asserted to run; no leaks; fully written recycled outputs.
 * @module
 */
import { tf } from "../../_deps.ts";
import { assert } from "../../../tests/_util/deps.ts";
import { assertAllClose, withNoLeaks } from "../../../tests/_util/numeric.ts";
import { plain } from "../../../ops/interpret.ts";
import { nativeAvailable, onBoth, randArray, runOn, testName } from "./_test_util.ts";

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
  name: testName("batch norm: the fused kernel is bit-identical to the composition, close to cpu"),
  ignore: !nativeAvailable,
  fn: async () => {
    for (const [k, shape] of SHAPES.entries()) {
      let kernelRan = false;
      const fusedVals = await runOn("native", () => {
        const { x, gamma, beta } = inputs(shape, 10 * k);
        const info = tf.engine().runKernel("MlhfBatchNormTrain", { x, gamma, beta }, {
          epsilon: EPS,
        }) as tf.Tensor[];
        tf.dispose(info);
        kernelRan = true;
        return viaOp(x, gamma, beta);
      });
      assert.ok(kernelRan);
      const composed = await runOn("native", () => {
        const { x, gamma, beta } = inputs(shape, 10 * k);
        return composition(x, gamma, beta);
      });
      for (let o = 0; o < 3; o++) {
        assert.deepEqual(fusedVals[o], composed[o], `shape [${shape}], output ${o}`);
      }
      const { cpu, native } = await onBoth(() => {
        const { x, gamma, beta } = inputs(shape, 10 * k);
        return viaOp(x, gamma, beta);
      });
      native.forEach((v, o) =>
        assertAllClose(
          v,
          cpu[o],
          { rtol: 1e-5, atol: 1e-5 },
          `shape [${shape}] vs cpu, output ${o}`,
        )
      );
    }
  },
});

Deno.test({
  name: testName("batch norm: tf.grads through y, mean and variance agree with cpu's composition"),
  ignore: !nativeAvailable,
  fn: async () => {
    for (const [k, shape] of SHAPES.entries()) {
      const grads = () => {
        const { x, gamma, beta } = inputs(shape, 7 + k);
        const c = gamma.size, n = x.size;
        const w = tf.tensor(randArray(n, 100 + k), x.shape);
        const a = tf.tensor(randArray(c, 200 + k), [c]), b = tf.tensor(randArray(c, 300 + k), [c]);
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
      const { cpu, native } = await onBoth(grads);
      native.forEach((v, o) =>
        assertAllClose(v, cpu[o], { rtol: 1e-4, atol: 1e-5 }, `grads, shape [${shape}], input ${o}`)
      );
      // The fused gradient kernel ran on native (it is the only kernel of that name).
      const profile = await tf.profile(async () => {
        await tf.setBackend("native");
        tf.dispose(tf.tidy(grads));
      });
      await tf.setBackend("cpu");
      assert.ok(profile.kernelNames.includes("MlhfBatchNormTrainGrad"), `shape [${shape}]`);
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
      await withNoLeaks(() => {
        // Dirty the pool with NaNs of the same size first.
        tf.dispose(tf.tidy(() => tf.mul(tf.fill(shape, NaN), 1)));
        const vals = tf.tidy(() => {
          const { x, gamma, beta } = inputs(shape, 3);
          const y = viaOp(x, gamma, beta)[0];
          const [dx] = tf.grads((xx: tf.Tensor) => tf.sum(tf.mul(viaOp(xx, gamma, beta)[0], y)))([
            x,
          ]);
          return [y.dataSync(), dx.dataSync()];
        });
        for (const v of vals) assert.ok(v.every(Number.isFinite));
      }, "batch norm on native");
    } finally {
      await tf.setBackend(prev);
    }
  },
});
