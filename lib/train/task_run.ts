/**
 * Meta-training on a task distribution (`deno task train --tasks …`, docs/algorithm.md#task-mix;
 * not in the original): every window trains one task of a mix (`lib/meta/task_mix.ts`), made
 * concrete with its augmentation (`lib/meta/task_augment.ts`), on the data set's meta-training
 * split. One set of meta-weights covers every kind of every family; a window updates the networks
 * of the kinds its task has (their Adam moments too; the step count is shared, as in a lazy
 * Adam), and clips their meta-gradient to their norm.
 *
 * Trajectories and replay: after a window, the task's trajectory continues with probability
 * `keepProb`; otherwise it joins a small pool of (task, φ, MLHF state) snapshots (the oldest
 * leaves when the pool is over `replayPool`) and the next window either resumes another pooled
 * trajectory (probability `replayProb`: a late-training state) or starts a fresh task. A
 * trajectory whose φ or MLHF state stops being finite is dropped and logged (`diverged`), and the
 * next window replays or starts a task in the same way; non-finite meta-weights or Adam moments
 * stop the run, naming the tensor. Every
 * random choice derives from the seed and the window's number, and the sampler's state is the
 * number of tasks drawn, so a run killed and resumed from its checkpoint (meta-weights, Adam
 * state, current trajectory, pool, tasks drawn, data position) ends with the same meta-weights as
 * one that was not. The run's files are those of `meta_run.ts`.
 * @module
 */
import { tf } from "../_deps.ts";
import { foldIn, keyFromSeed, stream as drawStream } from "../prng.ts";
import { leaves, type Params } from "../tree.ts";
import type { Batch } from "../curvature/gauss_newton.ts";
import { softmaxCrossEntropy } from "../../ops/losses.ts";
import { batches as batchStream } from "../data/pipeline.ts";
import { openSource } from "../data/dataset.ts";
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
import { initMetaWeights, metaWeightTensors } from "../optim/mlhf/meta_weights.ts";
import { initMlhfState, type MetaWeights, type MlhfState } from "../optim/mlhf/direction.ts";
import { type AdamState, scaleByAdam } from "../optim/transforms.ts";
import { saveMetaWeights } from "../meta/meta_weights_file.ts";
import {
  type MetaDiagnostics,
  metaIteration,
  type MetaTrainState,
  stateLeaves,
} from "../meta/meta_train.ts";
import {
  checkAugmentation,
  familyName,
  sampleTask,
  type TaskAugmentation,
  type TaskFamily,
  type TaskSpec,
} from "../meta/task_mix.ts";
import { type ConcreteTask, concreteTask, familyModel } from "../meta/task_augment.ts";
import { PARAM_KINDS, type ParamKind } from "../param_kinds.ts";
import { kindLeaves } from "../../models/types.ts";
import { checkBatchFits } from "./batch_fit.ts";
import { countExamples } from "./problem.ts";
import { CHECKPOINT, gitCommit, type MetaRunBase, refuseOccupied } from "./meta_run.ts";
import { exists } from "../run/files.ts";

/**
 * Settings of a task-mix meta-training run: {@link MetaRunBase}'s (an iteration is a window;
 * `options.keepProb` is the chance a trajectory continues) and the mix.
 */
export interface TaskRunConfig extends MetaRunBase {
  /** The families of the mix (drawn uniformly). */
  readonly mix: readonly TaskFamily[];
  /** The per-task augmentation (its batch sizes replace a single batch size). */
  readonly augmentation: TaskAugmentation;
  /** Trajectories the replay pool keeps (0: none, every switch starts a fresh task). */
  readonly replayPool: number;
  /** Probability that a switch resumes a pooled trajectory rather than a fresh task. */
  readonly replayProb: number;
  /** Called with each window's diagnostics (after logging). */
  readonly onIteration?: (d: TaskDiagnostics) => void;
}

