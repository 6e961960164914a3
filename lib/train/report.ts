/**
 * The comparison report: a Markdown table (final and best training loss, final and best test
 * accuracy, final test loss, median time per step, steps, training time, status) with the setup
 * (command, backend, model, data, seed, weight-decay convention, notes), and an SVG grid of
 * training loss and test accuracy against steps and against training seconds.
 * @module
 */
import { formatMs, formatPercent, formatSig, markdownTable } from "../report/mod.ts";
import { type LinePlotOptions, plotGrid, type Series } from "../report/svg_plot.ts";
import type { EvalRecord, StepRecord } from "./logs.ts";
import { describeSettings, type Settings } from "./optimizers.ts";
import { describeWeightDecay, type WeightDecay } from "./weight_decay.ts";

/** One run as the report sees it. */
export interface RunSummary {
  /** The run's label (the optimizer's). */
  readonly label: string;
  /** The optimizer's settings. */
  readonly settings: Settings;
  /** "finished", or why it is not ("diverged at step 12", "stopped at step 5"). */
  readonly status: string;
  /** The per-step log records. */
  readonly steps: readonly StepRecord[];
  /** The evaluation log records. */
  readonly evals: readonly EvalRecord[];
}

/** The setup shared by every run of a comparison. */
export interface ReportContext {
  /** The report's title. */
  readonly title: string;
  /** The exact command that produced the runs. */
  readonly command: string;
  /** The backend line (`describeChoice`). */
  readonly backend: string;
  /** "key: value" facts (model, data, batch size, seed, …), in order. */
  readonly setup: readonly string[];
  /** The weight-decay convention of the runs. */
  readonly weightDecay: WeightDecay;
  /** Lines added to the report. */
  readonly notes?: readonly string[];
  /** The plot's file name, linked from the report. */
  readonly plotFile?: string;
}

/** The table's numbers for one run (NaN where there is nothing to report). */
export interface RunStats {
  /** Steps taken. */
  readonly steps: number;
  /** The last step's training loss. */
  readonly finalTrainLoss: number;
  /** The lowest training loss of a step. */
  readonly bestTrainLoss: number;
  /** The last evaluation's test accuracy. */
  readonly finalTestAccuracy: number;
  /** The highest test accuracy of an evaluation. */
  readonly bestTestAccuracy: number;
  /** The last evaluation's test loss. */
  readonly finalTestLoss: number;
  /** The median time of a step, in milliseconds. */
  readonly medianStepMs: number;
  /** The total time of the steps, in seconds. */
  readonly trainTimeS: number;
}

const median = (xs: readonly number[]): number => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

const finiteMin = (xs: readonly (number | null)[]) => {
  const f = xs.filter((x): x is number => Number.isFinite(x));
  return f.length ? Math.min(...f) : NaN;
};
const finiteMax = (xs: readonly (number | null)[]) => {
  const f = xs.filter((x): x is number => Number.isFinite(x));
  return f.length ? Math.max(...f) : NaN;
};

/** The statistics of one run from its logs. */
export const runStats = (r: RunSummary): RunStats => {
  const lastEval = r.evals.at(-1), lastStep = r.steps.at(-1);
  return {
    steps: lastStep?.step ?? 0,
    finalTrainLoss: lastEval?.train_loss ?? NaN,
    bestTrainLoss: finiteMin(r.evals.map((e) => e.train_loss)),
    finalTestAccuracy: lastEval?.test_accuracy ?? NaN,
    bestTestAccuracy: finiteMax(r.evals.map((e) => e.test_accuracy)),
    finalTestLoss: lastEval?.test_loss ?? NaN,
    medianStepMs: median(r.steps.map((s) => s.step_ms)),
    trainTimeS: lastStep?.time_s ?? 0,
  };
};

const HEADERS = [
  "optimizer",
  "settings",
  "steps",
  "final train loss",
  "best train loss",
  "final test acc",
  "best test acc",
  "final test loss",
  "median time/step",
  "train time",
  "status",
];

