/**
 * Initializers: TF's fan rule, the sample distributions (mean, std, tails, bounds checked in
 * standard errors, so a wrong scale or a missing truncation fails), determinism from a key, and the
 * split of a tagged tree into parameters and kinds.
 * @module
 */
import { tf } from "../lib/_deps.ts";
import { assert, fc } from "../tests/_util/deps.ts";
import { useTestBackend } from "../tests/_util/backend.ts";
import { withNoLeaks } from "../tests/_util/numeric.ts";
import { keyFromSeed } from "../lib/prng.ts";
import { disposeTree, leaves } from "../lib/tree.ts";
import {
  constant,
  fans,
  glorotLimit,
  glorotUniform,
  paramSource,
  randomNormal,
  untag,
  varianceScaling,
  varianceScalingStd,
} from "./init.ts";
import { assertDistribution } from "./_testing.ts";
import { isParamKind, kindLeaves, PARAM_KINDS } from "./types.ts";

await useTestBackend();

const seeds = fc.integer({ min: 0, max: 2 ** 30 });
const sample = (t: tf.Tensor): Float32Array => {
  const v = t.dataSync() as Float32Array;
  t.dispose();
  return v;
};

Deno.test("fans follow TF's _compute_fans", () => {
  assert.deepEqual(fans([]), [1, 1]);
  assert.deepEqual(fans([7]), [7, 7]);
  assert.deepEqual(fans([3, 4]), [3, 4]);
  assert.deepEqual(fans([5, 5, 3, 64]), [75, 1600]);
  assert.deepEqual(fans([1, 1, 16, 32]), [16, 32]);
  assert.equal(varianceScalingStd([3, 3, 16, 32]), Math.sqrt(1 / 144));
  assert.equal(varianceScalingStd([3, 3, 16, 32], 2), Math.sqrt(2 / 144));
  assert.equal(glorotLimit([64, 10]), Math.sqrt(6 / 74));
});

Deno.test("initializers draw from their stated distributions (5 standard errors)", async () => {
  await withNoLeaks(() =>
    fc.assert(
      fc.property(seeds, (seed) => {
        const key = keyFromSeed(seed);
        assertDistribution(
          sample(randomNormal(0.05, 0.3)(key, [200, 100])),
          { kind: "normal", mean: 0.3, std: 0.05 },
          "randomNormal",
        );
        for (const [shape, scale] of [[[3, 3, 16, 32], 1], [[1, 1, 64, 128], 2]] as const) {
          assertDistribution(
            sample(varianceScaling(scale)(key, shape)),
            { kind: "truncatedNormal", std: varianceScalingStd(shape, scale) },
            `varianceScaling(${scale}) [${shape}]`,
          );
        }
        assertDistribution(
          sample(glorotUniform(key, [300, 200])),
          { kind: "uniform", limit: glorotLimit([300, 200]) },
          "glorotUniform",
        );
        assertDistribution(
          sample(constant(0.1)(key, [7, 3])),
          { kind: "constant", value: 0.1 },
          "c",
        );
      }),
      { numRuns: 5 },
    )
  );
});

Deno.test("the distribution check rejects wrong scales, truncation and bounds", () => {
  const key = keyFromSeed(3);
  const normal = sample(randomNormal(1)(key, [20000]));
  const cases: [Float32Array, Parameters<typeof assertDistribution>[1]][] = [
    [normal, { kind: "normal", mean: 0, std: 1.05 }], // std 5% off
    [normal, { kind: "normal", mean: 0.05, std: 1 }], // mean off by 0.05σ
    // Truncated samples of std 1 are not a plain normal (no 2σ tail) ...
    [sample(varianceScaling(1)(key, [20000, 1])), { kind: "normal", mean: 0, std: 0.00707 }],
    // ... and TF's uncorrected std (without the 0.8796 factor) is 12% too small.
    [sample(varianceScaling(1)(key, [1, 1, 4608, 1])), {
      kind: "truncatedNormal",
      std: 0.8796 * Math.sqrt(1 / 4608),
    }],
    [normal, { kind: "uniform", limit: 1.7320508 }], // unbounded values
  ];
  cases.forEach(([xs, dist], i) => assert.throws(() => assertDistribution(xs, dist, `case ${i}`)));
});

Deno.test("a key gives bit-identical parameters; different keys differ", async () => {
  await withNoLeaks(() => {
    const draw = (seed: number) => {
      const param = paramSource(keyFromSeed(seed));
      const ts = [
        param("conv2d/kernel", [3, 3, 2, 4], varianceScaling()),
        param("dense/kernel", [5, 6], glorotUniform),
        param("dense/bias", [6], randomNormal(0.01)),
        param("dense/bias", [6], randomNormal(0.01)),
      ].map((t) => t.value);
      const out = ts.map((t) => Array.from(t.dataSync()));
      tf.dispose(ts);
      return out;
    };
    assert.deepEqual(draw(42), draw(42));
    const [a, b] = [draw(42), draw(43)];
    a.forEach((xs, i) => assert.notDeepEqual(xs, b[i]));
    // Successive parameters of one source use different keys.
    const c = draw(7);
    assert.notDeepEqual(c[2], c[3]);
  });
});

Deno.test("untag splits a tagged tree into parameters and kinds of the same structure", async () => {
  await withNoLeaks(() => {
    const param = paramSource(keyFromSeed(1));
    type P = { a: tf.Tensor; b: { c: tf.Tensor; d: tf.Tensor }[] };
    const { params, kinds } = untag<P>({
      a: param("conv2d/kernel", [1, 1, 2, 3], constant(1)),
      b: [
        { c: param("batch/gamma", [3], constant(1)), d: param("batch/beta", [3], constant(0)) },
        { c: param("dense/kernel", [3, 2], constant(2)), d: param("dense/bias", [2], constant(0)) },
      ],
    });
    assert.deepEqual(kinds, {
      a: "conv2d/kernel",
      b: [{ c: "batch/gamma", d: "batch/beta" }, { c: "dense/kernel", d: "dense/bias" }],
    });
    assert.deepEqual(leaves(params).map((t) => t.shape), [[1, 1, 2, 3], [3], [3], [3, 2], [2]]);
    assert.deepEqual(kindLeaves(kinds), [
      "conv2d/kernel",
      "batch/gamma",
      "batch/beta",
      "dense/kernel",
      "dense/bias",
    ]);
    assert.equal(params.b[1].c.dataSync()[0], 2);
    disposeTree(params);
  });
});

Deno.test("the six parameter kinds of docs/algorithm.md#parameter-kinds", () => {
  assert.deepEqual([...PARAM_KINDS].sort(), [
    "batch/beta",
    "batch/gamma",
    "conv2d/bias",
    "conv2d/kernel",
    "dense/bias",
    "dense/kernel",
  ]);
  assert.ok(PARAM_KINDS.every(isParamKind));
  assert.ok(!isParamKind("conv2d_3/kernel") && !isParamKind("batch_normalization/gamma"));
});