/** A window's diagnostics: the meta-iteration's, and the task's. */
export interface TaskDiagnostics extends MetaDiagnostics {
  /** The task's draw number. */
  readonly task: number;
  /** Its family's name. */
  readonly family: string;
  /** Its batch size. */
  readonly batchSize: number;
  /** Whether its labels are permuted. */
  readonly permuteLabels: boolean;
  /** Whether its pixels are permuted. */
  readonly permutePixels: boolean;
  /** Inner steps its trajectory has taken after this window. */
  readonly trajectorySteps: number;
  /** What the next window does: continue this trajectory, replay a pooled one, or a new task. */
  readonly next: "continue" | "replay" | "new";
  /** Null, or the tensor of the task's trajectory that was not finite (the trajectory is dropped). */
  readonly diverged: string | null;
}

/** One trajectory: a task, its φ and MLHF state, and the inner steps taken. */
export interface Trajectory {
  /** The task it trains. */
  readonly spec: TaskSpec;
  /** The optimizee's reparameterized parameters φ. */
  readonly theta: Params;
  /** MLHF's inner state (carried x, r and LSTM states). */
  readonly inner: MlhfState<Params>;
  /** Inner steps taken so far. */
  readonly steps: number;
}

/** Everything a task-mix run carries between windows (all checkpointed). */
export interface TaskRunState {
  /** Windows done. */
  readonly iteration: number;
  /** The meta-weights (every kind of the mix). */
  readonly meta: MetaWeights;
  /** Adam's state for them. */
  readonly adam: AdamState<MetaWeights & Params>;
  /** The trajectory the next window continues. */
  readonly current: Trajectory;
  /** The replay pool, oldest first. */
  readonly pool: readonly Trajectory[];
  /** Tasks drawn so far (the sampler's state). */
  readonly drawn: number;
  /** Non-finite meta-gradients skipped so far. */
  readonly skipped: number;
}

/** What a task-mix run produced. */
export interface TaskRunResult {
  /** Windows done in all (with those of a resumed run). */
  readonly iterations: number;
  /** The meta-weights file written. */
  readonly weightsPath: string;
  /** The JSONL log. */
  readonly logPath: string;
  /** Wall time of this invocation, seconds. */
  readonly wallSeconds: number;
  /** The last window's diagnostics (none when no window ran). */
  readonly last?: TaskDiagnostics;
}

/** Every kind of a mix's families, in PARAM_KINDS order. */
export const mixKinds = (
  mix: readonly TaskFamily[],
  shape: readonly [number, number, number],
  classes: number,
): ParamKind[] => {
  const found = new Set<ParamKind>();
  for (const f of mix) {
    const init = familyModel(f, classes).init(keyFromSeed(0), shape);
    kindLeaves(init.kinds).forEach((k) => found.add(k as ParamKind));
    tf.dispose([...leaves(init.params), ...leaves(init.state)]);
  }
  return PARAM_KINDS.filter((k) => found.has(k));
};

/** The part of a kind-keyed tree for `kinds` (same tensors). */
const restrict = <T>(tree: Partial<Record<ParamKind, T>>, kinds: readonly ParamKind[]) =>
  Object.fromEntries(
    PARAM_KINDS.filter((k) => kinds.includes(k) && tree[k]).map((k) => [k, tree[k]]),
  ) as Partial<Record<ParamKind, T>>;

const trajectoryTensors = (t: Trajectory): tf.Tensor[] => [
  ...leaves(t.theta),
  ...stateLeaves(t.inner),
];

/** Every tensor a task-run state holds. */
export const taskRunStateTensors = (s: TaskRunState): tf.Tensor[] => [
  ...metaWeightTensors(s.meta),
  ...leaves(s.adam.mu),
  ...leaves(s.adam.nu),
  ...trajectoryTensors(s.current),
  ...s.pool.flatMap(trajectoryTensors),
];

