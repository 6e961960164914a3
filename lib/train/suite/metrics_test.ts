/**
 * The suite's figures on explicit small curves: divergence (non-finite stop, blow-up), final and
 * best values, the median with misses, reaching a target, the tuned best of a grid (by median,
 * not mean) and the performance ratios.
 */
import { assert } from "../../../tests/_util/deps.ts";
import {
  bestTestAccuracy,
  bestTrainLoss,
  divergence,
  finalTestAccuracy,
  finalTrainLoss,
  median,
  performanceRatios,
  profileAt,
  reachTarget,
  type RunCurve,
  tunedBest,
} from "./metrics.ts";

/** A finished run whose evaluations every 10 steps have these losses (1 s per 10 steps). */
const run = (losses: number[], status = "finished", minibatch?: number[]): RunCurve => ({
  status,
  curve: losses.map((l, i) => ({
    step: 10 * (i + 1),
    trainLoss: l,
    timeS: i + 1,
    testAccuracy: 1 - l / 3,
  })),
  losses: minibatch ?? losses,
});

Deno.test("suite metrics: divergence is a non-finite stop, a non-finite loss or a 10× blow-up", () => {
  assert.equal(divergence(run([2.3, 1.0, 0.5])), null);
  assert.equal(divergence(run([2.3], "diverged at step 12")), "diverged at step 12");
  assert.equal(divergence(run([2.3, NaN])), "non-finite loss at step 2");
  assert.equal(
    divergence(run([2.3, 1], "finished", [2, 19.9, 20.1, 1])),
    "blow-up at step 3 (minibatch loss 20.1 > 10 × the first, 2.00)",
  );
  // Exactly 10× is not a blow-up.
  assert.equal(divergence(run([2, 1], "finished", [2, 20, 1])), null);
});

Deno.test("suite metrics: final and best figures; a diverged run's final loss is +∞", () => {
  const r = run([2.0, 0.5, 0.8]);
  assert.equal(finalTrainLoss(r), 0.8);
  assert.equal(bestTrainLoss(r), 0.5);
  assert.equal(finalTestAccuracy(r), 1 - 0.8 / 3);
  assert.equal(bestTestAccuracy(r), 1 - 0.5 / 3);
  assert.equal(finalTrainLoss(run([2.0, 0.5], "finished", [2, 30])), Infinity);
  assert.equal(finalTrainLoss(run([])), Infinity);
});

Deno.test("suite metrics: median counts misses as +∞", () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([1, Infinity, 2]), 2);
  assert.equal(median([1, Infinity, Infinity]), Infinity);
  assert.equal(median([1, Infinity]), Infinity);
  assert.ok(Number.isNaN(median([])));
});

Deno.test("suite metrics: steps and seconds to target are the first evaluation at or below it", () => {
  const r = run([2.0, 1.2, 0.9, 1.1, 0.7]);
  assert.deepEqual(reachTarget(r, 1.0), { step: 30, timeS: 3 });
  assert.deepEqual(reachTarget(r, 1.2), { step: 20, timeS: 2 });
  assert.deepEqual(reachTarget(r, 0.7), { step: 50, timeS: 5 });
  assert.equal(reachTarget(r, 0.69), null);
  assert.equal(reachTarget(r, NaN), null);
  // A run that reached the target before it diverged keeps its step.
  assert.deepEqual(reachTarget(run([1.5, 0.9], "diverged at step 25"), 1.0), {
    step: 20,
    timeS: 2,
  });
  // A run that blew up (step 2) and recovered does not reach it afterwards.
  assert.equal(reachTarget(run([2, 0.5], "finished", [2, 21, 0.5]), 1.0), null);
});

Deno.test("suite metrics: the tuned best is the lowest median final loss (not the mean), first on a tie", () => {
  const grid = new Map<number | null, RunCurve[]>([
    // mean 0.7, median 1.0
    [0.1, [run([1.0]), run([1.0]), run([0.1])]],
    // mean 0.9, median 0.9: the better median
    [0.3, [run([0.9]), run([0.9]), run([0.9])]],
    // one divergence (+∞) out of three: median 0.95
    [1, [run([0.5]), run([0.95]), run([2.3], "diverged at step 3")]],
  ]);
  const best = tunedBest(grid)!;
  assert.equal(best.value, 0.3);
  assert.equal(best.median, 0.9);
  const tie = tunedBest(new Map([[1, [run([0.5])]], [2, [run([0.5])]]]))!;
  assert.equal(tie.value, 1);
  assert.equal(tunedBest(new Map()), null);
});

Deno.test("suite metrics: performance ratios divide by each task's best; misses stay +∞", () => {
  const r = performanceRatios(
    [{ a: 10, b: 20, c: Infinity }, { a: 30, b: 15, c: 60 }, { a: Infinity, b: Infinity }],
    ["a", "b", "c"],
  );
  assert.deepEqual(r.a, [1, 2, Infinity]);
  assert.deepEqual(r.b, [1, 2, Infinity]);
  assert.deepEqual(r.c, [4, Infinity, Infinity]);
  assert.equal(profileAt(r.a, 1), 1 / 3);
  assert.equal(profileAt(r.c, 4), 1 / 3);
  assert.equal(profileAt(r.c, 3.9), 0);
});
