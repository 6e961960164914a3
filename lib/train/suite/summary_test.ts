/**
 * A task's summary from explicit runs: the target is the tuned Adam's median final loss; each
 * family's row is its tuned point with steps and seconds to that target and its divergences.
 */
import { assert } from "../../../tests/_util/deps.ts";
import { type SuiteRun, summarizeTask } from "./summary.ts";
import { wins } from "./report.ts";

const run = (
  family: string,
  value: number | null,
  seed: number,
  losses: number[],
  status = "finished",
): SuiteRun => ({
  task: "t",
  family,
  value,
  seed,
  label: `${family}-${value}`,
  status,
  curve: losses.map((l, i) => ({
    step: 5 * (i + 1),
    trainLoss: l,
    timeS: 2 * (i + 1),
    testAccuracy: 0.5,
  })),
  losses,
  steps: 5 * losses.length,
  timeS: 2 * losses.length,
});

Deno.test("suite summary: target from tuned Adam, steps and seconds to it per family, divergences", () => {
  const runs = [
    // Adam lr 0.01: finals 0.6, 0.5, 0.7 (median 0.6); lr 0.1 is worse (median 0.8).
    run("adam", 0.01, 1, [1.5, 1.0, 0.6]),
    run("adam", 0.01, 2, [1.4, 0.9, 0.5]),
    run("adam", 0.01, 3, [1.6, 1.1, 0.7]),
    run("adam", 0.1, 1, [1.0, 0.8]),
    run("adam", 0.1, 2, [1.0, 0.8]),
    run("adam", 0.1, 3, [1.0, 0.8]),
    // MLHF (no grid): reaches 0.6 at steps 5, 10 and never.
    run("mlhf", null, 1, [0.6, 0.5, 0.4]),
    run("mlhf", null, 2, [0.9, 0.55, 0.5]),
    run("mlhf", null, 3, [1.0, 0.9, 0.8]),
    // SGD: one seed blows up.
    run("sgd", 1, 1, [0.7, 0.65, 0.62]),
    run("sgd", 1, 2, [2.0, 25, 0.5]),
    run("sgd", 1, 3, [0.7, 0.6, 0.55]),
  ];
  const s = summarizeTask("t", runs, ["sgd", "adam", "mlhf"], "adam");
  assert.equal(s.target, 0.6);
  assert.deepEqual(s.rows.map((r) => r.family), ["sgd", "adam", "mlhf"]);
  const [sgd, adam, mlhf] = s.rows;
  assert.equal(adam.value, 0.01);
  assert.deepEqual(adam.stepsToTarget, [15, 15, Infinity]);
  assert.equal(adam.medianSteps, 15);
  assert.deepEqual(mlhf.stepsToTarget, [5, 10, Infinity]);
  assert.equal(mlhf.medianSteps, 10);
  assert.deepEqual(mlhf.secondsToTarget, [2, 4, Infinity]);
  assert.equal(mlhf.medianSeconds, 4);
  // Seed 2 blew up at step 2: its later recovery does not count.
  assert.deepEqual(sgd.stepsToTarget, [Infinity, Infinity, 10]);
  assert.equal(sgd.medianSteps, Infinity);
  assert.equal(sgd.diverged.length, 1);
  assert.match(sgd.diverged[0], /^blow-up at step 2/);
  assert.equal(adam.gridRuns, 6);
  assert.equal(wins([s], "mlhf", ["sgd", "adam"], "medianSteps"), 1);
  assert.equal(wins([s], "sgd", ["adam", "mlhf"], "medianSteps"), 0);
  assert.equal(wins([s], "adam", ["sgd"], "medianSteps"), 1);
  assert.equal(wins([s], "adam", ["sgd", "mlhf"], "medianSteps"), 0);
});
