/**
 * A comparison: one training run per optimizer, all with the same seed (so the same
 * initialization and data order), one after the other in `<out>/<label>/`, then `report.md` and
 * `report.svg` in `<out>`. A run that diverges is reported as such and the others go on.
 * @module
 */
import { join } from "node:path";
import { writeFileAtomic } from "../run/atomic.ts";
import type { ProgressSink } from "../run/progress.ts";
import { exists } from "./_fs.ts";
import { checkpointDir } from "./checkpoint.ts";
import { readRunLogs } from "./logs.ts";
import {
  buildOptimizer,
  type MetaWeightsSource,
  type OptimizerSpec,
  resolveSettings,
} from "./optimizers.ts";
import type { Problem } from "./problem.ts";
import { reportMarkdown, reportSvg, resultsTable, type RunSummary } from "./report.ts";
import { DivergedError, type RunOptions, trainRun } from "./run.ts";

/** The run settings every run of a comparison shares, as `trainRun` takes them. */
type SharedRunSettings = Pick<
  RunOptions,
  | "seed"
  | "batchSize"
  | "epochs"
  | "steps"
  | "shuffleBuffer"
  | "checkpointEvery"
  | "evalEvery"
  | "evalExamples"
  | "evalBatchSize"
  | "resume"
>;

/** Everything a comparison needs. */
export interface CompareOptions extends SharedRunSettings {
  /** Output directory: the report, and one subdirectory per run. */
  readonly out: string;
  /** The model and the data every optimizer trains on. */
  readonly problem: Omit<Problem, "close">;
  /** The optimizers to compare, each with its settings. */
  readonly optimizers: readonly OptimizerSpec[];
  /** MLHF's meta-weights (required when an optimizer is `mlhf`). */
  readonly meta?: MetaWeightsSource;
  /** For the report: the exact command and the backend line. */
  readonly command: string;
  /** The backend line for the report. */
  readonly backend: string;
  /** Lines added to the report. */
  readonly notes?: readonly string[];
  /** Where the progress lines go (default stderr; null: none). */
  readonly progressSink?: ProgressSink | null;
  /** Messages (divergence, reuse of finished runs); default console.error. */
  readonly log?: (line: string) => void;
}

/** What a comparison produced. */
export interface CompareResult {
  /** The Markdown report's path. */
  readonly reportPath: string;
  /** The SVG plot's path. */
  readonly plotPath: string;
  /** The Markdown results table (also in the report). */
  readonly table: string;
  /** One summary per optimizer, in order. */
  readonly runs: readonly RunSummary[];
  /** The runs that diverged. */
  readonly diverged: readonly DivergedError[];
}

/** Refuses to overwrite a run directory that holds a checkpoint unless resuming. */
const checkFresh = async (o: CompareOptions): Promise<void> => {
  if (o.resume) return;
  for (const spec of o.optimizers) {
    const dir = checkpointDir(join(o.out, spec.label));
    if (await exists(dir)) {
      throw new Error(
        `${join(o.out, spec.label)} already holds a run: pass --resume to continue it, or ` +
          `choose another --out`,
      );
    }
  }
};

/** Runs the comparison and writes its report; see the module doc. */
export const compareOptimizers = async (o: CompareOptions): Promise<CompareResult> => {
  const log = o.log ?? ((line: string) => console.error(line));
  const p = o.problem;
  await checkFresh(o);
  await Deno.mkdir(o.out, { recursive: true });
  const summaries: RunSummary[] = [];
  const diverged: DivergedError[] = [];
  for (const spec of o.optimizers) {
    const dir = join(o.out, spec.label);
    const settings = resolveSettings(spec, { weightDecay: p.weightDecay, meta: o.meta });
    let status = "finished";
    try {
      const r = await trainRun({
        label: spec.label,
        dir,
        model: p.model,
        train: p.train,
        test: p.test,
        optimizer: ({ kinds }) =>
          buildOptimizer(spec, { kinds, weightDecay: p.weightDecay, meta: o.meta, seed: o.seed }),
        seed: o.seed,
        batchSize: o.batchSize,
        epochs: o.epochs,
        steps: o.steps,
        shuffleBuffer: o.shuffleBuffer,
        checkpointEvery: o.checkpointEvery,
        evalEvery: o.evalEvery,
        evalExamples: o.evalExamples,
        evalBatchSize: o.evalBatchSize,
        resume: o.resume,
        identity: {
          model: p.modelName,
          data: p.train.name,
          batchSize: o.batchSize,
          seed: o.seed,
          shuffleBuffer: o.shuffleBuffer ?? 0,
          optimizer: spec.name,
          settings,
          meta: spec.name === "mlhf" ? o.meta?.description ?? null : null,
        },
        examplesPerEpoch: p.examplesPerEpoch,
        progressSink: o.progressSink,
      });
      if (r.reused) log(`${spec.label}: already finished at step ${r.steps}; reusing its logs`);
      if (r.status === "stopped") status = `stopped at step ${r.steps}`;
    } catch (e) {
      if (!(e instanceof DivergedError)) throw e;
      log(`warning: ${e.message}`);
      diverged.push(e);
      status = `diverged at step ${e.step}`;
    }
    const logs = await readRunLogs(dir);
    summaries.push({ label: spec.label, settings, status, ...logs });
  }
  const title = `${p.modelName} on ${
    p.dataset.split(" ")[0]
  }, batch ${o.batchSize}, seed ${o.seed}`;
  const reportPath = join(o.out, "report.md"), plotPath = join(o.out, "report.svg");
  const setup = [
    `Model: ${p.modelName} (${p.model.name})`,
    `Data: ${p.dataset}`,
    `Batch size ${o.batchSize}; ${
      o.steps ? `${o.steps} steps at most, ` : ""
    }${o.epochs} epoch(s); shuffle buffer ${o.shuffleBuffer ?? 0}`,
    `Seed ${o.seed}: every run starts from the same initialization and sees the same batches`,
    ...(o.meta && o.optimizers.some((s) => s.name === "mlhf")
      ? [
        `MLHF: ${o.meta.description}. K defaults to the K of meta-training (spec §9 item 4; ` +
        "the original's validation scripts left K = 2)",
      ]
      : []),
  ];
  const ctx = {
    title: `Optimizer comparison: ${title}`,
    command: o.command,
    backend: o.backend,
    setup,
    weightDecay: p.weightDecay,
    notes: o.notes,
    plotFile: "report.svg",
  };
  await writeFileAtomic(reportPath, reportMarkdown(summaries, ctx));
  await writeFileAtomic(plotPath, reportSvg(summaries, title));
  return { reportPath, plotPath, table: resultsTable(summaries), runs: summaries, diverged };
};
