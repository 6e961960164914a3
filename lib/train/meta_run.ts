/**
 * A meta-training run: windows of T batches from the meta-training split, one `metaIteration` per
 * window, a JSONL log of every diagnostic of the original (docs/algorithm.md#meta-losses), a
 * progress bar, atomic checkpoints every N iterations (meta-weights, Adam state, replay buffer,
 * optimizee state and data position), `resume` that continues a killed run to the same
 * meta-weights, and the final weights in the meta-weights format. Every random choice derives from
 * one seed.
 *
 * Nothing is lost: a directory that already holds a run is refused unless resuming, and `out` is
 * created only once the data is open and one batch fits in the meta-training split (a split
 * smaller than a batch is a FlagError, not a run that spins). A non-finite value carried from one
 * iteration to the next stops the run at that iteration, naming the tensor, before any checkpoint
 * could keep it.
 *
 * Data-parallel (`distributed`, lib/distributed): each rank unrolls its own windows (its own data
 * order, noise and resets, its own optimizee trajectory) and the meta-gradient and meta-losses are
 * averaged over the ranks before the clip and Adam, so the meta-weights stay identical. Rank 0
 * writes the log, the meta-weights and the checkpoint in `out`, as one process does; rank r > 0
 * keeps its trajectory in `out/ranks/<r>/` (its checkpoints of the last two checkpoint iterations,
 * written before rank 0's), and `resume` continues every rank from rank 0's checkpoint iteration.
 * @module
 */
import { tf } from "../_deps.ts";
import { foldIn, keyFromSeed } from "../prng.ts";
import { leaves, type Params, size } from "../tree.ts";
import type { Batch } from "../curvature/gauss_newton.ts";
import { softmaxCrossEntropy } from "../../ops/losses.ts";
import { batches as batchStream, type BatchStream } from "../data/pipeline.ts";
import { oneHot } from "../data/batch.ts";
import { type DatasetName, openSource } from "../data/dataset.ts";
import { parsePosition, type Position } from "../data/pipeline.ts";
import { FlagError } from "../cli/flags.ts";
import {
  checkpointPath,
  disposeTensorsIn,
  loadCheckpoint,
  saveCheckpoint,
} from "../run/checkpoint.ts";
import { differences } from "../run/differences.ts";
import { openJsonl } from "../run/logger.ts";
import { progress } from "../run/progress.ts";
import type { TreeValue } from "../run/tensor_file.ts";
import { formatCompact } from "../report/format.ts";
import { initMetaWeights } from "../optim/mlhf/meta_weights.ts";
import { saveMetaWeights } from "../meta/meta_weights_file.ts";
import {
  estimateWindowBytes,
  initMetaTrainState,
  type MetaDiagnostics,
  metaIteration,
  type MetaProblem,
  type MetaTrainOptions,
  type MetaTrainState,
  metaTrainStateTensors,
} from "../meta/meta_train.ts";
import type { ParamKind } from "../param_kinds.ts";
import type { Model } from "../../models/types.ts";
import { kindLeaves } from "../../models/types.ts";
import { exists } from "../run/files.ts";
import { checkBatchFits } from "./batch_fit.ts";
import { countExamples } from "./problem.ts";
import type { DataParallel } from "../distributed/data_parallel.ts";
import { allreduceMean, allreduceMeanNumber } from "../distributed/reduce.ts";
import { assertIdentical } from "../distributed/consistency.ts";

/** What every meta-training run (one problem, or a task mix) is told: data, budget, files. */
export interface MetaRunBase {
  /** The data set of the optimizee's training batches (its meta-train split). */
  readonly dataset: DatasetName;
  /** Its directory (absent: the embedded MNIST). */
  readonly dataDir?: string;
  /** Examples in the shuffle buffer. */
  readonly shuffleBuffer: number;
  /** Meta-iterations (windows) to run in all, counting those of a resumed run. */
  readonly iterations: number;
  /** Passes over the meta-training split (the run stops at whichever of this and `iterations`
   * comes first; absent: no cap). */
  readonly epochs?: number;
  /** Seed of every random choice: initialization, data order, noise, resets, tasks. */
  readonly seed: number;
  /** Output directory: the log, the checkpoint and the meta-weights file. */
  readonly out: string;
  /** Iterations between checkpoints (and meta-weights files). */
  readonly checkpointEvery: number;
  /** Continue from the checkpoint in `out` if it has one. */
  readonly resume: boolean;
  /** The meta-training settings. */
  readonly options: MetaTrainOptions;
  /** The command line, recorded in the weights file. */
  readonly command: string;
  /** Stop (as if killed) after this many iterations of this process: for tests. */
  readonly stopAfter?: number;
  /** No progress line or messages. */
  readonly quiet?: boolean;
}