/** The settings a resumed run must share with its checkpoint. */
const fingerprint = (c: TaskRunConfig) => ({
  tasks: c.mix.map(familyName),
  augmentation: c.augmentation,
  replayPool: c.replayPool,
  replayProb: c.replayProb,
  epochs: c.epochs ?? null,
  dataset: c.dataset,
  shuffleBuffer: c.shuffleBuffer,
  seed: c.seed,
  options: c.options,
});

/** Runs (or resumes) meta-training on a task mix; see the module doc. */
export const taskTrainRun = async (c: TaskRunConfig): Promise<TaskRunResult> => {
  const t0 = performance.now();
  const o = c.options;
  const aug = c.augmentation;
  checkAugmentation(aug);
  if (c.mix.length === 0) throw new FlagError("--tasks: the mix is empty");
  if (!(Number.isInteger(c.replayPool) && c.replayPool >= 0)) {
    throw new FlagError(`--replay-pool must be an integer ≥ 0, got ${c.replayPool}`);
  }
  const key = keyFromSeed(c.seed);
  if (!c.resume) await refuseOccupied(c.out);
  else if (!(await exists(checkpointPath(c.out, CHECKPOINT)))) {
    throw new Error(`--resume: no checkpoint ${CHECKPOINT}.bin in ${c.out}`);
  }
  const maxBatch = Math.max(...aug.batchSizes);
  const source = await openSource({ dataset: c.dataset, split: "meta-train", dataDir: c.dataDir });
  try {
    const examples = await countExamples(source);
    checkBatchFits(maxBatch, { dataset: c.dataset, split: "meta-train", examples });
  } catch (e) {
    await source.close?.();
    throw e;
  }
  await Deno.mkdir(c.out, { recursive: true });
  const shape = source.shape as [number, number, number];
  const classes = source.numClasses;
  const kinds = mixKinds(c.mix, shape, classes);

  // Concrete tasks (models, permutations) of the current and pooled trajectories.
  const concrete = new Map<number, ConcreteTask>();
  const concreteOf = (spec: TaskSpec): ConcreteTask => {
    let t = concrete.get(spec.id);
    if (!t) concrete.set(spec.id, t = concreteTask(spec, c.mix, aug, shape, classes));
    return t;
  };
  const fresh = (id: number): Trajectory => {
    const spec = sampleTask(key, id, c.mix, aug);
    const ct = concreteOf(spec);
    const theta = ct.initPhi();
    return { spec, theta, inner: initMlhfState(theta, ct.kinds, o), steps: 0 };
  };

  let state: TaskRunState;
  let position: Position | undefined;
  let elapsedBefore = 0;
  const ckpt = c.resume ? await loadCheckpoint(c.out, CHECKPOINT) : null;
  if (c.resume && !ckpt) {
    throw new FlagError(`--resume: no checkpoint ${CHECKPOINT}.bin in ${c.out}`);
  }
  if (ckpt) {
    const p = ckpt.payload as unknown as {
      fingerprint: string;
      state: TaskRunState;
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
    const meta = initMetaWeights(foldIn(key, 2), o, kinds);
    state = {
      iteration: 0,
      meta,
      adam: scaleByAdam<MetaWeights & Params>().init(meta as MetaWeights & Params),
      current: fresh(0),
      pool: [],
      drawn: 1,
      skipped: 0,
    };
  }
  const log = await openJsonl(`${c.out}/meta_train.jsonl`, {
    overwrite: !ckpt,
    truncateAfterStep: ckpt ? state.iteration - 1 : undefined,
    stepKey: "iteration",
  });
  if (!c.quiet) {
    console.error(
      `meta-training on a mix of ${c.mix.length} task families (${
        c.mix.map(familyName).join(", ")
      }) on ${c.dataset} (meta-train split), kinds ${kinds.join(", ")}; T=${o.metaRollBack}, ` +
        `K=${o.cgIterations}, batch sizes ${aug.batchSizes.join("/")}, scales ${
          aug.scaleRange.join("–")
        }, replay pool ${c.replayPool}` + (ckpt ? `; resuming at window ${state.iteration}` : ""),
    );
  }
  const data = batchStream(source, {
    batchSize: maxBatch,
    seed: c.seed,
    shuffleBuffer: c.shuffleBuffer,
    resumeFrom: position,
    ...(c.epochs ? { epochs: c.epochs } : {}),
  });
  const bar = c.quiet
    ? null
    : progress({ total: c.iterations, label: "meta-train", startDone: state.iteration });
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
      tasks: c.mix.map(familyName),
      augmentation: aug,
      replayPool: c.replayPool,
      replayProb: c.replayProb,
      dataset: c.dataset,
      split: "meta-train",
      metaRollBack: o.metaRollBack,
      keepProb: o.keepProb,
      metaLr: o.metaLr,
      lr: o.lr,
      metaLoss: o.metaLoss ?? "raw",
      coordinateFraction: o.coordinateFraction,
      iterations: state.iteration,
      tasksDrawn: state.drawn,
    },
    provenance: { command: c.command, seed: c.seed, commit, wallSeconds, backend: tf.getBackend() },
  });
  const save = async () => {
    const elapsedSeconds = elapsedBefore + (performance.now() - t0) / 1000;
    await saveCheckpoint(c.out, CHECKPOINT, {
      fingerprint: JSON.stringify(fingerprint(c)),
      state: state as unknown as TreeValue,
      position: data.position as unknown as TreeValue,
      elapsedSeconds,
    }, { step: state.iteration });
    await saveMetaWeights(`${c.out}/meta-weights.mlhf`, state.meta, record(elapsedSeconds));
  };
  /** T task batches from the data (null at the end of the data). */
  const nextWindow = async (ct: ConcreteTask): Promise<Batch[] | null> => {
    const out: Batch[] = [];
    while (out.length < o.metaRollBack) {
      const b = await data.next();
      if (!b) break;
      out.push(ct.batch(b));
      tf.dispose([b.x, b.y]);
    }
    if (out.length < o.metaRollBack) {
      tf.dispose(out.flatMap((b) => [b.x, b.y]));
      return null;
    }
    return out;
  };
  let last: TaskDiagnostics | undefined;
  let ran = 0;
  let savedAt: number | null = ckpt ? state.iteration : null;
  try {
    while (state.iteration < c.iterations) {
      if (c.stopAfter !== undefined && ran >= c.stopAfter) break;
      const cur = state.current;
      const ct = concreteOf(cur.spec);
      const window = await nextWindow(ct);
      if (!window) break;
      const windowKey = foldIn(foldIn(key, 3), state.iteration);
      const adamMu = state.adam.mu as Partial<Record<ParamKind, Params>>;
      const adamNu = state.adam.nu as Partial<Record<ParamKind, Params>>;
      const s: MetaTrainState<Params> = {
        iteration: state.iteration,
        theta: cur.theta,
        inner: cur.inner,
        meta: restrict(state.meta, ct.kinds),
        adam: {
          count: state.adam.count,
          mu: restrict(adamMu, ct.kinds) as MetaWeights & Params,
          nu: restrict(adamNu, ct.kinds) as MetaWeights & Params,
        },
        replay: [],
        bestLoss: 0,
        bestNorm: Infinity,
        skipped: state.skipped,
      };
      const pr = { model: ct.model, lossFn: softmaxCrossEntropy, kinds: ct.kinds };
      // keepProb 1: the trajectory's continuation and replay are decided here, not in the window.
      const r = await metaIteration(pr, { ...o, keepProb: 1 }, s, window, windowKey);
      tf.dispose(window.flatMap((b) => [b.x, b.y]));
      const done: Trajectory = {
        spec: cur.spec,
        theta: r.state.theta,
        inner: r.state.inner,
        steps: cur.steps + o.metaRollBack,
      };
      // A trajectory whose φ or MLHF state is no longer finite is dropped (the meta-weights and
      // Adam's state are checked first: non-finite ones stop the run below).
      const diverged = r.nonFinite !== null && !r.nonFinite.startsWith("meta-weights")
        ? r.nonFinite
        : null;
      // Continue, or pool this trajectory and resume a pooled one or start a fresh task.
      const draw = drawStream(foldIn(windowKey, 9));
      let current = done, pool = state.pool, drawn = state.drawn;
      let next: TaskDiagnostics["next"] = "continue";
      if (diverged !== null || draw() >= o.keepProb) {
        if (diverged === null) pool = [...pool, done];
        else tf.dispose(trajectoryTensors(done));
        if (pool.length > (diverged === null ? 1 : 0) && draw() < c.replayProb) {
          const i = Math.floor(draw() * (pool.length - (diverged === null ? 1 : 0)));
          current = pool[i];
          pool = pool.filter((_, j) => j !== i);
          next = "replay";
        } else {
          current = fresh(drawn++);
          next = "new";
        }
        while (pool.length > c.replayPool) {
          tf.dispose(trajectoryTensors(pool[0]));
          pool = pool.slice(1);
        }
        const live = new Set([current, ...pool].map((t) => t.spec.id));
        for (const [id, t] of concrete) {
          if (!live.has(id)) {
            t.dispose();
            concrete.delete(id);
          }
        }
      }
      state = {
        iteration: r.state.iteration,
        meta: { ...state.meta, ...r.state.meta },
        adam: {
          count: r.state.adam.count,
          mu: { ...adamMu, ...r.state.adam.mu } as MetaWeights & Params,
          nu: { ...adamNu, ...r.state.adam.nu } as MetaWeights & Params,
        },
        current,
        pool,
        drawn,
        skipped: r.state.skipped,
      };
      const d: TaskDiagnostics = {
        ...r.diagnostics,
        reset: next !== "continue",
        replaySize: pool.length,
        task: cur.spec.id,
        family: cur.spec.name,
        batchSize: cur.spec.batchSize,
        permuteLabels: cur.spec.permuteLabels,
        permutePixels: cur.spec.permutePixels,
        trajectorySteps: done.steps,
        next,
        diverged,
      };
      last = d;
      ran++;
      log.log({ ...d, wallSeconds: elapsedBefore + (performance.now() - t0) / 1000 });
      if (diverged !== null && !c.quiet) {
        console.error(
          `\niteration ${d.iteration}: task ${d.task} (${d.family}) diverged (${diverged} is not ` +
            `finite): dropped, the next window ${
              next === "replay" ? "replays a pooled one" : "starts a new task"
            }`,
        );
      }
      if (r.nonFinite !== null && diverged === null) {
        throw new Error(
          `iteration ${d.iteration} (task ${d.task}, ${d.family}): ${r.nonFinite} is not finite ` +
            `after the update; stopped. ${
              savedAt === null
                ? "No checkpoint had been written."
                : `The last checkpoint (iteration ${savedAt}) is intact in ${c.out}.`
            }`,
        );
      }
      if (d.skipped && !c.quiet) {
        console.error(`\niteration ${d.iteration}: non-finite meta-gradient, update skipped`);
      }
      c.onIteration?.(d);
      bar?.update(state.iteration, {
        task: d.family,
        meta: formatCompact(d.metaLoss),
        hess: formatCompact(d.hessianLoss),
        base: formatCompact(d.baseLoss),
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
    await data.close();
    await source.close?.();
    tf.dispose(taskRunStateTensors(state));
    for (const t of concrete.values()) t.dispose();
  }
  return {
    iterations: state.iteration,
    weightsPath: `${c.out}/meta-weights.mlhf`,
    logPath: `${c.out}/meta_train.jsonl`,
    wallSeconds: elapsedBefore + (performance.now() - t0) / 1000,
    last,
  };
};
