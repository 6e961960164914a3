/**
 * ResNet v2 (docs/algorithm.md#resnet-v2): exact parameter counts (ResNet-20/32/56 and ResNet-18
 * with 1001 classes), kinds, output shapes, init distributions, TF's fixed padding, the forward
 * pass against the original's layers written directly in TF.js (train and inference mode), and the
 * linearization.
 * @module
 */
import { tf } from "../lib/_deps.ts";
import { assert, fc } from "../tests/_util/deps.ts";
import { useTestBackend } from "../tests/_util/backend.ts";
import { assertAllClose, withNoLeaks } from "../tests/_util/numeric.ts";
import { randomLike } from "../tests/_util/gradcheck.ts";
import { keyFromSeed, split, uniform } from "../lib/prng.ts";
import { add, disposeTree, leaves, mapTree, size } from "../lib/tree.ts";
import { plain } from "../ops/interpret.ts";
import {
  resnet18V2ImageNet,
  type ResNetParams,
  type ResNetState,
  resnetV2Cifar,
} from "./resnet_v2.ts";
import { conv2dFixedPadding } from "./layers.ts";
import { glorotLimit, varianceScalingStd } from "./init.ts";
import { countByKind, kindLeaves, logitsOf } from "./types.ts";
import { assertDistribution, assertKindsFit, checkDerivatives, randomInput } from "./_testing.ts";

await useTestBackend();

const seeds = fc.integer({ min: 0, max: 2 ** 30 });

Deno.test("resnetV2Cifar: ResNet-20/32/56 have 272,538 / 466,970 / 855,834 parameters", async () => {
  await withNoLeaks(() => {
    for (const [depth, count] of [[20, 272538], [32, 466970], [56, 855834]]) {
      const { params, kinds, state } = resnetV2Cifar({ depth }).init(keyFromSeed(0), [32, 32, 3]);
      try {
        assert.equal(size(params), count, `ResNet-${depth}`);
        assertKindsFit(params, kinds);
        const n = (depth - 2) / 6;
        const ks = kindLeaves(kinds);
        // stem + 2 convs per block + one projection per stage; 2 BNs per block + the final one.
        assert.equal(ks.filter((k) => k === "conv2d/kernel").length, 1 + 6 * n + 3);
        assert.equal(ks.filter((k) => k === "batch/gamma").length, 6 * n + 1);
        assert.equal(ks.filter((k) => k === "batch/beta").length, 6 * n + 1);
        assert.equal(ks.filter((k) => k === "conv2d/bias").length, 0);
        // Moving statistics: one mean and one variance per BN layer, none of them parameters.
        assert.equal(leaves(state).length, 2 * (6 * n + 1));
        assert.equal(size(state), 2 * countByKind(params, kinds)["batch/gamma"]);
      } finally {
        disposeTree(params);
        disposeTree(state);
      }
    }
    const r20 = resnetV2Cifar({ depth: 20 }).init(keyFromSeed(0), [32, 32, 3]);
    assert.deepEqual(countByKind(r20.params, r20.kinds), {
      "conv2d/kernel": 270512,
      "conv2d/bias": 0,
      "batch/gamma": 688,
      "batch/beta": 688,
      "dense/kernel": 640,
      "dense/bias": 10,
    });
    assert.deepEqual(r20.kinds.stages[1].blocks[0], {
      bn1: { gamma: "batch/gamma", beta: "batch/beta" },
      conv1: "conv2d/kernel",
      bn2: { gamma: "batch/gamma", beta: "batch/beta" },
      conv2: "conv2d/kernel",
    });
    assert.deepEqual(r20.params.stages[1].shortcut.shape, [1, 1, 16, 32]);
    assert.deepEqual(r20.params.stages[1].blocks[0].conv1.shape, [3, 3, 16, 32]);
    assert.deepEqual(r20.state.stages[2][0].bn1.mean.shape, [32]);
    disposeTree(r20.params);
    disposeTree(r20.state);
  });
});

