/**
 * A comparison: one training run per optimizer, all with the same seed (so the same
 * initialization and data order), one after the other in `<out>/<label>/`, then `report.md` and
 * `report.svg` in `<out>`. A run that diverges is reported as such and the others go on.
 *
 * Nothing is lost: the report covers every run in `<out>` that has a checkpoint or an outcome
 * (`outcome.ts`: how an ended run ended, so a resumed comparison reuses it from its logs once its
 * checkpoint was removed), also those an earlier command left there with other optimizers (a
 * folder is one comparison: a run there of another model, data, batch size, seed or shuffle buffer
 * is refused before anything runs, so no report mixes incomparable runs). A batch larger than the
 * training split is refused up front (`batchTooLarge`), and `resume` needs an existing `out`.
 * @module
 */
import { join } from "node:path";
import { FlagError } from "../cli/flags.ts";
import { writeFileAtomic } from "../run/atomic.ts";
import type { ProgressSink } from "../run/progress.ts";
import { exists } from "../run/files.ts";
import { TooFewExamplesError } from "../data/errors.ts";
import { batchTooLarge } from "./batch_fit.ts";
import { checkpointDir, readRunRecord, type RunRecord } from "./checkpoint.ts";
import { readRunLogs } from "./logs.ts";
import { readRunOutcome, reusableOutcome, type RunOutcome, writeRunOutcome } from "./outcome.ts";
import {
  buildOptimizer,
  type MetaWeightsSource,
  type OptimizerSpec,
  resolveSettings,
  type Settings,
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
  | "distributed"
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

/** Refuses (a `FlagError`) to overwrite a run directory that holds a checkpoint unless resuming. */
const checkFresh = async (o: CompareOptions): Promise<void> => {
  if (o.resume) return;
  for (const spec of o.optimizers) {
    const dir = join(o.out, spec.label);
    if ((await exists(checkpointDir(dir))) || (await readRunOutcome(dir))) {
      throw new FlagError(
        `--out: ${dir} already holds a run: pass --resume to continue it, ` +
          `or choose another --out`,
      );
    }
  }
};

/** The identity fields that every run of one folder (one report) shares. */
const sharedIdentity = (o: CompareOptions) => ({
  model: o.problem.modelName,
  data: o.problem.train.name,
  batchSize: o.batchSize,
  seed: o.seed,
  shuffleBuffer: o.shuffleBuffer ?? 0,
});

/** What an outcome says about its run, as a checkpoint's record says it (null: no outcome). */
const outcomeRecord = (o: RunOutcome | null): RunRecord | null =>
  o && { identity: o.identity, step: o.step, finished: o.status === "finished" };

/** A run's identity, as its checkpoint and outcome hold it (JSON, so absent fields drop out). */
const runIdentity = (
  o: CompareOptions,
  spec: OptimizerSpec,
  settings: Settings,
): Record<string, unknown> =>
  JSON.parse(JSON.stringify({
    ...sharedIdentity(o),
    optimizer: spec.name,
    settings,
    meta: spec.name === "mlhf" ? o.meta?.description ?? null : null,
  }));

/** A run an earlier command left in `out` that this comparison does not run. */
interface EarlierRun {
  readonly label: string;
  readonly dir: string;
  readonly record: RunRecord;
  /** How it stands, for the report: finished, diverged at step N or unfinished. */
  readonly status: string;
}

/**
 * An earlier run's status: its outcome's where it has one that no later checkpoint supersedes (a
 * run that ended; a diverged one may keep the checkpoint from before it diverged), else its
 * checkpoint's.
 */
const earlierStatus = (checkpoint: RunRecord | null, outcome: RunOutcome | null): string => {
  if (outcome && (!checkpoint || checkpoint.step <= outcome.step)) {
    return outcome.status === "finished" ? "finished" : `diverged at step ${outcome.step}`;
  }
  return checkpoint?.finished ? "finished" : `unfinished (checkpoint at step ${checkpoint?.step})`;
};

/**
 * The runs with a checkpoint in `out` besides this comparison's, by label; throws (before
 * anything runs) for one that does not share this comparison's model, data, batch and seed.
 */
const earlierRuns = async (o: CompareOptions): Promise<EarlierRun[]> => {
  if (!(await exists(o.out))) return [];
  const mine = new Set(o.optimizers.map((s) => s.label));
  const labels: string[] = [];
  for await (const e of Deno.readDir(o.out)) {
    if (e.isDirectory && !mine.has(e.name)) labels.push(e.name);
  }
  const shared = Object.entries(sharedIdentity(o));
  const found: EarlierRun[] = [];
  for (const label of labels.sort()) {
    const dir = join(o.out, label);
    const checkpoint = await readRunRecord(dir), outcome = await readRunOutcome(dir);
    const record = checkpoint ?? outcomeRecord(outcome);
    if (!record) continue;
    const differ = shared
      .filter(([k, v]) => JSON.stringify(record.identity[k]) !== JSON.stringify(v))
      .map(([k, v]) =>
        `${k}: ${JSON.stringify(record.identity[k])} there, ${JSON.stringify(v)} now`
      );
    if (differ.length) {
      throw new Error(
        `${dir} holds a run of another comparison (${differ.join("; ")}); the report of ` +
          `${o.out} covers all its runs, so choose another --out`,
      );
    }
    found.push({ label, dir, record, status: earlierStatus(checkpoint, outcome) });
  }
  return found;
};

/** Runs the comparison and writes its report; see the module doc. */
export const compareOptimizers = async (o: CompareOptions): Promise<CompareResult> => {
  const log = o.log ?? ((line: string) => console.error(line));
  const p = o.problem;
  const tooLarge = (examples: number) =>
    p.trainSplit
      ? batchTooLarge(o.batchSize, { ...p.trainSplit, examples })
      : new TooFewExamplesError(p.train.name, examples, o.batchSize);
  if (p.examplesPerEpoch !== undefined && p.examplesPerEpoch < o.batchSize) {
    throw tooLarge(p.examplesPerEpoch);
  }
  // Data-parallel ranks other than 0 only train: rank 0 checks the folder, writes and reports.
  const writes = !o.distributed || o.distributed.comm.rank === 0;
  if (writes && o.resume && !(await exists(o.out))) {
    throw new FlagError(`--resume: --out ${o.out} does not exist (no runs to resume there)`);
  }
  if (writes) await checkFresh(o);
  const earlier = writes ? await earlierRuns(o) : [];
  if (writes) await Deno.mkdir(o.out, { recursive: true });
  const summaries: RunSummary[] = [];
  const diverged: DivergedError[] = [];
  for (const spec of o.optimizers) {
    const dir = join(o.out, spec.label);
    const settings = resolveSettings(spec, { weightDecay: p.weightDecay, meta: o.meta });
    const identity = runIdentity(o, spec, settings);
    // An ended run whose checkpoint is gone is reused from its outcome and logs. With its
    // checkpoint, trainRun resumes (or reuses, or refuses) it from that; data-parallel runs always
    // go through trainRun, where every rank resumes together from rank 0's checkpoint.
    const ended = o.resume && !o.distributed && !(await exists(checkpointDir(dir)))
      ? await reusableOutcome(dir, identity, o.steps ?? 0)
      : null;
    if (ended) {
      const finished = ended.status === "finished";
      log(
        finished
          ? `${spec.label}: already finished at step ${ended.step}; reusing its logs`
          : `${spec.label}: diverged at step ${ended.step} before; reusing its logs`,
      );
      if (!finished) {
        const message = ended.message ?? `${spec.label}: step ${ended.step}: diverged`;
        diverged.push(new DivergedError(ended.step, null, message));
      }
      summaries.push({
        label: spec.label,
        settings,
        status: finished ? "finished" : `diverged at step ${ended.step}`,
        ...await readRunLogs(dir),
      });
      continue;
    }
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
        identity,
        examplesPerEpoch: p.examplesPerEpoch,
        progressSink: o.progressSink,
        distributed: o.distributed,
      });
      if (r.reused) log(`${spec.label}: already finished at step ${r.steps}; reusing its logs`);
      if (r.status === "stopped") status = `stopped at step ${r.steps}`;
      else if (writes) {
        await writeRunOutcome(dir, { identity, status: "finished", step: r.steps });
      }
    } catch (e) {
      if (e instanceof TooFewExamplesError) throw tooLarge(e.examples);
      if (!(e instanceof DivergedError)) throw e;
      log(`warning: ${e.message}`);
      diverged.push(e);
      status = `diverged at step ${e.step}`;
      if (writes) {
        await writeRunOutcome(dir, {
          identity,
          status: "diverged",
          step: e.step,
          message: e.message,
        });
      }
    }
    if (writes) summaries.push({ label: spec.label, settings, status, ...await readRunLogs(dir) });
  }
  if (!writes) return { reportPath: "", plotPath: "", table: "", runs: [], diverged };
  for (const r of earlier) {
    const settings = (r.record.identity.settings ?? {}) as Settings;
    summaries.push({ label: r.label, settings, status: r.status, ...await readRunLogs(r.dir) });
  }
  const notes = [
    ...(o.notes ?? []),
    ...(earlier.length
      ? [
        `Also in this folder from earlier commands (same model, data, batch size, seed and ` +
        `shuffle buffer): ${earlier.map((r) => r.label).join(", ")}.`,
      ]
      : []),
  ];
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
        `MLHF: ${o.meta.description}. K defaults to the K of meta-training ` +
        "(docs/algorithm.md#k-at-evaluation; the original's validation scripts left K = 2)",
      ]
      : []),
  ];
  const ctx = {
    title: `Optimizer comparison: ${title}`,
    command: o.command,
    backend: o.backend,
    setup,
    weightDecay: p.weightDecay,
    notes,
    plotFile: "report.svg",
  };
  await writeFileAtomic(reportPath, reportMarkdown(summaries, ctx));
  await writeFileAtomic(plotPath, reportSvg(summaries, title));
  return { reportPath, plotPath, table: resultsTable(summaries), runs: summaries, diverged };
};
