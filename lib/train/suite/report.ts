/**
 * The held-out suite's outputs: `report.md` (a summary over tasks and one table per task),
 * `runs.csv` (every run), `summary.csv` (every task × family row) and `profile.svg` (performance
 * profiles of steps and of seconds to the target over all tasks).
 * @module
 */
import {
  formatCompact,
  formatPercent,
  formatSig,
  type LinePlotOptions,
  markdownTable,
  plotGrid,
} from "../../report/mod.ts";
import {
  bestTestAccuracy,
  bestTrainLoss,
  divergence,
  finalTestAccuracy,
  finalTrainLoss,
  median,
  performanceRatios,
  reachTarget,
} from "./metrics.ts";
import type { FamilyRow, SuiteRun, TaskSummary } from "./summary.ts";

/** What the report says besides the figures. */
export interface SuiteReportContext {
  readonly title: string;
  readonly command: string;
  readonly backend: string;
  /** Setup lines (seeds, steps, data, meta-weights…). */
  readonly setup: readonly string[];
  /** Task name → description. */
  readonly tasks: Readonly<Record<string, string>>;
  /** Family name → description (with its grid). */
  readonly families: Readonly<Record<string, string>>;
  /** Families that are MLHF (the rest are baselines in the win count). */
  readonly mlhfFamilies: readonly string[];
  /** The family the wins are counted for. */
  readonly mainFamily: string;
  /** The family that sets the target. */
  readonly targetFamily: string;
}

const spread = (xs: readonly number[], f: (x: number) => string): string => {
  if (!xs.length) return "–";
  const m = median(xs);
  if (xs.length === 1) return f(m);
  return `${f(m)} (${f(Math.min(...xs))}–${f(Math.max(...xs))})`;
};
const loss = (x: number) => (x === Infinity ? "div." : formatSig(x, 4));
const acc = (x: number) => formatPercent(x, 2);
const reached = (xs: readonly number[]) => xs.filter(Number.isFinite).length;
const toTarget = (m: number, xs: readonly number[], f: (x: number) => string) =>
  `${Number.isFinite(m) ? f(m) : "miss"} (${reached(xs)}/${xs.length})`;
const secs = (x: number) => `${formatCompact(x, 3)} s`;

/** The tuned setting as text ("lr=0.003", "–" without a grid). */
const tunedText = (r: FamilyRow, key: string | undefined): string =>
  r.value === null ? "–" : `${key ?? "value"}=${formatCompact(r.value)}`;

/** Counts the tasks where `main` reaches the target strictly sooner than every baseline. */
export const wins = (
  summaries: readonly TaskSummary[],
  main: string,
  baselines: readonly string[],
  by: "medianSteps" | "medianSeconds",
): number =>
  summaries.filter((s) => {
    const m = s.rows.find((r) => r.family === main);
    if (!m || !Number.isFinite(m[by])) return false;
    return s.rows.filter((r) => baselines.includes(r.family)).every((r) => m[by] < r[by]);
  }).length;

