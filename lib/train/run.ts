/**
 * One training run: initialize the model from the seed, stream the training data (order from the
 * same seed), take optimizer steps, update batch-norm moving statistics, log every step, evaluate
 * at each epoch's end (and every `evalEvery` steps, and at the end), and checkpoint every
 * `checkpointEvery` steps and at the end. A resumed run continues from its checkpoint to the same
 * result. A non-finite loss stops the run (`DivergedError`) without touching the last checkpoint;
 * so does a non-finite parameter, optimizer state or batch-norm statistic, at the step where it
 * appears (one device-side flag read with the step's loss), naming the tensor.
 * @module
 */
import { tf } from "../_deps.ts";
import { batches, type BatchStream } from "../data/pipeline.ts";
import { disposeBatch, oneHot } from "../data/batch.ts";
import type { Source } from "../data/source.ts";
import { disposeState, stateTensors } from "../optim/base.ts";
import { describeNonFinite } from "../optim/finite.ts";
import { foldIn, keyFromSeed } from "../prng.ts";
import { progress as startProgress, type ProgressSink } from "../run/progress.ts";
import { leaves, type Params } from "../tree.ts";
import type { ParamKind } from "../param_kinds.ts";
import { kindLeaves, updateMovingStats } from "../../models/mod.ts";
import { softmaxCrossEntropy } from "../../ops/losses.ts";
import { assertIdentical } from "../distributed/consistency.ts";
import { type DataParallel, dataParallelStep } from "../distributed/data_parallel.ts";
import { allreduceMeanNumber, allreduceMeanTree } from "../distributed/reduce.ts";
import {
  CHECKPOINT_NAME,
  checkpointDir,
  loadRunState,
  type RunState,
  saveRunState,
} from "./checkpoint.ts";
import { checkpointPath } from "../run/checkpoint.ts";
import { bcastBytes } from "../distributed/communicator.ts";
import { evaluate } from "./evaluate.ts";
import { openRunLogs, type RunLogs } from "./logs.ts";
import type { AnyModel } from "./models.ts";
import type { BuiltOptimizer } from "./optimizers.ts";
import { trainStep } from "./step.ts";

/** The loss became NaN or ±∞ (or the parameters did): the run stopped at `step`. */
export class DivergedError extends Error {
  /** The error's name (`DivergedError`). */
  override name = "DivergedError";
  /** A divergence at `step`; `checkpointStep` is the last checkpoint's step (null: none). */
  constructor(
    readonly step: number,
    readonly checkpointStep: number | null,
    message: string,
  ) {
    super(message);
  }
}

/** What one run needs. */
export interface RunOptions {
  /** The run's name in logs and reports. */
  readonly label: string;
  /** The run's directory (logs and checkpoint). */
  readonly dir: string;
  /** The model. */
  readonly model: AnyModel;
  /** The training data. */
  readonly train: Source<unknown>;
  /** The test data. */
  readonly test: Source<unknown>;
  /** Builds the optimizer once the parameters and their kinds exist. */
  readonly optimizer: (init: { params: Params; kinds: ParamKind[] }) => BuiltOptimizer;
  /** Seed of the initialization, data order and noise. */
  readonly seed: number;
  /** Examples per step. */
  readonly batchSize: number;
  /** Passes over the training data (Infinity: until `steps`). */
  readonly epochs: number;
  /** Stop after this many steps (0 or absent: no cap). */
  readonly steps?: number;
  /** Examples in the shuffle buffer (0, 1 or absent: storage order). */
  readonly shuffleBuffer?: number;
  /** Checkpoint every this many steps (0: only at the end). */
  readonly checkpointEvery?: number;
  /** Evaluate every this many steps besides epoch ends and the end (0: no). */
  readonly evalEvery?: number;
  /** Test examples per evaluation (0 or absent: all). */
  readonly evalExamples?: number;
  /** Examples per evaluation forward pass. */
  readonly evalBatchSize?: number;
  /** Continue from the run's checkpoint if it has one. */
  readonly resume?: boolean;
  /** The settings a checkpoint must match to be resumed (model, data, seed, optimizer…). */
  readonly identity: Readonly<Record<string, unknown>>;
  /** Training examples per epoch, if known (for the progress bar's total). */
  readonly examplesPerEpoch?: number;
  /** Where the progress line goes (default stderr; null: none). */
  readonly progressSink?: ProgressSink | null;
  /** Called after each step's logs, evaluation and checkpoint; true stops the run there. */
  readonly afterStep?: (step: number) => boolean | void;
  /**
   * Data parallelism over MPI ranks (lib/distributed): each rank steps on its shard of every batch
   * with the loss, gradient and G·v averaged over the ranks; only rank 0 writes logs and
   * checkpoints and evaluates; every rank resumes from rank 0's checkpoint, which rank 0 sends.
   */
  readonly distributed?: DataParallel;
}

