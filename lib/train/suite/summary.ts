/**
 * The held-out suite's per-task summary: each family's tuned best grid point, the target (tuned
 * Adam's median final training loss), and per family the figures over seeds, steps and seconds to
 * the target and the divergences (definitions in `metrics.ts`). Pure.
 * @module
 */
import {
  bestTestAccuracy,
  bestTrainLoss,
  divergence,
  finalTestAccuracy,
  finalTrainLoss,
  median,
  reachTarget,
  type RunCurve,
  tunedBest,
} from "./metrics.ts";

/** One run of the suite with its curve. */
export interface SuiteRun extends RunCurve {
  /** The task's name. */
  readonly task: string;
  /** The family's name. */
  readonly family: string;
  /** The grid value (null: the family has no grid). */
  readonly value: number | null;
  /** The seed. */
  readonly seed: number;
  /** The run's label (its folder). */
  readonly label: string;
  /** Steps taken. */
  readonly steps: number;
  /** Training seconds (evaluations excluded). */
  readonly timeS: number;
}

/** A family's row of a task: its tuned best grid point's runs and their figures. */
export interface FamilyRow {
  readonly family: string;
  /** The tuned grid value (null: no grid). */
  readonly value: number | null;
  /** The tuned point's runs, one per seed, by seed. */
  readonly runs: readonly SuiteRun[];
  readonly finalTrainLoss: readonly number[];
  readonly bestTrainLoss: readonly number[];
  readonly finalTestAccuracy: readonly number[];
  readonly bestTestAccuracy: readonly number[];
  /** Per run: steps to the target (+∞: missed). */
  readonly stepsToTarget: readonly number[];
  /** Per run: training seconds to the target (+∞: missed). */
  readonly secondsToTarget: readonly number[];
  /** Median over seeds of `stepsToTarget` (+∞ when half or more missed). */
  readonly medianSteps: number;
  /** Median over seeds of `secondsToTarget`. */
  readonly medianSeconds: number;
  /** Why each diverged run of the tuned point diverged. */
  readonly diverged: readonly string[];
  /** Diverged runs over the whole grid, and the grid's runs. */
  readonly gridDiverged: number;
  readonly gridRuns: number;
  /** Mean step time over the tuned point's runs (ms). */
  readonly stepMs: number;
}

/** One task's summary. */
export interface TaskSummary {
  readonly task: string;
  /** Tuned Adam's median final training loss (+∞ when every Adam run diverged; NaN: no Adam). */
  readonly target: number;
  /** The target family's tuned value. */
  readonly rows: readonly FamilyRow[];
}

/** The task's summary from its runs; `families` gives the row order, `targetFamily` the target. */
export const summarizeTask = (
  task: string,
  runs: readonly SuiteRun[],
  families: readonly string[],
  targetFamily: string,
): TaskSummary => {
  const mine = runs.filter((r) => r.task === task);
  const tuned = new Map<string, { value: number | null; runs: readonly SuiteRun[] }>();
  const grids = new Map<string, SuiteRun[]>();
  for (const f of families) {
    const fr = mine.filter((r) => r.family === f);
    if (!fr.length) continue;
    grids.set(f, fr);
    const byValue = new Map<number | null, SuiteRun[]>();
    for (const r of fr) byValue.set(r.value, [...(byValue.get(r.value) ?? []), r]);
    const best = tunedBest(byValue);
    if (best) {
      tuned.set(f, {
        value: best.value,
        runs: [...best.runs].sort((a, b) => a.seed - b.seed),
      });
    }
  }
  const t = tuned.get(targetFamily);
  const target = t ? median(t.runs.map(finalTrainLoss)) : NaN;
  const rows = families.filter((f) => tuned.has(f)).map((f): FamilyRow => {
    const { value, runs: rs } = tuned.get(f)!;
    const reach = rs.map((r) => reachTarget(r, target));
    const steps = reach.map((x) => x?.step ?? Infinity);
    const seconds = reach.map((x) => x?.timeS ?? Infinity);
    const grid = grids.get(f)!;
    return {
      family: f,
      value,
      runs: rs,
      finalTrainLoss: rs.map(finalTrainLoss),
      bestTrainLoss: rs.map(bestTrainLoss),
      finalTestAccuracy: rs.map(finalTestAccuracy),
      bestTestAccuracy: rs.map(bestTestAccuracy),
      stepsToTarget: steps,
      secondsToTarget: seconds,
      medianSteps: median(steps),
      medianSeconds: median(seconds),
      diverged: rs.map(divergence).filter((d): d is string => d !== null),
      gridDiverged: grid.filter((r) => divergence(r) !== null).length,
      gridRuns: grid.length,
      stepMs: rs.reduce((a, r) => a + (r.steps ? (1000 * r.timeS) / r.steps : 0), 0) / rs.length,
    };
  });
  return { task, target, rows };
};