/** Settings of a meta-training run on one problem (`deno task train`). */
export interface MetaRunConfig extends MetaRunBase {
  /** The optimizee's model. */
  readonly model: Model<Params, Params>;
  /** The model's name (recorded in the weights file). */
  readonly modelName: string;
  /** The optimizee's batch size. */
  readonly batchSize: number;
  /** Called with each iteration's diagnostics (after logging). */
  readonly onIteration?: (d: MetaDiagnostics) => void;
  /** Data-parallel meta-training over MPI ranks (see the module doc). */
  readonly distributed?: DataParallel;
}

/** What a meta-training run produced. */
export interface MetaRunResult {
  /** Iterations done in all. */
  readonly iterations: number;
  /** The meta-weights file's path. */
  readonly weightsPath: string;
  /** The JSONL log's path. */
  readonly logPath: string;
  /** Wall time of the run in seconds, counting the time before a resume. */
  readonly wallSeconds: number;
  /** The last iteration's diagnostics (absent when none ran). */
  readonly last?: MetaDiagnostics;
}

/** The checkpoint's name in a run directory (shared with `task_run.ts`). */
export const CHECKPOINT = "meta-train";

/** The repository's HEAD commit, or "unknown". */
export const gitCommit = async (): Promise<string> => {
  try {
    const out = await new Deno.Command("git", {
      args: ["rev-parse", "HEAD"],
      stdout: "piped",
      stderr: "null",
    })
      .output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : "unknown";
  } catch {
    return "unknown";
  }
};

/** The settings a resumed run must share with the checkpoint. */
const fingerprint = (c: MetaRunConfig) => ({
  model: c.modelName,
  epochs: c.epochs ?? null,
  dataset: c.dataset,
  batchSize: c.batchSize,
  shuffleBuffer: c.shuffleBuffer,
  seed: c.seed,
  options: c.options,
});

const nextWindow = async (
  stream: BatchStream,
  T: number,
  classes: number,
): Promise<Batch[] | null> => {
  const out: Batch[] = [];
  while (out.length < T) {
    const b = await stream.next();
    if (!b) break;
    out.push({ x: b.x, y: tf.tidy(() => oneHot(b.y, classes)) });
    b.y.dispose();
  }
  if (out.length < T) {
    tf.dispose(out.flatMap((b) => [b.x, b.y]));
    return null;
  }
  return out;
};

/** The files of a meta-training run in `out`. */
const runFiles = (out: string): string[] => [
  checkpointPath(out, CHECKPOINT),
  `${out}/meta_train.jsonl`,
  `${out}/meta-weights.mlhf`,
];

/** Refuses a directory that already holds a run (any of its files): it would be overwritten. */
export const refuseOccupied = async (out: string): Promise<void> => {
  for (const file of runFiles(out)) {
    if (await exists(file)) {
      throw new Error(
        `${out} already holds a run (${file}): pass --resume to continue it, or choose another --out`,
      );
    }
  }
};