/** How a run ended. */
export interface RunResult {
  /** The run's name. */
  readonly label: string;
  /** The run's directory. */
  readonly dir: string;
  /** `finished`: the run reached its end; `stopped`: `afterStep` stopped it. */
  readonly status: "finished" | "stopped";
  /** Steps taken in all. */
  readonly steps: number;
  /** The step of the last checkpoint. */
  readonly checkpointStep: number | null;
  /** Every setting the optimizer was built with. */
  readonly settings: BuiltOptimizer["settings"];
  /** The run had already finished: its checkpoint was reused. */
  readonly reused: boolean;
}

interface Live {
  params: Params;
  optimizer: unknown;
  batchNorm: Params;
}

const disposeLive = (l: Live): void => {
  disposeState(l.optimizer);
  tf.dispose(leaves(l.params));
  tf.dispose(leaves(l.batchNorm));
};

/** One step on a batch: the new live state, the CE loss and batch accuracy. */
const stepOn = async (
  o: RunOptions,
  opt: BuiltOptimizer,
  live: Live,
  global: { x: tf.Tensor; y: tf.Tensor1D },
  step: number,
): Promise<
  { loss: number; accuracy: number; finite: boolean; diagnostics: Record<string, number> }
> => {
  const dp = o.distributed ? dataParallelStep(o.distributed) : null;
  const [x, labels] = dp ? dp.shard([global.x, global.y]) : [global.x, global.y];
  const y = oneHot(labels as tf.Tensor1D, o.model.numClasses);
  try {
    const r = await trainStep({
      model: o.model.apply,
      lossFn: dp ? dp.loss(softmaxCrossEntropy) : softmaxCrossEntropy,
      optimizer: opt.transform,
      params: live.params,
      state: live.optimizer,
      batch: { x, y },
      key: foldIn(foldIn(keyFromSeed(o.seed), 2), step),
      checkFinite: true,
      ...(dp ? { curvature: dp.curvature } : {}),
    });
    live.params = r.params;
    live.optimizer = r.state;
    const stats = leaves(live.batchNorm).length ? r.aux as unknown as Params : null;
    // Data-parallel: each rank normalized by its shard's statistics; the moving averages take
    // their mean over the ranks, so the ranks' statistics stay identical.
    const bnStats = stats && o.distributed ? allreduceMeanTree(stats, o.distributed.comm) : stats;
    if (bnStats) {
      const next = updateMovingStats(live.batchNorm, bnStats);
      tf.dispose(leaves(live.batchNorm));
      live.batchNorm = next;
    }
    if (bnStats && bnStats !== stats) tf.dispose(leaves(bnStats));
    tf.dispose(r.aux);
    const accuracy = o.distributed
      ? allreduceMeanNumber(r.accuracy, o.distributed.comm)
      : r.accuracy;
    return { loss: r.loss, accuracy, finite: r.finite, diagnostics: r.diagnostics };
  } finally {
    y.dispose();
    if (dp) tf.dispose([x, labels]);
  }
};

/**
 * Rank 0's checkpoint on every rank: rank 0 loads it from `dir` and sends its file, which the other
 * ranks load from a temporary folder (they need not share rank 0's file system).
 */