/** The Markdown report. `gridKeys`: family → its grid's setting name. */
export const suiteMarkdown = (
  summaries: readonly TaskSummary[],
  ctx: SuiteReportContext,
  gridKeys: Readonly<Record<string, string | undefined>>,
): string => {
  const families = [...new Set(summaries.flatMap((s) => s.rows.map((r) => r.family)))];
  const baselines = families.filter((f) => !ctx.mlhfFamilies.includes(f));
  const overview = markdownTable(
    ["task", "target", ...families],
    summaries.map((s) => [
      s.task,
      formatSig(s.target, 4),
      ...families.map((f) => {
        const r = s.rows.find((q) => q.family === f);
        return r ? toTarget(r.medianSteps, r.stepsToTarget, String) : "–";
      }),
    ]),
    ["left", "right", ...families.map(() => "right" as const)],
  );
  const stepWins = wins(summaries, ctx.mainFamily, baselines, "medianSteps");
  const secondWins = wins(summaries, ctx.mainFamily, baselines, "medianSeconds");
  const divergences = families.map((f) => {
    const rows = summaries.flatMap((s) => s.rows.filter((r) => r.family === f));
    const d = rows.reduce((a, r) => a + r.diverged.length, 0);
    const n = rows.reduce((a, r) => a + r.runs.length, 0);
    const g = rows.reduce((a, r) => a + r.gridDiverged, 0);
    const gn = rows.reduce((a, r) => a + r.gridRuns, 0);
    return `${f} ${d}/${n} (grid ${g}/${gn})`;
  });
  const perTask = summaries.map((s) => {
    const table = markdownTable(
      [
        "family",
        "tuned",
        "final train loss",
        "best train loss",
        "final test acc",
        "best test acc",
        "steps to target",
        "seconds to target",
        "diverged",
        "ms/step",
      ],
      s.rows.map((r) => [
        r.family,
        tunedText(r, gridKeys[r.family]),
        spread(r.finalTrainLoss, loss),
        spread(r.bestTrainLoss, loss),
        spread(r.finalTestAccuracy, acc),
        spread(r.bestTestAccuracy, acc),
        toTarget(r.medianSteps, r.stepsToTarget, String),
        toTarget(r.medianSeconds, r.secondsToTarget, secs),
        `${r.diverged.length}/${r.runs.length} (grid ${r.gridDiverged}/${r.gridRuns})`,
        formatCompact(r.stepMs, 3),
      ]),
      ["left", "left", "right", "right", "right", "right", "right", "right", "right", "right"],
    );
    const why = s.rows.flatMap((r) => r.diverged.map((d) => `- ${r.family}: ${d}`));
    const tuned = s.rows.find((r) => r.family === ctx.targetFamily);
    return [
      `## ${s.task}`,
      "",
      ctx.tasks[s.task] ?? "",
      "",
      `Target: ${formatSig(s.target, 4)}, the median final training loss of ${ctx.targetFamily}` +
      (tuned ? ` at its tuned ${tunedText(tuned, gridKeys[ctx.targetFamily])}` : "") + ".",
      "",
      table,
      ...(why.length ? ["", "Divergences of the tuned points:", "", ...why] : []),
    ].join("\n");
  });
  return [
    `# ${ctx.title}`,
    "",
    `Command: \`${ctx.command}\``,
    "",
    `Backend: ${ctx.backend}`,
    "",
    ...ctx.setup.map((l) => `- ${l}`),
    "",
    "Figures per family are its tuned best grid point (lowest median final training loss over " +
    "seeds), as median (min–max) over seeds. The training loss is the mean minibatch loss since " +
    "the previous evaluation. Target: the tuned Adam's median final training loss; steps and " +
    "seconds to target are the first evaluation at or below it (seconds: training time, " +
    "evaluations excluded), as median over seeds (reached/seeds; miss: half or more missed). A " +
    "run diverged when it stopped on a non-finite value or a minibatch loss exceeded 10× its " +
    "first one.",
    "",
    "## Families",
    "",
    ...Object.entries(ctx.families).map(([f, d]) => `- ${f}: ${d}`),
    "",
    "## Summary",
    "",
    "Median steps to the target (reached/seeds):",
    "",
    overview,
    "",
    `${ctx.mainFamily} reaches the target in fewer steps than every tuned baseline ` +
    `(${baselines.join(", ")}) on ${stepWins} of ${summaries.length} tasks, in fewer seconds on ` +
    `${secondWins} of ${summaries.length}.`,
    "",
    `Divergences (tuned points, and over the whole grid): ${divergences.join("; ")}.`,
    "",
    "![Performance profiles](profile.svg)",
    "",
    ...perTask.flatMap((t) => [t, ""]),
  ].join("\n");
};