Deno.test("resnet18V2ImageNet: 11,692,329 parameters with 1001 classes", async () => {
  await withNoLeaks(() => {
    const { params, kinds, state } = resnet18V2ImageNet().init(keyFromSeed(0), [224, 224, 3]);
    try {
      assert.equal(size(params), 11692329);
      assert.deepEqual(countByKind(params, kinds), {
        "conv2d/kernel": 11171008,
        "conv2d/bias": 0,
        "batch/gamma": 3904,
        "batch/beta": 3904,
        "dense/kernel": 512 * 1001,
        "dense/bias": 1001,
      });
      assert.deepEqual(params.stem.shape, [7, 7, 3, 64]);
      assert.deepEqual(params.stages.map((s) => s.blocks.length), [2, 2, 2, 2]);
      assert.deepEqual(params.stages.map((s) => s.shortcut.shape[3]), [64, 128, 256, 512]);
      assert.equal(size(state), 2 * 3904);
    } finally {
      disposeTree(params);
      disposeTree(state);
    }
  });
});

Deno.test("resnetV2: logits shapes in both modes; train-mode aux is shaped like the state", async () => {
  await withNoLeaks(() => {
    const cases = [
      [resnetV2Cifar({ depth: 20 }), [32, 32, 3], 10],
      [resnet18V2ImageNet(), [64, 64, 3], 1001], // reduced input: 224 is too slow for a test
    ] as const;
    for (const [m, shape, classes] of cases) {
      const { params, state } = m.init(keyFromSeed(1), shape);
      tf.tidy(() => {
        const x = randomInput(keyFromSeed(2), 2, shape);
        const out = m.apply(plain, params, x);
        assert.ok(!(out instanceof tf.Tensor), "train mode returns { output, aux }");
        assert.deepEqual(logitsOf(out).shape, [2, classes]);
        const aux = (out as unknown as { aux: ResNetState }).aux;
        assert.deepEqual(leaves(aux).map((t) => t.shape), leaves(state).map((t) => t.shape));
        const inf = m.applyInference(plain, params, state, x);
        assert.deepEqual(inf.shape, [2, classes]);
        assert.ok(inf.dataSync().every(Number.isFinite));
      });
      disposeTree(params);
      disposeTree(state);
    }
  });
});

Deno.test("resnetV2: variance-scaling convs, glorot dense, BN 1/0; bit-identical per seed", async () => {
  await withNoLeaks(() =>
    fc.assert(
      fc.property(seeds, (seed) => {
        const m = resnetV2Cifar({ depth: 20 });
        const a = m.init(keyFromSeed(seed), [32, 32, 3]);
        const b = m.init(keyFromSeed(seed), [32, 32, 3]);
        try {
          // Pool the conv kernels by fan-in (the stem alone has only 432 values).
          const byFanIn = new Map<number, number[]>();
          const ks = kindLeaves(a.kinds);
          // He init (scale 2) on request.
          const he = resnetV2Cifar({ depth: 8, convInitScale: 2 }).init(keyFromSeed(seed), [
            8,
            8,
            3,
          ]);
          const k = he.params.stages[2].blocks[0].conv2;
          assertDistribution(k.dataSync(), {
            kind: "truncatedNormal",
            std: varianceScalingStd(k.shape, 2),
          }, "He-init conv");
          disposeTree(he.params);
          disposeTree(he.state);
          leaves(a.params).forEach((t, i) => {
            const vals = Array.from(t.dataSync());
            if (ks[i] === "conv2d/kernel") {
              const fanIn = t.size / t.shape[3]!;
              byFanIn.set(fanIn, [...(byFanIn.get(fanIn) ?? []), ...vals]);
            } else if (ks[i] === "batch/gamma") {
              assertDistribution(vals, { kind: "constant", value: 1 }, `gamma ${i}`);
            } else if (ks[i] === "batch/beta" || ks[i] === "dense/bias") {
              assertDistribution(vals, { kind: "constant", value: 0 }, `${ks[i]} ${i}`);
            }
          });
          assert.deepEqual([...byFanIn.keys()].sort((x, y) => x - y), [16, 27, 32, 144, 288, 576]);
          for (const [fanIn, vals] of byFanIn) {
            const std = varianceScalingStd([1, 1, fanIn, 1]);
            assertDistribution(vals, { kind: "truncatedNormal", std }, `conv fan-in ${fanIn}`);
          }
          // glorot: 640 values only; the bounds and moments still pin it down.
          const dense = a.params.dense.kernel;
          assertDistribution(dense.dataSync(), {
            kind: "uniform",
            limit: glorotLimit(dense.shape),
          }, "dense kernel");
          leaves(a.state).forEach((t, i) =>
            assertDistribution(t.dataSync(), { kind: "constant", value: i % 2 }, `state ${i}`)
          );
          leaves(a.params).forEach((t, i) =>
            assert.deepEqual(t.dataSync(), leaves(b.params)[i].dataSync())
          );
        } finally {
          [a, b].forEach((x) => {
            disposeTree(x.params);
            disposeTree(x.state);
          });
        }
      }),
      { numRuns: 3 },
    )
  );
});

