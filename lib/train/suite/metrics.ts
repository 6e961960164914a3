/**
 * The held-out suite's figures, from a run's logged curve: final and best training loss and test
 * accuracy, divergence, the tuned-best grid point, the target and the steps and seconds to reach
 * it, and the performance profile. Pure functions on plain numbers.
 *
 * Definitions (README "Held-out suite"): the training loss at an evaluation is the mean minibatch
 * loss since the previous evaluation (`evals.csv`'s `train_loss`), so the final training loss is
 * the mean over the last `evalEvery` steps. A run diverged when it stopped on a non-finite value
 * or a minibatch loss exceeded `BLOWUP_FACTOR` × its first one; a diverged run's final loss counts
 * as +∞. The tuned best of a grid is the point with the lowest median (over seeds) final training
 * loss. A task's target is the tuned Adam's median final training loss; a run reaches it at the
 * first evaluation whose training loss is ≤ the target (seconds: training time then, evaluations
 * excluded) and that comes before any divergence; a miss counts as +∞, and a median over seeds is +∞ when half or more missed.
 * @module
 */

/** One evaluation of a run's curve. */
export interface CurvePoint {
  /** Steps taken. */
  readonly step: number;
  /** Mean minibatch loss since the previous evaluation. */
  readonly trainLoss: number;
  /** Training seconds so far (evaluations excluded). */
  readonly timeS: number;
  /** Test accuracy (0–1). */
  readonly testAccuracy: number;
}

/** What the figures need of one run. */
export interface RunCurve {
  /** `finished`, or how it ended (`diverged at step N`, …). */
  readonly status: string;
  /** Evaluations after step 0, in step order. */
  readonly curve: readonly CurvePoint[];
  /** Every logged minibatch loss, in step order. */
  readonly losses: readonly number[];
}

/** A minibatch loss above this many times the first one is a blow-up (divergence). */
export const BLOWUP_FACTOR = 10;

/** Why and at which step the run diverged, or null. */
export const divergenceAt = (
  r: RunCurve,
): { readonly step: number; readonly why: string } | null => {
  const stopped = /^diverged at step (\d+)/.exec(r.status);
  if (stopped) return { step: Number(stopped[1]), why: r.status };
  const bad = r.losses.findIndex((l) => !Number.isFinite(l));
  if (bad >= 0) return { step: bad + 1, why: `non-finite loss at step ${bad + 1}` };
  if (r.losses.length) {
    const limit = BLOWUP_FACTOR * r.losses[0];
    const i = r.losses.findIndex((l) => l > limit);
    if (i >= 0) {
      return {
        step: i + 1,
        why: `blow-up at step ${i + 1} (minibatch loss ${
          r.losses[i].toPrecision(3)
        } > ${BLOWUP_FACTOR} × the first, ${r.losses[0].toPrecision(3)})`,
      };
    }
  }
  if (r.status.startsWith("diverged")) return { step: 0, why: r.status };
  return null;
};

/** Why the run counts as diverged, or null. */
export const divergence = (r: RunCurve): string | null => divergenceAt(r)?.why ?? null;

/** The final training loss; +∞ for a diverged run or one with no evaluation. */
export const finalTrainLoss = (r: RunCurve): number =>
  divergence(r) !== null || !r.curve.length ? Infinity : r.curve.at(-1)!.trainLoss;

/** The lowest training loss of the curve (+∞: none). */
export const bestTrainLoss = (r: RunCurve): number =>
  Math.min(Infinity, ...r.curve.map((p) => p.trainLoss).filter(Number.isFinite));

/** The final test accuracy (NaN: no evaluation). */
export const finalTestAccuracy = (r: RunCurve): number => r.curve.at(-1)?.testAccuracy ?? NaN;

/** The highest test accuracy of the curve (NaN: none). */
export const bestTestAccuracy = (r: RunCurve): number =>
  r.curve.length ? Math.max(...r.curve.map((p) => p.testAccuracy)) : NaN;

/** The median (the mean of the middle two for an even count); +∞ counts as a value; NaN: empty. */
export const median = (xs: readonly number[]): number => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  if (s.length % 2) return s[m];
  return s[m - 1] === Infinity || s[m] === Infinity ? Infinity : (s[m - 1] + s[m]) / 2;
};

/** Where a run first reaches `target`: its step and training seconds, or null (a miss). */
export const reachTarget = (
  r: RunCurve,
  target: number,
): { readonly step: number; readonly timeS: number } | null => {
  if (!Number.isFinite(target)) return null;
  // A diverged run counts only if it reached the target before the step where it diverged.
  const until = divergenceAt(r)?.step ?? Infinity;
  const p = r.curve.find((q) => q.step < until && q.trainLoss <= target);
  if (!p) return null;
  return { step: p.step, timeS: p.timeS };
};

/**
 * The tuned best of a grid: the grid value (in grid order) whose runs (one per seed) have the
 * lowest median final training loss; the first such value on a tie. `runs` maps each value to its
 * runs; a value with no runs is skipped. Null when no value has runs.
 */
export const tunedBest = <R extends RunCurve>(
  runs: ReadonlyMap<number | null, readonly R[]>,
):
  | { readonly value: number | null; readonly runs: readonly R[]; readonly median: number }
  | null => {
  let best: { value: number | null; runs: readonly R[]; median: number } | null = null;
  for (const [value, rs] of runs) {
    if (!rs.length) continue;
    const m = median(rs.map(finalTrainLoss));
    if (best === null || m < best.median) {
      best = { value, runs: rs, median: m };
    }
  }
  return best;
};

/**
 * A performance profile: for each solver, the sorted ratios of its score on each task to the best
 * score on that task (+∞ where it missed, or where no solver scored). `scores[task][solver]`: lower
 * is better, +∞ a miss.
 */
export const performanceRatios = (
  scores: readonly Readonly<Record<string, number>>[],
  solvers: readonly string[],
): Record<string, number[]> => {
  const out: Record<string, number[]> = Object.fromEntries(solvers.map((s) => [s, []]));
  for (const task of scores) {
    const best = Math.min(...solvers.map((s) => task[s] ?? Infinity));
    for (const s of solvers) {
      const v = task[s] ?? Infinity;
      out[s].push(Number.isFinite(best) && Number.isFinite(v) ? v / best : Infinity);
    }
  }
  for (const s of solvers) out[s].sort((a, b) => a - b);
  return out;
};

/** The fraction of tasks whose ratio is ≤ τ, from sorted ratios. */
export const profileAt = (sortedRatios: readonly number[], tau: number): number =>
  sortedRatios.length ? sortedRatios.filter((r) => r <= tau).length / sortedRatios.length : 0;
