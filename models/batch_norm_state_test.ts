/**
 * Batch-norm modes and moving statistics: train mode returns the biased batch moments as aux, the
 * moving-average update is TF's, inference mode uses the state (per-example, unlike train mode, and
 * equal to train mode when the state holds that batch's statistics), and the curvature runs in
 * train mode.
 * @module
 */
import { tf } from "../lib/_deps.ts";
import { assert } from "../tests/_util/deps.ts";
import { useTestBackend } from "../tests/_util/backend.ts";
import { assertAllClose, withNoLeaks } from "../tests/_util/numeric.ts";
import { keyFromSeed } from "../lib/prng.ts";
import { disposeTree, leaves } from "../lib/tree.ts";
import { plain } from "../ops/interpret.ts";
import { gaussNewtonProduct } from "../lib/curvature/gauss_newton.ts";
import { softmaxCrossEntropy } from "../ops/losses.ts";
import { BN_MOMENTUM, type BnStats, updateMovingStats } from "./batch_norm_state.ts";
import { type ResNetState, resnetV2Cifar } from "./resnet_v2.ts";
import { randomInput } from "./_testing.ts";

await useTestBackend();

const model = resnetV2Cifar({ depth: 8, filters: [3, 4, 5] });
const SHAPE = [8, 8, 3] as const;

/** Runs train mode and returns logits and the aux batch statistics (caller disposes). */
const train = (params: Parameters<typeof model.apply>[1], x: tf.Tensor) => {
  const out = model.apply(plain, params, x) as { output: tf.Tensor; aux: unknown };
  return { logits: out.output, aux: out.aux as ResNetState };
};

Deno.test("updateMovingStats: moving ← 0.997·moving + 0.003·batch, leaf by leaf, purely", async () => {
  await withNoLeaks(() => {
    const state: BnStats = { mean: tf.tensor1d([0, 1, -2]), variance: tf.tensor1d([1, 2, 0.5]) };
    const batch: BnStats = { mean: tf.tensor1d([4, 1, 2]), variance: tf.tensor1d([3, 0, 0.5]) };
    const next = updateMovingStats(state, batch);
    assert.equal(BN_MOMENTUM, 0.997);
    assertAllClose(next.mean, [0.012, 1, -1.988], { rtol: 1e-6, atol: 1e-7 });
    assertAllClose(next.variance, [1.006, 1.994, 0.5], { rtol: 1e-6, atol: 1e-7 });
    const half = updateMovingStats(state, batch, 0.5);
    assertAllClose(half.mean, [2, 1, 0], { atol: 0 });
    assert.deepEqual(Array.from(state.mean.dataSync()), [0, 1, -2], "input state unchanged");
    assert.ok(!state.mean.isDisposed && !batch.variance.isDisposed);
    assert.throws(() => updateMovingStats(state, batch, 1.5), /momentum must be in \[0, 1\]/);
    const bad = { mean: tf.zeros([2]), variance: tf.zeros([3]) };
    assert.throws(() => updateMovingStats(state, bad), /shape \[3\] vs \[2\]/);
    tf.dispose([state, batch, next, half, bad] as unknown as tf.TensorContainer);
  });
});

Deno.test("train mode: aux holds each BN layer's biased batch moments", async () => {
  await withNoLeaks(() => {
    const { params, state } = model.init(keyFromSeed(1), SHAPE);
    tf.tidy(() => {
      const x = randomInput(keyFromSeed(2), 4, SHAPE);
      const { aux } = train(params, x);
      // The first BN normalizes the stem conv's output.
      const h = tf.conv2d(x as tf.Tensor4D, params.stem as tf.Tensor4D, 1, "same");
      const mean = tf.mean(h, [0, 1, 2]);
      const biased = tf.mean(tf.square(tf.sub(h, mean)), [0, 1, 2]);
      assertAllClose(aux.stages[0][0].bn1.mean, mean, { rtol: 1e-5, atol: 1e-6 });
      assertAllClose(aux.stages[0][0].bn1.variance, biased, { rtol: 1e-5, atol: 1e-6 });
      const n = h.size / h.shape[3]!;
      const unbiased = tf.mul(biased, n / (n - 1));
      assert.throws(() => assertAllClose(aux.stages[0][0].bn1.variance, unbiased, { rtol: 1e-3 }));
      assert.deepEqual(leaves(aux).map((t) => t.shape), leaves(state).map((t) => t.shape));
    });
    disposeTree(params);
    disposeTree(state);
  });
});

