/**
 * The CUDA-convnet (docs/algorithm.md#cuda-convnet): 1,756,426 parameters on CIFAR, the dense layer
 * sized from MNIST input, kinds, per-layer init distributions, the forward pass against a direct
 * TF.js computation, and the linearization (adjoint + tape on the ReLU net, plus finite differences
 * on a tanh variant).
 * @module
 */
import { tf } from "../lib/_deps.ts";
import { assert, fc } from "../tests/_util/deps.ts";
import { useTestBackend } from "../tests/_util/backend.ts";
import { assertAllClose, withNoLeaks } from "../tests/_util/numeric.ts";
import { keyFromSeed, split } from "../lib/prng.ts";
import { disposeTree, leaves, size } from "../lib/tree.ts";
import { plain } from "../ops/interpret.ts";
import { cudaConvnet, type CudaConvnetParams } from "./cuda_convnet.ts";
import { countByKind, kindLeaves } from "./types.ts";
import {
  assertDistribution,
  assertKindsFit,
  checkDerivatives,
  type Dist,
  randomInput,
} from "./_testing.ts";

await useTestBackend();

const seeds = fc.integer({ min: 0, max: 2 ** 30 });

Deno.test("cudaConvnet: 1,756,426 parameters on 32×32×3 and 1,384,586 on 28×28×1, kinds", async () => {
  await withNoLeaks(() => {
    const m = cudaConvnet();
    const cifar = m.init(keyFromSeed(0), [32, 32, 3]);
    try {
      assert.equal(size(cifar.params), 1756426);
      assert.deepEqual(countByKind(cifar.params, cifar.kinds), {
        "conv2d/kernel": 5 * 5 * 3 * 64 + 5 * 5 * 64 * 64,
        "conv2d/bias": 128,
        "batch/gamma": 0,
        "batch/beta": 0,
        "dense/kernel": 4096 * 384 + 384 * 192 + 192 * 10,
        "dense/bias": 384 + 192 + 10,
      });
      assert.deepEqual(kindLeaves(cifar.kinds), [
        ...["conv2d/kernel", "conv2d/bias", "conv2d/kernel", "conv2d/bias"],
        ...[
          "dense/kernel",
          "dense/bias",
          "dense/kernel",
          "dense/bias",
          "dense/kernel",
          "dense/bias",
        ],
      ]);
      assertKindsFit(cifar.params, cifar.kinds);
      assert.deepEqual(cifar.params.local3.kernel.shape, [8 * 8 * 64, 384]);
    } finally {
      disposeTree(cifar.params);
    }
    const mnist = m.init(keyFromSeed(0), [28, 28, 1]);
    try {
      assert.deepEqual(mnist.params.conv1.kernel.shape, [5, 5, 1, 64]);
      assert.deepEqual(mnist.params.local3.kernel.shape, [7 * 7 * 64, 384]);
      assert.equal(size(mnist.params), 1384586);
    } finally {
      disposeTree(mnist.params);
    }
  });
});

Deno.test("cudaConvnet: logits of shape [B, 10] on CIFAR and MNIST inputs", async () => {
  await withNoLeaks(() => {
    const m = cudaConvnet();
    for (const shape of [[32, 32, 3], [28, 28, 1]] as const) {
      const { params } = m.init(keyFromSeed(1), shape);
      tf.tidy(() => {
        const x = randomInput(keyFromSeed(2), 2, shape);
        const y = m.apply(plain, params, x) as tf.Tensor;
        assert.deepEqual(y.shape, [2, 10]);
        assert.ok(y.dataSync().every(Number.isFinite));
        assertAllClose(m.applyInference(plain, params, {}, x), y, { rtol: 0, atol: 0 });
      });
      disposeTree(params);
    }
  });
});

