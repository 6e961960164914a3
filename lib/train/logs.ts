/**
 * A training run's logs, in its directory: `log.jsonl` (every record, with `kind`), `steps.csv`
 * (one row per step: CE loss, batch accuracy, learning rate, step time, cumulative training time)
 * and `evals.csv` (one row per evaluation: training loss and accuracy averaged over the steps since
 * the previous evaluation, test loss and accuracy). All three are resumable: reopened with
 * `truncateAfterStep`, they drop what a killed run logged after its last checkpoint.
 * @module
 */
import { join } from "node:path";
import { openCsv, openJsonl, readJsonl, type RecordLogger } from "../run/logger.ts";

/**
 * One training step. `loss` is the cross-entropy on the batch before the update. The optimizer's
 * diagnostics, if it has any (MLHF's safeguard: `rejected`, `mu`, `rho`, `trust_scale`), follow as
 * extra columns.
 */
export interface StepRecord {
  readonly step: number;
  /** 0-based epoch the batch came from. */
  readonly epoch: number;
  readonly loss: number;
  readonly accuracy: number;
  readonly lr: number;
  /** Wall time of the step (update, batch-norm statistics, no data loading). */
  readonly step_ms: number;
  /** Cumulative training time in seconds (steps only: no evaluation or checkpoints). */
  readonly time_s: number;
}

/** One evaluation, after `step` steps. */
export interface EvalRecord {
  readonly step: number;
  readonly epoch: number;
  /** True when the evaluation closes an epoch. */
  readonly epoch_end: boolean;
  /** Mean CE and accuracy of the training batches since the previous evaluation (null at 0). */
  readonly train_loss: number | null;
  readonly train_accuracy: number | null;
  readonly test_loss: number;
  readonly test_accuracy: number;
  readonly test_examples: number;
  readonly time_s: number;
  readonly eval_ms: number;
}

/** The open logs of a run. */
export interface RunLogs {
  step(r: StepRecord): void;
  eval(r: EvalRecord): void;
  close(): void;
}

/** The files of a run's logs. */
export const logPaths = (dir: string) => ({
  jsonl: join(dir, "log.jsonl"),
  steps: join(dir, "steps.csv"),
  evals: join(dir, "evals.csv"),
});

/** Opens (or, resuming from step N, reopens and cuts after N) the logs of a run. */
export const openRunLogs = async (
  dir: string,
  { resumeStep }: { readonly resumeStep?: number } = {},
): Promise<RunLogs> => {
  const p = logPaths(dir);
  const opts = resumeStep === undefined ? { overwrite: true } : { truncateAfterStep: resumeStep };
  const files: RecordLogger[] = [];
  try {
    for (const path of [p.jsonl, p.steps, p.evals]) {
      files.push(path.endsWith(".jsonl") ? await openJsonl(path, opts) : await openCsv(path, opts));
    }
  } catch (e) {
    files.forEach((f) => f.close());
    throw e;
  }
  const [jsonl, steps, evals] = files;
  return {
    step: (r) => {
      jsonl.log({ kind: "step", ...r });
      steps.log(r as unknown as Record<string, unknown>);
    },
    eval: (r) => {
      jsonl.log({ kind: "eval", ...r });
      evals.log(r as unknown as Record<string, unknown>);
    },
    close: () => files.forEach((f) => f.close()),
  };
};

/** The records of a run's `log.jsonl`, split by kind. */
export const readRunLogs = async (
  dir: string,
): Promise<{ steps: StepRecord[]; evals: EvalRecord[] }> => {
  const records = await readJsonl(logPaths(dir).jsonl);
  const strip = <T>(r: Record<string, unknown>): T => {
    const { kind: _kind, ...rest } = r;
    return rest as T;
  };
  return {
    steps: records.filter((r) => r.kind === "step").map((r) => strip<StepRecord>(r)),
    evals: records.filter((r) => r.kind === "eval").map((r) => strip<EvalRecord>(r)),
  };
};