/** Runs (or resumes) meta-training; see the module doc. */
export const metaTrainRun = async (c: MetaRunConfig): Promise<MetaRunResult> => {
  const t0 = performance.now();
  const o = c.options;
  const key = keyFromSeed(c.seed);
  const comm = c.distributed?.comm;
  const rank = comm?.rank ?? 0;
  // Rank r > 0 keeps its own trajectory in its own folder; rank 0 writes what one process does.
  const dir = rank === 0 ? c.out : `${c.out}/ranks/${rank}`;
  if (!c.resume) {
    if (rank === 0) await refuseOccupied(c.out);
  } else if (rank === 0 && !(await exists(checkpointPath(c.out, CHECKPOINT)))) {
    throw new Error(`--resume: no checkpoint ${CHECKPOINT}.bin in ${c.out}`);
  }
  const source = await openSource({ dataset: c.dataset, split: "meta-train", dataDir: c.dataDir });
  try {
    const examples = await countExamples(source);
    checkBatchFits(c.batchSize, { dataset: c.dataset, split: "meta-train", examples });
  } catch (e) {
    await source.close?.();
    throw e;
  }
  await Deno.mkdir(dir, { recursive: true });
  const init = c.model.init(foldIn(key, 1), source.shape as [number, number, number]);
  tf.dispose(leaves(init.state));
  const kinds = kindLeaves(init.kinds) as ParamKind[];
  const pr: MetaProblem<Params> = {
    model: c.model.apply,
    lossFn: softmaxCrossEntropy,
    kinds,
  };
  const presentKinds = [...new Set(kinds)];
  let state: MetaTrainState<Params>;
  let position: Position | undefined;
  let elapsedBefore = 0;
  // Every rank resumes at the iteration of rank 0's checkpoint (rank r > 0: its own file of it).
  const head = c.resume && rank === 0 ? await loadCheckpoint(dir, CHECKPOINT) : null;
  const from = comm ? Math.round(allreduceMeanNumber(head?.step ?? 0, comm) * comm.size) : 0;
  const ckpt = rank === 0
    ? head
    : c.resume
    ? await loadCheckpoint(dir, CHECKPOINT, { step: from })
    : null;
  if (c.resume && !ckpt) {
    const file = checkpointPath(dir, CHECKPOINT, rank === 0 ? undefined : from);
    throw new FlagError(`--resume: no checkpoint ${file}`);
  }
  if (ckpt) {
    tf.dispose(leaves(init.params));
    const p = ckpt.payload as unknown as {
      fingerprint: string;
      state: MetaTrainState<Params>;
      position: unknown;
      elapsedSeconds: number;
    };
    const want = JSON.stringify(fingerprint(c));
    if (p.fingerprint !== want) {
      disposeTensorsIn(ckpt.payload);
      throw new FlagError(
        `--resume: the checkpoint in ${c.out} was made with other settings: ${
          differences(JSON.parse(p.fingerprint), JSON.parse(want)).join("; ")
        }`,
      );
    }
    state = p.state;
    position = parsePosition(p.position);
    elapsedBefore = p.elapsedSeconds;
  } else {
    const meta = initMetaWeights(foldIn(key, 2), o, presentKinds);
    state = initMetaTrainState(pr, o, init.params, meta);
  }
  // Every rank must hold the same meta-weights and Adam state (at the start and each checkpoint).
  const checkMeta = (when: string) =>
    comm && assertIdentical(
      [...leaves(state.meta as Params), ...leaves(state.adam.mu), ...leaves(state.adam.nu)],
      comm,
      `meta-weights and their Adam state ${when}`,
    );
  checkMeta(ckpt ? `resumed at iteration ${state.iteration}` : "at the start");
  const n = size(state.theta);
  const est = estimateWindowBytes(n, o.metaRollBack, 0, o.coordinateFraction);
  const log = rank === 0
    ? await openJsonl(`${c.out}/meta_train.jsonl`, {
      overwrite: !ckpt,
      truncateAfterStep: ckpt ? state.iteration - 1 : undefined,
      stepKey: "iteration",
    })
    : { log: () => {}, close: () => {} };
  const quiet = c.quiet || rank !== 0;
  const total = Deno.systemMemoryInfo().total;
  if (est > 0.8 * total && !quiet) {
    console.error(
      `warning: BPTT through T=${o.metaRollBack} steps over ${n} coordinates needs ≈ ${
        (est / 2 ** 30).toFixed(1)
      } GiB, ` +
        `more than 80% of this machine's ${
          (total / 2 ** 30).toFixed(1)
        } GiB: lower --meta-roll-back or --coordinate-fraction`,
    );
  }
  if (!quiet) {
    console.error(
      `meta-training ${c.modelName} on ${c.dataset} (meta-train split): ${n} coordinates, kinds ${
        presentKinds.join(", ")
      }; ` +
        `T=${o.metaRollBack}, K=${o.cgIterations}, batch ${c.batchSize}` +
        (o.coordinateFraction < 1 ? `, ${o.coordinateFraction} of the coordinates taped` : "") +
        `; BPTT state ≈ ${(est / 2 ** 20).toFixed(0)} MiB + activations` +
        (ckpt ? `; resuming at iteration ${state.iteration}` : "") +
        (comm ? `; data-parallel over ${comm.size} ranks` : ""),
    );
  }
  const stream = batchStream(source, {
    batchSize: c.batchSize,
    // Rank r > 0 draws its own windows: another data order.
    seed: rank === 0 ? c.seed : c.seed + 1_000_003 * rank,
    shuffleBuffer: c.shuffleBuffer,
    resumeFrom: position,
    ...(c.epochs ? { epochs: c.epochs } : {}),
  });
  const bar = quiet
    ? null
    : progress({ total: c.iterations, label: "meta-train", startDone: state.iteration });
  const save = async () => {
    const elapsedSeconds = elapsedBefore + (performance.now() - t0) / 1000;
    // Ranks r > 0 write first; rank 0's checkpoint, written once they all have, commits the
    // iteration. They keep the last two: rank 0 may have died before committing the newer one.
    const write = (keepLast: number) =>
      saveCheckpoint(dir, CHECKPOINT, {
        fingerprint: JSON.stringify(fingerprint(c)),
        state: state as unknown as TreeValue,
        position: stream.position as unknown as TreeValue,
        elapsedSeconds,
      }, { step: state.iteration, keepLast });
    checkMeta(`at iteration ${state.iteration}`);
    if (rank !== 0) await write(2);
    comm?.barrier();
    if (rank !== 0) return;
    await write(0);
    await saveMetaWeights(`${c.out}/meta-weights.mlhf`, state.meta, record(elapsedSeconds));
  };
  const commit = await gitCommit();
  const record = (wallSeconds: number) => ({
    options: {
      cgIterations: o.cgIterations,
      lambda0: o.lambda0,
      xInit: o.xInit,
      preconditioner: o.preconditioner,
      dampingMode: o.dampingMode,
      ...(o.featureNorm ? { featureNorm: o.featureNorm } : {}),
    },
    training: {
      model: c.modelName,
      dataset: c.dataset,
      split: "meta-train",
      batchSize: c.batchSize,
      metaRollBack: o.metaRollBack,
      keepProb: o.keepProb,
      metaLr: o.metaLr,
      lr: o.lr,
      metaLoss: o.metaLoss ?? "raw",
      replayMode: o.replayMode,
      coordinateFraction: o.coordinateFraction,
      iterations: state.iteration,
    },
    provenance: { command: c.command, seed: c.seed, commit, wallSeconds, backend: tf.getBackend() },
  });
  let last: MetaDiagnostics | undefined;
  let ran = 0;
  let savedAt: number | null = ckpt ? state.iteration : null;
  try {
    while (state.iteration < c.iterations) {
      if (c.stopAfter !== undefined && ran >= c.stopAfter) break;
      const window = await nextWindow(stream, o.metaRollBack, source.numClasses);
      if (!window) break;
      const k = rank === 0 ? foldIn(key, 3) : foldIn(foldIn(key, 5), rank);
      const mean = comm ? (ts: readonly tf.Tensor[]) => allreduceMean(ts, comm) : undefined;
      const r = await metaIteration(pr, o, state, window, foldIn(k, state.iteration), mean);
      tf.dispose(window.flatMap((b) => [b.x, b.y]));
      state = r.state;
      last = r.diagnostics;
      ran++;
      log.log({ ...r.diagnostics, wallSeconds: elapsedBefore + (performance.now() - t0) / 1000 });
      if (r.nonFinite !== null) {
        throw new Error(
          `iteration ${r.diagnostics.iteration}: ${r.nonFinite} is not finite after the ` +
            `update; stopped. ${
              savedAt === null
                ? "No checkpoint had been written."
                : `The last checkpoint (iteration ${savedAt}) is intact in ${c.out}.`
            }`,
        );
      }
      if (r.diagnostics.skipped && !quiet) {
        console.error(
          `\niteration ${r.diagnostics.iteration}: non-finite meta-gradient, update skipped`,
        );
      }
      c.onIteration?.(r.diagnostics);
      bar?.update(state.iteration, {
        meta: formatCompact(r.diagnostics.metaLoss),
        hess: formatCompact(r.diagnostics.hessianLoss),
        base: formatCompact(r.diagnostics.baseLoss),
      });
      if (state.iteration % c.checkpointEvery === 0) {
        await save();
        savedAt = state.iteration;
      }
    }
    if (c.stopAfter === undefined || ran < c.stopAfter) await save();
    bar?.done();
  } finally {
    log.close();
    await stream.close();
    await source.close?.();
    tf.dispose(metaTrainStateTensors(state));
  }
  return {
    iterations: state.iteration,
    weightsPath: `${c.out}/meta-weights.mlhf`,
    logPath: `${c.out}/meta_train.jsonl`,
    wallSeconds: elapsedBefore + (performance.now() - t0) / 1000,
    last,
  };
};