Deno.test("conv2dFixedPadding: TF's fixed_padding (pad k−1, the smaller half first) then VALID", async () => {
  await withNoLeaks(() =>
    tf.tidy(() => {
      const x = randomInput(keyFromSeed(1), 2, [8, 8, 3]) as tf.Tensor4D;
      for (const [k, beg, end] of [[3, 1, 1], [7, 3, 3], [4, 1, 2], [1, 0, 0]]) {
        const w = randomInput(keyFromSeed(k), k, [k, 3, 4]) as tf.Tensor4D;
        const got = conv2dFixedPadding(plain, x, w, 2);
        const padded = tf.pad(x, [[0, 0], [beg, end], [beg, end], [0, 0]]);
        assertAllClose(got, tf.conv2d(padded, w, 2, "valid"), { rtol: 1e-5, atol: 1e-6 });
        // On an even input SAME pads k − 2 in total, the smaller half first: for odd k the
        // windows are shifted by one against fixed padding.
        if (k === 3 || k === 7) {
          assert.throws(() => assertAllClose(got, tf.conv2d(x, w, 2, "same"), { atol: 1e-3 }));
        }
      }
      const w = randomInput(keyFromSeed(9), 3, [3, 3, 4]) as tf.Tensor4D;
      assertAllClose(conv2dFixedPadding(plain, x, w, 1), tf.conv2d(x, w, 1, "same"), { atol: 0 });
    })
  );
});

/** Batch norm written directly: per-channel moments over N, H, W (biased), or given statistics. */
const refBn = (
  h: tf.Tensor4D,
  p: { gamma: tf.Tensor; beta: tf.Tensor },
  s?: { mean: tf.Tensor; variance: tf.Tensor },
) => {
  const { mean, variance } = s ?? tf.moments(h, [0, 1, 2]);
  return tf.add(tf.mul(tf.mul(tf.sub(h, mean), tf.rsqrt(tf.add(variance, 1e-5))), p.gamma), p.beta);
};

/**
 * The original's `resnet_model.py` written directly in TF.js: `conv2d_fixed_padding`,
 * `building_block`, `block_layer`, the final BN-ReLU and the VALID average pool over the whole map.
 */
const reference = (
  p: ResNetParams,
  x: tf.Tensor4D,
  stem: { stride: number; maxPool: boolean },
  strides: number[],
  state?: ResNetState,
): tf.Tensor => {
  const conv = (h: tf.Tensor4D, k: tf.Tensor, s: number): tf.Tensor4D => {
    const w = k as tf.Tensor4D;
    if (s === 1) return tf.conv2d(h, w, 1, "same");
    const t = w.shape[0] - 1, b = Math.floor(t / 2);
    return tf.conv2d(tf.pad(h, [[0, 0], [b, t - b], [b, t - b], [0, 0]]), w, s, "valid");
  };
  const bnRelu = (h: tf.Tensor4D, bp: ResNetParams["bnFinal"], s?: ResNetState["bnFinal"]) =>
    tf.relu(refBn(h, bp, s)) as tf.Tensor4D;
  let h = conv(x, p.stem, stem.stride);
  if (stem.maxPool) h = tf.maxPool(h, 3, 2, "same");
  p.stages.forEach((stage, s) =>
    stage.blocks.forEach((b, i) => {
      const st = state?.stages[s][i];
      const stride = i === 0 ? strides[s] : 1;
      let shortcut = h;
      const pre = bnRelu(h, b.bn1, st?.bn1);
      if (i === 0) shortcut = conv(pre, stage.shortcut, stride);
      const mid = bnRelu(conv(pre, b.conv1, stride), b.bn2, st?.bn2);
      h = tf.add(conv(mid, b.conv2, 1), shortcut);
    })
  );
  h = bnRelu(h, p.bnFinal, state?.bnFinal);
  const pooled = tf.avgPool(h, [h.shape[1], h.shape[2]], 1, "valid");
  const flat = tf.reshape(pooled, [x.shape[0], -1]) as tf.Tensor2D;
  return tf.add(tf.matMul(flat, p.dense.kernel as tf.Tensor2D), p.dense.bias);
};