const csvCell = (v: string | number | null): string => {
  const s = v === null
    ? ""
    : typeof v === "number"
    ? (Number.isFinite(v) ? String(v) : v > 0 ? "inf" : String(v))
    : v;
  return /[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
};
const csv = (header: readonly string[], rows: readonly (readonly (string | number | null)[])[]) =>
  [header, ...rows].map((r) => r.map(csvCell).join(",")).join("\n") + "\n";

/** Every run: its figures and its steps and seconds to its task's target. */
export const runsCsv = (runs: readonly SuiteRun[], targets: Readonly<Record<string, number>>) =>
  csv(
    [
      "task",
      "family",
      "value",
      "seed",
      "label",
      "status",
      "diverged",
      "steps",
      "time_s",
      "final_train_loss",
      "best_train_loss",
      "final_test_accuracy",
      "best_test_accuracy",
      "steps_to_target",
      "seconds_to_target",
    ],
    runs.map((r) => {
      const reach = reachTarget(r, targets[r.task] ?? NaN);
      return [
        r.task,
        r.family,
        r.value,
        r.seed,
        r.label,
        r.status,
        divergence(r) ?? "",
        r.steps,
        r.timeS,
        finalTrainLoss(r),
        bestTrainLoss(r),
        finalTestAccuracy(r),
        bestTestAccuracy(r),
        reach?.step ?? null,
        reach?.timeS ?? null,
      ];
    }),
  );

/** Every task × family row (tuned point, medians). */
export const summaryCsv = (summaries: readonly TaskSummary[]) =>
  csv(
    [
      "task",
      "target",
      "family",
      "tuned_value",
      "seeds",
      "median_final_train_loss",
      "median_best_train_loss",
      "median_final_test_accuracy",
      "median_best_test_accuracy",
      "median_steps_to_target",
      "median_seconds_to_target",
      "reached",
      "diverged",
      "grid_diverged",
      "grid_runs",
      "ms_per_step",
    ],
    summaries.flatMap((s) =>
      s.rows.map((r) => [
        s.task,
        s.target,
        r.family,
        r.value,
        r.runs.length,
        median(r.finalTrainLoss),
        median(r.bestTrainLoss),
        median(r.finalTestAccuracy),
        median(r.bestTestAccuracy),
        r.medianSteps,
        r.medianSeconds,
        reached(r.stepsToTarget),
        r.diverged.length,
        r.gridDiverged,
        r.gridRuns,
        r.stepMs,
      ])
    ),
  );

/**
 * Performance-profile curves: for each family, the fraction of tasks (y) whose median steps (or
 * seconds) to target is within a factor 2^x of the best family's on that task. Misses never count.
 */
export const profilePlot = (
  summaries: readonly TaskSummary[],
  by: "medianSteps" | "medianSeconds",
  title: string,
): LinePlotOptions => {
  const families = [...new Set(summaries.flatMap((s) => s.rows.map((r) => r.family)))];
  const scores = summaries.map((s) => Object.fromEntries(s.rows.map((r) => [r.family, r[by]])));
  const ratios = performanceRatios(scores, families);
  const finite = Object.values(ratios).flat().filter(Number.isFinite);
  const xMax = Math.max(1, Math.ceil(Math.log2(Math.max(1, ...finite)) + 0.5));
  const n = summaries.length || 1;
  const series = families.map((f) => {
    const pts: [number, number][] = [[0, 0]];
    let y = 0;
    for (const r of ratios[f].filter(Number.isFinite)) {
      const x = Math.log2(r);
      pts.push([x, y]);
      y += 1 / n;
      pts.push([x, y]);
    }
    pts.push([xMax, y]);
    return { name: f, points: pts };
  });
  return {
    title,
    xLabel: "log₂ τ (÷ the best family's, per task)",
    yLabel: "fraction of tasks within τ",
    series,
    xDomain: [0, xMax],
    yDomain: [0, 1],
  };
};

/** The summary figure: profiles of steps and of seconds to the target. */
export const profileSvg = (summaries: readonly TaskSummary[], title: string): string =>
  plotGrid(
    [
      profilePlot(summaries, "medianSteps", "Steps to target"),
      profilePlot(summaries, "medianSeconds", "Seconds to target"),
    ],
    2,
    title,
  );