Deno.test("inference mode: equals train mode when the state is that batch's statistics", async () => {
  await withNoLeaks(() => {
    const { params, state } = model.init(keyFromSeed(3), SHAPE);
    tf.tidy(() => {
      const x = randomInput(keyFromSeed(4), 4, SHAPE);
      const { logits, aux } = train(params, x);
      // With momentum 0 the update replaces the state by the batch statistics.
      const replaced = updateMovingStats(state, aux, 0);
      assertAllClose(model.applyInference(plain, params, replaced, x), logits, {
        rtol: 1e-4,
        atol: 1e-5,
      });
      // With the initial statistics (mean 0, variance 1) the two modes differ.
      const atInit = model.applyInference(plain, params, state, x);
      assert.throws(() => assertAllClose(atInit, logits, { rtol: 1e-2, atol: 1e-3 }));
      // One step of the default update moves the state by 0.3% of the way.
      const moved = updateMovingStats(state, aux);
      const step = tf.sub(leaves(moved)[0], leaves(state)[0]);
      assertAllClose(step, tf.mul(tf.sub(leaves(aux)[0], leaves(state)[0]), 0.003), {
        rtol: 1e-4,
        atol: 1e-7,
      });
    });
    disposeTree(params);
    disposeTree(state);
  });
});

Deno.test("inference mode is per example; train mode depends on the whole batch", async () => {
  await withNoLeaks(() => {
    const { params, state } = model.init(keyFromSeed(5), SHAPE);
    tf.tidy(() => {
      const x = randomInput(keyFromSeed(6), 4, SHAPE);
      const first = tf.slice(x, [0, 0, 0, 0], [2, -1, -1, -1]);
      const rows = (t: tf.Tensor) => tf.slice(t, [0, 0], [2, -1]);
      assertAllClose(
        model.applyInference(plain, params, state, first),
        rows(model.applyInference(plain, params, state, x)),
        { rtol: 1e-5, atol: 1e-6 },
      );
      assert.throws(() =>
        assertAllClose(train(params, first).logits, rows(train(params, x).logits), {
          rtol: 1e-3,
          atol: 1e-4,
        })
      );
    });
    disposeTree(params);
    disposeTree(state);
  });
});

Deno.test("the curvature uses train mode: gaussNewtonProduct's logits and aux match it", async () => {
  await withNoLeaks(() => {
    const { params, state } = model.init(keyFromSeed(7), SHAPE);
    const x = randomInput(keyFromSeed(8), 4, SHAPE);
    const y = tf.tidy(() => tf.oneHot(tf.tensor1d([0, 3, 9, 3], "int32"), 10).toFloat());
    const gn = gaussNewtonProduct(model.apply, softmaxCrossEntropy, params, { x, y });
    try {
      tf.tidy(() => {
        const { logits, aux } = train(params, x);
        assertAllClose(gn.logits, logits, { rtol: 1e-5, atol: 1e-6 });
        assertAllClose(gn.aux as unknown as ResNetState, aux, { rtol: 1e-5, atol: 1e-6 });
        const inference = model.applyInference(plain, params, state, x);
        assert.throws(() => assertAllClose(gn.logits, inference, { rtol: 1e-2, atol: 1e-3 }));
      });
    } finally {
      gn.dispose();
      tf.dispose([x, y]);
      disposeTree(params);
      disposeTree(state);
    }
  });
});