Deno.test("resnetV2: forward equals resnet_model.py written in TF.js (train and inference)", async () => {
  await withNoLeaks(() => {
    const cases = [
      [resnetV2Cifar({ depth: 14, filters: [3, 4, 5] }), [32, 32, 3], 1, false, [1, 2, 2]],
      [resnet18V2ImageNet({ filters: [2, 3, 3, 4], numClasses: 7 }), [224, 224, 3], 2, true, [
        1,
        2,
        2,
        2,
      ]],
    ] as const;
    for (const [m, shape, stride, maxPool, strides] of cases) {
      const init = m.init(keyFromSeed(3), shape);
      tf.tidy(() => {
        // Move every parameter off its init (gamma 1, beta 0 would hide their misuse).
        const p = add(init.params, randomLike(keyFromSeed(4), init.params, 0.2));
        const x = randomInput(keyFromSeed(5), 2, shape) as tf.Tensor4D;
        const stem = { stride, maxPool };
        const want = reference(p, x, stem, [...strides]);
        assertAllClose(logitsOf(m.apply(plain, p, x)), want, { rtol: 1e-4, atol: 1e-5 });
        // Inference mode with arbitrary moving statistics (variances in [0.5, 2]).
        const [km, kv] = split(keyFromSeed(6), 2);
        const state = mapTree(init.state, (t, i) => {
          const u = uniform(i % 2 ? kv : km, t.size, 0.5, 2);
          return tf.tensor(i % 2 ? u : u.map((v) => v - 1.25), t.shape);
        });
        assertAllClose(
          m.applyInference(plain, p, state, x),
          reference(p, x, stem, [...strides], state),
          { rtol: 1e-4, atol: 1e-5 },
        );
      });
      disposeTree(init.params);
      disposeTree(init.state);
    }
  });
});

/** Small variants: name, model, input shape, batch, FD step (smooth variants only), runs. */
const smallCases = [
  ["ResNet-8 (relu)", resnetV2Cifar({ depth: 8, filters: [2, 3, 4] }), [8, 8, 3], 2, null, 3],
  [
    "ResNet-8 (tanh)",
    resnetV2Cifar({ depth: 8, filters: [2, 3, 4], activation: "tanh" }),
    [8, 8, 3],
    2,
    3e-4,
    3,
  ],
  // Batch 4: the last stage is 1×1, and batch norm over only 2 values is ill-conditioned.
  [
    "ResNet-18 stem and stages (relu)",
    resnet18V2ImageNet({ filters: [2, 2, 3, 3], numClasses: 5 }),
    [32, 32, 3],
    4,
    null,
    2,
  ],
] as const;

for (const [name, m, shape, batch, fdEps, numRuns] of smallCases) {
  Deno.test(`resnetV2 ${name}, small widths: R-forward and transpose checks`, async () => {
    await withNoLeaks(() =>
      fc.assert(
        fc.property(seeds, (seed) => {
          const [k1, k2, k3] = split(keyFromSeed(seed), 3);
          const { params, state } = m.init(k1, shape);
          const x = randomInput(k2, batch, shape);
          try {
            // FD only on the tanh variant: ReLU and max-pool kinks break float32 differences.
            checkDerivatives(m, params, x, k3, fdEps === null ? {} : { fdEps });
          } finally {
            x.dispose();
            disposeTree(params);
            disposeTree(state);
          }
        }),
        { numRuns },
      )
    );
  });
}

Deno.test("resnetV2: invalid depths and configurations are clear errors", () => {
  for (const depth of [18, 21, 2, 8.5]) {
    assert.throws(() => resnetV2Cifar({ depth }), /depth must be 6n \+ 2/);
  }
  assert.throws(() => resnetV2Cifar({ depth: 20, filters: [16, 32] }), /one entry per stage/);
});
