/**
 * The task sampler: the `--tasks` syntax, and every draw (family, batch size, permutation flags,
 * per-tensor scales, label and pixel permutations) reproducible from the seed and different for
 * another seed or another task.
 */
import { assert, fc } from "../../tests/_util/deps.ts";
import { keyFromSeed } from "../prng.ts";
import {
  checkAugmentation,
  DEFAULT_TASK_MIX,
  familyName,
  initKey,
  labelPermutation,
  parseTaskMix,
  pixelPermutation,
  sampleTask,
  type TaskAugmentation,
  taskScales,
} from "./task_mix.ts";

const AUG: TaskAugmentation = {
  scaleRange: [1e-3, 1e3],
  permuteLabels: 0.5,
  permutePixels: 0.5,
  batchSizes: [32, 64, 128],
};
const MIX = parseTaskMix("default");

Deno.test("task mix: the --tasks syntax round-trips through familyName; bad entries are named", () => {
  assert.deepEqual(MIX.map(familyName).join(","), DEFAULT_TASK_MIX);
  assert.deepEqual(parseTaskMix("mlp-64x32-relu, convnet-8x16-32x16"), [
    { kind: "mlp", hidden: [64, 32], activation: "relu" },
    { kind: "convnet", filters: [8, 16], units: [32, 16] },
  ]);
  assert.equal(parseTaskMix("default,mlp-7-tanh").length, 7);
  for (const bad of ["mlp-0-relu", "mlp-20-gelu", "convnet-8-32x16", "resnet", "mlp-20"]) {
    assert.throws(() => parseTaskMix(bad), RangeError, `--tasks: '${bad}' is not a task family`);
  }
  assert.throws(() => parseTaskMix("mlp-20-relu,,"), RangeError, "--tasks: empty entry");
  assert.throws(
    () => checkAugmentation({ ...AUG, scaleRange: [10, 1] }),
    RangeError,
    "scaleRange must be 0 < lo ≤ hi < ∞, got [10, 1]",
  );
  assert.throws(
    () => checkAugmentation({ ...AUG, batchSizes: [] }),
    RangeError,
    "batchSizes must be positive integers",
  );
});

Deno.test("task mix: the same seed draws the same tasks, another seed other ones", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 2 ** 31 }),
      fc.integer({ min: 0, max: 10_000 }),
      (seed, id) => {
        const a = sampleTask(keyFromSeed(seed), id, MIX, AUG);
        assert.deepEqual(sampleTask(keyFromSeed(seed), id, MIX, AUG), a);
        assert.equal(a.id, id);
        assert.equal(a.name, familyName(MIX[a.family]));
        assert(AUG.batchSizes.includes(a.batchSize));
        // Another seed or another task: another key (so other init, scales and permutations).
        assert.notDeepEqual(sampleTask(keyFromSeed(seed + 1), id, MIX, AUG).key, a.key);
        assert.notDeepEqual(sampleTask(keyFromSeed(seed), id + 1, MIX, AUG).key, a.key);
        assert.deepEqual(
          taskScales(a, 10, AUG.scaleRange),
          taskScales({ ...a }, 10, AUG.scaleRange),
        );
        assert.deepEqual(labelPermutation(a, 10), labelPermutation({ ...a }, 10));
        assert.deepEqual(pixelPermutation(a, 784), pixelPermutation({ ...a }, 784));
        assert.deepEqual(initKey(a), initKey({ ...a }));
      },
    ),
    { numRuns: 50 },
  );
  const draws = (seed: number) =>
    Array.from({ length: 40 }, (_, i) => sampleTask(keyFromSeed(seed), i, MIX, AUG));
  const a = draws(1), b = draws(2);
  assert.notDeepEqual(a.map((t) => t.family), b.map((t) => t.family));
  // 40 draws cover every family, batch size and both values of each flag.
  for (const ts of [a, b]) {
    assert.equal(new Set(ts.map((t) => t.family)).size, MIX.length);
    assert.equal(new Set(ts.map((t) => t.batchSize)).size, 3);
    assert.equal(new Set(ts.map((t) => t.permuteLabels)).size, 2);
    assert.equal(new Set(ts.map((t) => t.permutePixels)).size, 2);
  }
  // Probabilities 0 and 1 are never / always.
  const never = { ...AUG, permuteLabels: 0, permutePixels: 0 };
  const always = { ...AUG, permuteLabels: 1, permutePixels: 1 };
  for (let i = 0; i < 20; i++) {
    const n = sampleTask(keyFromSeed(3), i, MIX, never),
      y = sampleTask(keyFromSeed(3), i, MIX, always);
    assert.equal(n.permuteLabels || n.permutePixels, false);
    assert.equal(y.permuteLabels && y.permutePixels, true);
    assert.equal(labelPermutation(n, 10), null);
    assert.equal(pixelPermutation(n, 784), null);
  }
});

Deno.test("task mix: scales are log-uniform in the range, one per tensor; [1, 1] is no scaling", () => {
  const specs = Array.from({ length: 50 }, (_, i) => sampleTask(keyFromSeed(7), i, MIX, AUG));
  const logs = specs.flatMap((t) => taskScales(t, 8, AUG.scaleRange)).map(Math.log10);
  assert.equal(logs.length, 400);
  assert(logs.every((l) => l >= -3 && l <= 3), "a scale outside [1e-3, 1e3]");
  // Log-uniform: each of the six decades holds about a sixth (400/6 ≈ 67; ±30 is > 5 σ).
  for (let d = -3; d < 3; d++) {
    const n = logs.filter((l) => l >= d && l < d + 1).length;
    assert(Math.abs(n - 400 / 6) < 30, `decade [${d}, ${d + 1}) holds ${n} of 400 scales`);
  }
  // Within a task the tensors get different scales; another seed, other scales.
  const s = taskScales(specs[0], 8, AUG.scaleRange);
  assert.equal(new Set(s).size, 8);
  const other = sampleTask(keyFromSeed(8), 0, MIX, AUG);
  assert.notDeepEqual(taskScales(other, 8, AUG.scaleRange), s);
  assert.deepEqual(taskScales(specs[0], 8, [1, 1]), new Array(8).fill(1));
});

Deno.test("task mix: label and pixel permutations are permutations, reproducible, per task", () => {
  const always = { ...AUG, permuteLabels: 1, permutePixels: 1 };
  const a = sampleTask(keyFromSeed(11), 0, MIX, always);
  const b = sampleTask(keyFromSeed(11), 1, MIX, always);
  const c = sampleTask(keyFromSeed(12), 0, MIX, always);
  const sorted = (p: Int32Array | null) => Array.from(p!).sort((x, y) => x - y);
  const iota = (n: number) => Array.from({ length: n }, (_, i) => i);
  assert.deepEqual(sorted(labelPermutation(a, 10)), iota(10));
  assert.deepEqual(sorted(pixelPermutation(a, 784)), iota(784));
  for (const other of [b, c]) {
    assert.notDeepEqual(pixelPermutation(other, 784), pixelPermutation(a, 784));
  }
  assert.notDeepEqual(labelPermutation(a, 10), iota(10));
});