Deno.test("cudaConvnet: the original's per-layer init distributions; bit-identical per seed", async () => {
  await withNoLeaks(() =>
    fc.assert(
      fc.property(seeds, (seed) => {
        const m = cudaConvnet();
        const a = m.init(keyFromSeed(seed), [32, 32, 3]);
        const b = m.init(keyFromSeed(seed), [32, 32, 3]);
        try {
          const p = a.params;
          const expect: [tf.Tensor, Dist, string][] = [
            [p.conv1.kernel, { kind: "normal", mean: 0, std: 0.05 }, "conv1 kernel"],
            [p.conv1.bias, { kind: "constant", value: 0 }, "conv1 bias"],
            [p.conv2.kernel, { kind: "normal", mean: 0, std: 0.05 }, "conv2 kernel"],
            [p.conv2.bias, { kind: "constant", value: 0 }, "conv2 bias"],
            [p.local3.kernel, { kind: "normal", mean: 0, std: 0.04 }, "local3 kernel"],
            [p.local3.bias, { kind: "constant", value: 0.1 }, "local3 bias"],
            [p.local4.kernel, { kind: "normal", mean: 0, std: 0.04 }, "local4 kernel"],
            [p.local4.bias, { kind: "constant", value: 0.1 }, "local4 bias"],
            [p.softmaxLinear.kernel, { kind: "normal", mean: 0, std: 1 / 192 }, "softmax kernel"],
            [p.softmaxLinear.bias, { kind: "constant", value: 0 }, "softmax bias"],
          ];
          expect.forEach(([t, d, what]) => assertDistribution(t.dataSync(), d, what));
          leaves(p).forEach((t, i) =>
            assert.deepEqual(t.dataSync(), leaves(b.params)[i].dataSync())
          );
        } finally {
          disposeTree(a.params);
          disposeTree(b.params);
        }
      }),
      { numRuns: 2 },
    )
  );
});

/** The convnet written directly with TF.js ops (the reference for the architecture). */
const reference = (p: CudaConvnetParams, x: tf.Tensor4D): tf.Tensor => {
  const conv = (h: tf.Tensor4D, k: tf.Tensor, b: tf.Tensor): tf.Tensor4D => {
    const a = tf.relu(tf.add(tf.conv2d(h, k as tf.Tensor4D, 1, "same"), b)) as tf.Tensor4D;
    return tf.maxPool(a, 2, 2, "same");
  };
  const h = conv(conv(x, p.conv1.kernel, p.conv1.bias), p.conv2.kernel, p.conv2.bias);
  const flat = tf.reshape(h, [x.shape[0], -1]);
  const l3 = tf.relu(tf.add(tf.matMul(flat, p.local3.kernel as tf.Tensor2D), p.local3.bias));
  const l4 = tf.relu(tf.add(tf.matMul(l3, p.local4.kernel as tf.Tensor2D), p.local4.bias));
  return tf.add(tf.matMul(l4, p.softmaxLinear.kernel as tf.Tensor2D), p.softmaxLinear.bias);
};

Deno.test("cudaConvnet: forward equals the layers written directly in TF.js", async () => {
  await withNoLeaks(() => {
    const m = cudaConvnet({ filters: [4, 5], units: [7, 6], numClasses: 3 });
    for (const shape of [[9, 10, 2], [8, 8, 3]] as const) {
      const { params } = m.init(keyFromSeed(3), shape);
      tf.tidy(() => {
        const x = randomInput(keyFromSeed(4), 3, shape) as tf.Tensor4D;
        assertAllClose(m.apply(plain, params, x) as tf.Tensor, reference(params, x), {
          rtol: 1e-5,
          atol: 1e-6,
        });
      });
      disposeTree(params);
    }
  });
});

for (const activation of ["relu", "tanh"] as const) {
  Deno.test(`cudaConvnet (small widths, ${activation}): R-forward and transpose checks`, async () => {
    await withNoLeaks(() =>
      fc.assert(
        fc.property(seeds, (seed) => {
          const [k1, k2, k3] = split(keyFromSeed(seed), 3);
          const m = cudaConvnet({ filters: [3, 4], units: [6, 5], numClasses: 4, activation });
          const { params } = m.init(k1, [8, 8, 2]);
          const x = randomInput(k2, 2, [8, 8, 2]);
          try {
            // FD only on the tanh variant (ReLU kinks); max-pool windows rarely tie at this size.
            checkDerivatives(m, params, x, k3, activation === "tanh" ? { fdEps: 3e-4 } : {});
          } finally {
            x.dispose();
            disposeTree(params);
          }
        }),
        { numRuns: 4 },
      )
    );
  });
}