/** The results table alone. */
export const resultsTable = (runs: readonly RunSummary[]): string =>
  markdownTable(
    HEADERS,
    runs.map((r) => {
      const s = runStats(r);
      return [
        r.label,
        describeSettings(r.settings),
        String(s.steps),
        formatSig(s.finalTrainLoss),
        formatSig(s.bestTrainLoss),
        formatPercent(s.finalTestAccuracy, 2),
        formatPercent(s.bestTestAccuracy, 2),
        formatSig(s.finalTestLoss),
        formatMs(s.medianStepMs),
        formatMs(s.trainTimeS * 1000),
        r.status,
      ];
    }),
    ["left", "left", "right", "right", "right", "right", "right", "right", "right", "right"],
  );

/** The whole Markdown report. */
export const reportMarkdown = (runs: readonly RunSummary[], ctx: ReportContext): string =>
  [
    `# ${ctx.title}`,
    "",
    resultsTable(runs).trimEnd(),
    "",
    "Train loss is the mean cross-entropy of the training batches between two evaluations " +
    '(the last such window for "final", the lowest for "best"); test figures are on the full ' +
    "test split in inference mode. Times are training steps only (no evaluation). In " +
    "`evals.csv`, `train_accuracy` is the mean batch accuracy over the same window, not the " +
    "original's streaming accuracy (docs/algorithm.md#streaming-accuracy).",
    "",
    "## Setup",
    "",
    `- Command: \`${ctx.command}\``,
    `- Backend: ${ctx.backend}`,
    ...ctx.setup.map((s) => `- ${s}`),
    `- ${describeWeightDecay(ctx.weightDecay)}`,
    ...(ctx.notes ?? []).map((n) => `- Note: ${n}`),
    "",
    ...(ctx.plotFile ? [`![training curves](${ctx.plotFile})`, ""] : []),
    `Logs: \`<run>/log.jsonl\`, \`<run>/steps.csv\` and \`<run>/evals.csv\` per run (${
      runs.map((r) => `\`${r.label}/\``).join(", ")
    }).`,
    "",
  ].join("\n");

/** At most `max` points: means over consecutive bins of steps. */
export const binSteps = (
  steps: readonly StepRecord[],
  max = 300,
): { step: number; time: number; loss: number }[] => {
  const size = Math.max(1, Math.ceil(steps.length / max));
  const out = [];
  for (let i = 0; i < steps.length; i += size) {
    const bin = steps.slice(i, i + size);
    const last = bin[bin.length - 1];
    const loss = bin.reduce((a, s) => a + s.loss, 0) / bin.length;
    out.push({ step: last.step, time: last.time_s, loss });
  }
  return out;
};

/** The four plots: training loss and test accuracy against steps and against seconds. */
export const reportPlots = (runs: readonly RunSummary[]): LinePlotOptions[] => {
  const lossSeries = (x: "step" | "time"): Series[] =>
    runs.map((r) => ({
      name: r.label,
      points: binSteps(r.steps).map((p) => [p[x], p.loss] as const),
    }));
  const accSeries = (x: "step" | "time_s"): Series[] =>
    runs.map((r) => ({
      name: r.label,
      points: r.evals.map((e) => [e[x], e.test_accuracy] as const),
    }));
  return [
    {
      title: "Training loss vs steps",
      xLabel: "step",
      yLabel: "training loss (CE)",
      logY: true,
      series: lossSeries("step"),
    },
    {
      title: "Training loss vs time",
      xLabel: "training time (s)",
      yLabel: "training loss (CE)",
      logY: true,
      series: lossSeries("time"),
    },
    {
      title: "Test accuracy vs steps",
      xLabel: "step",
      yLabel: "test accuracy",
      series: accSeries("step"),
    },
    {
      title: "Test accuracy vs time",
      xLabel: "training time (s)",
      yLabel: "test accuracy",
      series: accSeries("time_s"),
    },
  ];
};

/** The SVG grid of the four plots. */
export const reportSvg = (runs: readonly RunSummary[], title: string): string =>
  plotGrid(reportPlots(runs), 2, title);
