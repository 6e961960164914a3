/**
 * The MLP: parameter counts and kinds, the original's init distribution, the forward pass against a
 * direct TF.js computation, and the linearization against finite differences, the adjoint identity
 * and TF.js's reverse mode.
 * @module
 */
import { tf } from "../lib/_deps.ts";
import { assert, fc } from "../tests/_util/deps.ts";
import { useTestBackend } from "../tests/_util/backend.ts";
import { assertAllClose, withNoLeaks } from "../tests/_util/numeric.ts";
import { keyFromSeed, split } from "../lib/prng.ts";
import { disposeTree, leaves, size } from "../lib/tree.ts";
import { plain } from "../ops/interpret.ts";
import { mlp } from "./mlp.ts";
import { countByKind, kindLeaves } from "./types.ts";
import { assertDistribution, assertKindsFit, checkDerivatives, randomInput } from "./_testing.ts";

await useTestBackend();

const seeds = fc.integer({ min: 0, max: 2 ** 30 });

Deno.test("mlp: the original has 15,910 parameters on MNIST, 61,670 on CIFAR, with kinds", async () => {
  await withNoLeaks(() => {
    const m = mlp();
    const mnist = m.init(keyFromSeed(0), [28, 28, 1]);
    assert.equal(size(mnist.params), 784 * 20 + 20 + 20 * 10 + 10);
    assert.equal(size(mnist.params), 15910);
    assert.deepEqual(kindLeaves(mnist.kinds), [
      "dense/kernel",
      "dense/bias",
      "dense/kernel",
      "dense/bias",
    ]);
    assertKindsFit(mnist.params, mnist.kinds);
    assert.deepEqual(leaves(mnist.params).map((t) => t.shape), [[784, 20], [20], [20, 10], [10]]);
    assert.deepEqual(mnist.state, {});
    disposeTree(mnist.params);
    const cifar = m.init(keyFromSeed(0), [32, 32, 3]);
    assert.equal(size(cifar.params), 61670);
    assert.equal(countByKind(cifar.params, cifar.kinds)["dense/kernel"], 3072 * 20 + 200);
    disposeTree(cifar.params);
    const deep = mlp({ hidden: [7, 5], numClasses: 3 }).init(keyFromSeed(0), [2, 2, 1]);
    assert.equal(size(deep.params), 4 * 7 + 7 + 7 * 5 + 5 + 5 * 3 + 3);
    assert.equal(kindLeaves(deep.kinds).length, 6);
    disposeTree(deep.params);
  });
});

Deno.test("mlp: every weight and bias is N(0, 0.01²); a seed gives bit-identical parameters", async () => {
  await withNoLeaks(() =>
    fc.assert(
      fc.property(seeds, (seed) => {
        const m = mlp();
        const a = m.init(keyFromSeed(seed), [28, 28, 1]);
        const b = m.init(keyFromSeed(seed), [28, 28, 1]);
        const c = m.init(keyFromSeed(seed + 1), [28, 28, 1]);
        try {
          const all = leaves(a.params).flatMap((t) => Array.from(t.dataSync()));
          assertDistribution(all, { kind: "normal", mean: 0, std: 0.01 }, "mlp params");
          const big = a.params.layers[0].kernel.dataSync();
          assertDistribution(big, { kind: "normal", mean: 0, std: 0.01 }, "mlp layer 0 kernel");
          leaves(a.params).forEach((t, i) => {
            assert.deepEqual(t.dataSync(), leaves(b.params)[i].dataSync());
            assert.notDeepEqual(t.dataSync(), leaves(c.params)[i].dataSync());
          });
        } finally {
          [a, b, c].forEach((x) => disposeTree(x.params));
        }
      }),
      { numRuns: 3 },
    )
  );
});

Deno.test("mlp: forward equals sigmoid(flatten(x)·W1 + b1)·W2 + b2; inference mode is the same", async () => {
  await withNoLeaks(() => {
    const m = mlp();
    const { params } = m.init(keyFromSeed(5), [28, 28, 1]);
    tf.tidy(() => {
      const x = randomInput(keyFromSeed(6), 3, [28, 28, 1]);
      const y = m.apply(plain, params, x) as tf.Tensor;
      assert.deepEqual(y.shape, [3, 10]);
      const [l1, l2] = params.layers;
      const h = tf.sigmoid(tf.add(tf.matMul(tf.reshape(x, [3, 784]), l1.kernel), l1.bias));
      assertAllClose(y, tf.add(tf.matMul(h, l2.kernel), l2.bias), { rtol: 1e-5, atol: 1e-7 });
      assertAllClose(m.applyInference(plain, params, {}, x), y, { rtol: 0, atol: 0 });
    });
    disposeTree(params);
  });
});

for (const activation of ["sigmoid", "tanh", "relu"] as const) {
  Deno.test(`mlp (${activation}): R-forward and transpose checks`, async () => {
    await withNoLeaks(() =>
      fc.assert(
        fc.property(seeds, (seed) => {
          const [k1, k2, k3] = split(keyFromSeed(seed), 3);
          const m = mlp({ hidden: [6, 5], activation, numClasses: 4, initStd: 0.5 });
          const { params } = m.init(k1, [3, 3, 2]);
          const x = randomInput(k2, 3, [3, 3, 2]);
          try {
            // ReLU's kinks make float32 finite differences unreliable: adjoint + tape only.
            checkDerivatives(m, params, x, k3, activation === "relu" ? {} : { fdEps: 1e-3 });
          } finally {
            x.dispose();
            disposeTree(params);
          }
        }),
        { numRuns: 5 },
      )
    );
  });
}

Deno.test("mlp: the original (std 0.01) passes the finite-difference check too", async () => {
  await withNoLeaks(() => {
    const m = mlp();
    const { params } = m.init(keyFromSeed(9), [6, 6, 1]);
    const x = randomInput(keyFromSeed(10), 4, [6, 6, 1]);
    try {
      checkDerivatives(m, params, x, keyFromSeed(11), { fdEps: 1e-3 });
    } finally {
      x.dispose();
      disposeTree(params);
    }
  });
});
