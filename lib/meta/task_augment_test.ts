/**
 * Task augmentation made concrete: the reparameterization θ = s·φ leaves the loss unchanged at
 * φ = θ/s and scales the gradient by s and the Gauss–Newton product by s on both sides; a task's
 * batches are sliced to its batch size with its pixel and label permutations, reproducibly.
 */
import { tf } from "../_deps.ts";
import { assert } from "../../tests/_util/deps.ts";
import { useTestBackend } from "../../tests/_util/backend.ts";
import { assertAllClose, withNoLeaks } from "../../tests/_util/numeric.ts";
import { tinyNet } from "../../tests/_util/nets.ts";
import { keyFromSeed, normal } from "../prng.ts";
import { leaves, type Params, unflatten } from "../tree.ts";
import { softmaxCrossEntropy } from "../../ops/losses.ts";
import { gaussNewtonProduct } from "../curvature/gauss_newton.ts";
import { concreteTask, reparameterize, toReparameterized } from "./task_augment.ts";
import {
  labelPermutation,
  parseTaskMix,
  pixelPermutation,
  sampleTask,
  type TaskAugmentation,
  taskScales,
} from "./task_mix.ts";

await useTestBackend();

for (const name of ["mlpSigmoid", "convMaxPool"] as const) {
  Deno.test(`task augment: θ = s·φ keeps the loss, scales g by s and G by s on both sides (${name})`, () =>
    withNoLeaks(() => {
      const net = tinyNet(name, 3, 5);
      const scales = [1e-3, 20, 0.05, 1e3];
      const phi = toReparameterized(net.params, scales);
      const v = unflatten(
        net.params,
        leaves(net.params).map((t, i) => tf.tensor(normal(keyFromSeed(40 + i), t.size), t.shape)),
      );
      const base = gaussNewtonProduct(net.model, softmaxCrossEntropy, net.params, net.batch);
      const re = gaussNewtonProduct(
        reparameterize(net.model, scales),
        softmaxCrossEntropy,
        phi,
        net.batch,
      );
      try {
        // θ = s·φ exactly as the network sees it (φ = θ/s rounds in float32).
        assertAllClose(re.loss, base.loss, { rtol: 1e-5, atol: 0 }, "loss");
        const sg = tf.tidy(() => leaves(base.gradient).map((g, i) => tf.mul(g, scales[i])));
        assertAllClose(leaves(re.gradient), sg, { rtol: 1e-5, atol: 1e-9 }, "∇φ = s·∇θ");
        // G_φ v = S·G_θ·(S v).
        const sv = unflatten(v, tf.tidy(() => leaves(v).map((t, i) => tf.mul(t, scales[i]))));
        const want = tf.tidy(() => leaves(base.product(sv)).map((t, i) => tf.mul(t, scales[i])));
        const got = leaves(re.product(v));
        const top = Math.max(...want.map((t) => tf.tidy(() => tf.max(tf.abs(t)).dataSync()[0])));
        assertAllClose(got, want, { rtol: 1e-5, atol: 1e-6 * top }, "G_φ v = S G_θ S v");
        // And the reparameterization is not a no-op: ∇φ ≠ ∇θ.
        assert(
          Math.abs(leaves(re.gradient)[0].dataSync()[0] - leaves(base.gradient)[0].dataSync()[0]) >
            0,
        );
        tf.dispose([...sg, ...want, ...got, ...leaves(sv)]);
      } finally {
        base.dispose();
        re.dispose();
        tf.dispose([...leaves(phi), ...leaves(v), ...leaves(net.params), net.batch.x, net.batch.y]);
      }
    }));
}

const AUG: TaskAugmentation = {
  scaleRange: [1e-2, 1e2],
  permuteLabels: 1,
  permutePixels: 1,
  batchSizes: [3],
};

Deno.test("task augment: a task's batches are sliced, pixel- and label-permuted, reproducibly", () =>
  withNoLeaks(() => {
    const mix = parseTaskMix("mlp-5-tanh,convnet-2x2-3x3");
    const shape = [4, 4, 1] as const;
    const x = tf.tensor4d(normal(keyFromSeed(5), 5 * 16), [5, 4, 4, 1]);
    const y = tf.tensor1d([0, 1, 2, 3, 1], "int32");
    for (let id = 0; id < 4; id++) {
      const spec = sampleTask(keyFromSeed(9), id, mix, AUG);
      const t = concreteTask(spec, mix, AUG, shape, 4);
      const u = concreteTask(spec, mix, AUG, shape, 4);
      const b = t.batch({ x, y });
      try {
        assert.deepEqual(b.x.shape, [3, 4, 4, 1]);
        assert.deepEqual(b.y.shape, [3, 4]);
        const pp = pixelPermutation(spec, 16)!, lp = labelPermutation(spec, 4)!;
        const xs = x.dataSync(), bx = b.x.dataSync(), by = b.y.arraySync() as number[][];
        for (let n = 0; n < 3; n++) {
          for (let j = 0; j < 16; j++) assert.equal(bx[n * 16 + j], xs[n * 16 + pp[j]]);
          assert.equal(by[n].indexOf(1), lp[[0, 1, 2][n]]);
        }
        // The same task again: the same batch, initial φ and scales; φ₀ = θ₀/s.
        const b2 = u.batch({ x, y });
        assertAllClose(b2.x, b.x, { rtol: 0, atol: 0 });
        assertAllClose(b2.y, b.y, { rtol: 0, atol: 0 });
        const p1 = t.initPhi(), p2 = u.initPhi();
        assertAllClose(p1, p2, { rtol: 0, atol: 0 });
        assert.deepEqual(t.scales, taskScales(spec, t.kinds.length, AUG.scaleRange));
        assert.equal(t.kinds.length, leaves(p1).length);
        tf.dispose([b2.x, b2.y, ...leaves(p1 as Params), ...leaves(p2 as Params)]);
      } finally {
        tf.dispose([b.x, b.y]);
        t.dispose();
        u.dispose();
      }
    }
    // Another task: another pixel permutation, so another batch.
    const [s0, s1] = [0, 1].map((id) => sampleTask(keyFromSeed(9), id, mix, AUG));
    const [t0, t1] = [s0, s1].map((s) => concreteTask(s, mix, AUG, shape, 4));
    const [b0, b1] = [t0, t1].map((t) => t.batch({ x, y }));
    assert.notDeepEqual(Array.from(b0.x.dataSync()), Array.from(b1.x.dataSync()));
    tf.dispose([b0.x, b0.y, b1.x, b1.y, x, y]);
    t0.dispose();
    t1.dispose();
  }));