const loadRankZeroState = async (
  dir: string,
  identity: string,
  dp: DataParallel,
): Promise<RunState | null> => {
  const file = checkpointPath(checkpointDir(dir), CHECKPOINT_NAME);
  if (dp.comm.rank === 0) {
    const bytes = await Deno.readFile(file).catch(() => null);
    bcastBytes(bytes, dp.comm);
    return await loadRunState(dir, identity);
  }
  const bytes = bcastBytes(null, dp.comm);
  if (bytes === null) return null;
  const tmp = await Deno.makeTempDir({ prefix: "mlhf-rank-" });
  try {
    await Deno.mkdir(checkpointDir(tmp));
    await Deno.writeFile(checkpointPath(checkpointDir(tmp), CHECKPOINT_NAME), bytes);
    return await loadRunState(tmp, identity);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
};

/** Logs that write nothing (data-parallel ranks other than 0). */
const NO_LOGS: RunLogs = { step: () => {}, eval: () => {}, close: () => {} };

const EMPTY_WINDOW = { lossSum: 0, accuracySum: 0, count: 0 };

/** x rounded to `digits` decimals (log readability; never used in computation). */
const round = (x: number, digits: number): number => Number(x.toFixed(digits));

/** Runs (or resumes) one training run; see the module doc. */
export const trainRun = async (o: RunOptions): Promise<RunResult> => {
  const dp = o.distributed;
  const writes = !dp || dp.comm.rank === 0;
  if (writes) await Deno.mkdir(o.dir, { recursive: true });
  const identity = JSON.stringify(o.identity);
  const init = o.model.init(foldIn(keyFromSeed(o.seed), 1), o.train.shape);
  const kinds = kindLeaves(init.kinds as never) as ParamKind[];
  const opt = o.optimizer({ params: init.params, kinds });
  const live: Live = { params: init.params, optimizer: null, batchNorm: init.state };
  let stream: BatchStream | null = null;
  let logs: RunLogs | null = null;
  let pending: { x: tf.Tensor4D; y: tf.Tensor1D } | null = null;
  try {
    let resumed: RunState | null = null;
    if (o.resume) {
      resumed = dp && dp.comm.size > 1
        ? await loadRankZeroState(o.dir, identity, dp)
        : await loadRunState(o.dir, identity);
    }
    if (resumed) {
      tf.dispose(leaves(live.params));
      tf.dispose(leaves(live.batchNorm));
      live.params = resumed.params;
      live.optimizer = resumed.optimizer;
      live.batchNorm = resumed.batchNorm;
    } else live.optimizer = opt.transform.init(live.params);
    let step = resumed?.step ?? 0;
    let timeS = resumed?.timeS ?? 0;
    let window = resumed?.window ?? EMPTY_WINDOW;
    let checkpointStep: number | null = resumed ? step : null;
    const cap = o.steps && o.steps > 0 ? o.steps : Infinity;
    const base = { label: o.label, dir: o.dir, settings: opt.settings };
    if (resumed?.finished && step >= cap) {
      return { ...base, status: "finished", steps: step, checkpointStep, reused: true };
    }
    const firstStep = step;
    const checkIdentical = (when: string) =>
      dp && assertIdentical(
        [...leaves(live.params), ...stateTensors(live.optimizer), ...leaves(live.batchNorm)],
        dp.comm,
        `${o.label}: parameters, optimizer state and batch-norm statistics ${when}`,
      );
    checkIdentical(resumed ? `resumed at step ${step}` : "at the start");
    const runLogs = writes
      ? await openRunLogs(o.dir, resumed ? { resumeStep: step } : {})
      : NO_LOGS;
    logs = runLogs;
    stream = batches(o.train, {
      batchSize: o.batchSize,
      seed: o.seed,
      shuffleBuffer: o.shuffleBuffer ?? 0,
      epochs: o.epochs,
      prefetch: 1,
      resumeFrom: resumed?.position ?? undefined,
    });
    const perEpoch = o.examplesPerEpoch ? Math.floor(o.examplesPerEpoch / o.batchSize) : 0;
    const total = Math.min(cap, perEpoch ? perEpoch * o.epochs : Infinity);
    const bar = o.progressSink === null || !writes ? null : startProgress({
      total: Number.isFinite(total) ? total : 0,
      label: o.label,
      startDone: step,
      sink: o.progressSink,
    });
    const checkpoint = async (position: RunState["position"], finished: boolean) => {
      checkIdentical(`at the checkpoint of step ${step}`);
      if (writes) {
        await saveRunState(o.dir, identity, {
          step,
          params: live.params,
          optimizer: live.optimizer,
          batchNorm: live.batchNorm,
          position,
          timeS,
          window,
          finished,
        });
      }
      checkpointStep = step;
    };
    const diverged = (what: string) =>
      new DivergedError(
        step,
        checkpointStep,
        `${o.label}: step ${step}: ${what}; stopped. ${
          checkpointStep === null
            ? "No checkpoint had been written."
            : `The last good checkpoint (step ${checkpointStep}) is intact in ${
              checkpointDir(o.dir)
            }.`
        }`,
      );
    const evalNow = async (epoch: number, epochEnd: boolean) => {
      if (!writes) return void (window = EMPTY_WINDOW);
      const e0 = performance.now();
      const ev = await evaluate(o.model, live.params, live.batchNorm, o.test, {
        batchSize: o.evalBatchSize,
        maxExamples: o.evalExamples,
      });
      const n = window.count;
      runLogs.eval({
        step,
        epoch,
        epoch_end: epochEnd,
        train_loss: n ? window.lossSum / n : null,
        train_accuracy: n ? window.accuracySum / n : null,
        test_loss: ev.loss,
        test_accuracy: ev.accuracy,
        test_examples: ev.examples,
        time_s: round(timeS, 6),
        eval_ms: round(performance.now() - e0, 3),
      });
      window = EMPTY_WINDOW;
    };
    if (step === 0) await evalNow(0, false);
    pending = await stream.next();
    let position = stream.position;
    let stopped = false;
    while (pending && step < cap) {
      const t0 = performance.now();
      let r: Awaited<ReturnType<typeof stepOn>>;
      try {
        r = await stepOn(o, opt, live, pending, step);
      } finally {
        disposeBatch(pending);
        pending = null;
      }
      const ms = performance.now() - t0;
      step++;
      timeS += ms / 1000;
      const epoch = position.epoch;
      runLogs.step({
        step,
        epoch,
        loss: r.loss,
        accuracy: r.accuracy,
        lr: opt.learningRate,
        step_ms: round(ms, 3),
        time_s: round(timeS, 6),
        ...r.diagnostics,
      });
      if (!Number.isFinite(r.loss)) throw diverged(`the training loss is ${r.loss}`);
      if (dp && step % dp.checkEvery === 0) checkIdentical(`after step ${step}`);
      if (!r.finite) {
        // The slow path (one read per tensor) runs only once the step's flag said non-finite;
        // it finds nothing when the flag's sum merely overflowed.
        const which = await describeNonFinite([
          ["params", live.params, "/"],
          ["optimizer state", live.optimizer],
          ["batch-norm statistics", live.batchNorm],
        ]);
        if (which !== null) throw diverged(`${which} is not finite after the update`);
      }
      window = {
        lossSum: window.lossSum + r.loss,
        accuracySum: window.accuracySum + r.accuracy,
        count: window.count + 1,
      };
      const after = position;
      if (step < cap) {
        pending = await stream.next();
        position = stream.position;
      }
      const last = pending === null;
      const epochEnd = (last && step < cap) || (!last && position.epoch > after.epoch);
      if (last || epochEnd || (o.evalEvery && step % o.evalEvery === 0)) {
        await evalNow(epoch, epochEnd);
      }
      if (last || (o.checkpointEvery && step % o.checkpointEvery === 0)) {
        await checkpoint(after, last);
      }
      bar?.update(step, { loss: r.loss, acc: r.accuracy });
      if (o.afterStep?.(step)) {
        stopped = true;
        break;
      }
    }
    bar?.done();
    const status = stopped ? "stopped" : "finished";
    return { ...base, status, steps: step, checkpointStep, reused: step === firstStep };
  } finally {
    if (pending) disposeBatch(pending);
    await stream?.close();
    logs?.close();
    disposeLive(live);
  }
};
