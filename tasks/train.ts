/**
 * `deno task train`: meta-trains MLHF's damping and preconditioner LSTMs
 * (docs/algorithm.md#meta-training) on the meta-training split (MNIST: the first 30 000 training
 * images; CIFAR-10: data_batch_1..3), and writes `meta-weights.mlhf`, `meta_train.jsonl` and a
 * resumable checkpoint to `--out`. With no arguments it meta-trains on the embedded MNIST with the
 * original's quick-test MLP.
 * @module
 */
import {
  backendFlag,
  DISTRIBUTED_FLAGS,
  ensureWritableDir,
  runCli,
  withDataParallel,
} from "./_cli.ts";
import { bcastString } from "../lib/distributed/communicator.ts";
import {
  BooleanFlag,
  flag,
  FlagError,
  givenFlags,
  NonNegativeIntFlag,
  NonNegativeNumberFlag,
  oneOf,
  PositiveIntFlag,
  PositiveNumberFlag,
  StringFlag,
  UnitIntervalFlag,
} from "../lib/cli/flags.ts";
import { META_TRAIN_DEFAULTS } from "../lib/meta/meta_train.ts";
import { META_LOSSES, type MetaLossKind } from "../lib/meta/meta_loss.ts";
import { metaTrainRun } from "../lib/train/meta_run.ts";
import { mlp } from "../models/mlp.ts";
import type { Model } from "../models/types.ts";
import type { Params } from "../lib/tree.ts";
import { makeModel } from "../lib/train/models.ts";
import { taskTrainRun } from "../lib/train/task_run.ts";
import { checkAugmentation, parseTaskMix, type TaskAugmentation } from "../lib/meta/task_mix.ts";

const PROBLEMS = ["mlp", "convnet", "convnet-small", "resnet"] as const;
type Problem = typeof PROBLEMS[number];

export const SPECS = {
  backend: backendFlag,
  ...DISTRIBUTED_FLAGS,
  problem: flag(
    oneOf(PROBLEMS),
    "mlp" as Problem,
    "optimizee: the original's quick MLP, the CUDA-convnet (or at reduced width, " +
      "filters 16, 32 and units 64, 32), or ResNet-20 v2",
  ),
  tasks: flag(
    StringFlag,
    "-",
    "meta-train on a task mix instead of one --problem (docs/algorithm.md#task-mix): " +
      "comma-separated mlp-<widths>-<relu|sigmoid|tanh> (e.g. mlp-64x32-relu), " +
      "convnet-<f1>x<f2>-<u1>x<u2> (e.g. convnet-8x16-32x16), or default ('-': none)",
  ),
  "batch-sizes": flag(
    StringFlag,
    "32,64,128",
    "with --tasks: the batch sizes a task draws from (comma-separated)",
  ),
  "reparam-scale": flag(
    StringFlag,
    "0.001:1000",
    "with --tasks: lo:hi of the log-uniform per-tensor scale s of θ = s·φ (1:1 = none)",
  ),
  "permute-labels": flag(
    UnitIntervalFlag,
    0.5,
    "with --tasks: probability that a task permutes the class labels",
  ),
  "permute-pixels": flag(
    UnitIntervalFlag,
    0.5,
    "with --tasks: probability that a task permutes the pixels",
  ),
  "replay-pool": flag(
    NonNegativeIntFlag,
    8,
    "with --tasks: trajectories (task, parameters, MLHF state) kept for replay",
  ),
  "replay-prob": flag(
    UnitIntervalFlag,
    0.5,
    "with --tasks: probability that a trajectory switch resumes a pooled (late-training) state",
  ),
  "feature-norm": flag(
    oneOf(["raw", "rms"] as const),
    "raw" as "raw" | "rms",
    "meta-network inputs: raw (the original's tanh of g, r, x) or divided by each tensor's " +
      "running RMS (scale-free)",
  ),
  "meta-loss": flag(
    oneOf(META_LOSSES),
    "raw" as MetaLossKind,
    "the λ networks' per-step score (docs/algorithm.md#meta-losses): raw (the original's loss " +
      "difference) or relative (that difference over the pre-update loss: scale-free)",
  ),
  "mlp-hidden": flag(PositiveIntFlag, 20, "hidden units of the MLP problem (the original's: 20)"),
  dataset: flag(
    oneOf(["mnist", "fashion-mnist", "cifar10"] as const),
    "mnist" as "mnist" | "fashion-mnist" | "cifar10",
    "data set (its meta-train split)",
  ),
  "data-dir": flag(StringFlag, "-", "data directory ('-' = the embedded MNIST)"),
  "batch-size": flag(PositiveIntFlag, 128, "minibatch size (the original: 64 convnet, 128 resnet)"),
  "meta-roll-back": flag(
    PositiveIntFlag,
    META_TRAIN_DEFAULTS.metaRollBack,
    "T, steps unrolled per meta-iteration",
  ),
  "keep-prob": flag(
    UnitIntervalFlag,
    META_TRAIN_DEFAULTS.keepProb,
    "probability of continuing the trajectory after a window",
  ),
  "meta-lr": flag(
    PositiveNumberFlag,
    META_TRAIN_DEFAULTS.metaLr,
    "Adam learning rate of the meta-weights",
  ),
  lr: flag(PositiveNumberFlag, META_TRAIN_DEFAULTS.lr, "η, the inner learning rate"),
  "cg-iter": flag(PositiveIntFlag, META_TRAIN_DEFAULTS.cgIterations, "K, CG iterations per step"),
  "x-init": flag(
    oneOf(["previous", "gradient", "rnn"] as const),
    META_TRAIN_DEFAULTS.xInit as "previous" | "gradient" | "rnn",
    "CG's starting point x₀",
  ),
  preconditioner: flag(
    oneOf(["rnn", "none"] as const),
    META_TRAIN_DEFAULTS.preconditioner as "rnn" | "none",
    "learned diagonal preconditioner or none",
  ),
  damping: flag(
    NonNegativeNumberFlag,
    META_TRAIN_DEFAULTS.lambda0,
    "λ₀, the floor added to the learned λ",
  ),
  "replay-mode": flag(
    oneOf(["as-written", "intended"] as const),
    "as-written" as "as-written" | "intended",
    "experience replay: the original's as written (restart from the initial weights) or as intended",
  ),
  "coordinate-fraction": flag(
    UnitIntervalFlag,
    META_TRAIN_DEFAULTS.coordinateFraction,
    "memory knob: fraction of each kind's coordinates (drawn per window) whose meta-network " +
      "steps are backpropagated; the rest run untaped (1: all, as the original)",
  ),
  iterations: flag(PositiveIntFlag, 60, "meta-iterations (windows) to run in total"),
  epochs: flag(
    NonNegativeIntFlag,
    0,
    "passes over the meta-training split, whichever of --iterations and --epochs ends first (0: no cap)",
  ),
  seed: flag(PositiveIntFlag, 1, "seed of every random choice (init, data order, noise, resets)"),
  out: flag(StringFlag, "-", "run directory ('-' = runs/train-<timestamp>)"),
  "checkpoint-every": flag(PositiveIntFlag, 10, "checkpoint every N meta-iterations"),
  resume: flag(BooleanFlag, false, "continue the run in --out from its checkpoint"),
};

/** The optimizee: eval's models by name, except the MLP's hidden width (a flag here). */
/** Parses `lo:hi` of --reparam-scale. */
const parseScaleRange = (text: string): [number, number] => {
  const parts = text.split(":").map(Number);
  if (
    parts.length !== 2 || !parts.every((v) => Number.isFinite(v) && v > 0) || parts[0] > parts[1]
  ) {
    throw new FlagError(
      `--reparam-scale: expected lo:hi with 0 < lo ≤ hi (e.g. 0.001:1000), got '${text}'`,
    );
  }
  return [parts[0], parts[1]];
};

/** Parses --batch-sizes. */
const parseBatchSizes = (text: string): number[] => {
  const parts = text.split(",").map((s) => s.trim());
  if (!parts.every((p) => /^[1-9][0-9]*$/.test(p))) {
    throw new FlagError(
      `--batch-sizes: expected positive integers separated by commas, got '${text}'`,
    );
  }
  return parts.map(Number);
};

/** Flags that only a --tasks run reads. */
const TASK_FLAGS = [
  "batch-sizes",
  "reparam-scale",
  "permute-labels",
  "permute-pixels",
  "replay-pool",
  "replay-prob",
];
/** Flags that a --tasks run replaces. */
const SINGLE_FLAGS = ["problem", "mlp-hidden", "batch-size", "replay-mode"];

const modelFor = (problem: Problem, hidden: number, classes = 10): Model<Params, Params> =>
  problem === "mlp"
    ? mlp({ numClasses: classes, hidden: [hidden] }) as unknown as Model<Params, Params>
    : makeModel(problem === "resnet" ? "resnet20" : problem, classes);

if (import.meta.main) {
  await runCli(
    "train",
    "Meta-trains MLHF's damping and preconditioner LSTMs.",
    SPECS,
    (c) =>
      withDataParallel(c, async (distributed) => {
        if (!(c["coordinate-fraction"] > 0)) {
          throw new FlagError(
            "--coordinate-fraction: must be > 0 (at least one coordinate is taped)",
          );
        }
        if (c.resume && c.out === "-") {
          throw new FlagError("--resume needs --out (the run directory to continue)");
        }
        const given = givenFlags(Deno.args);
        if (c.problem !== "mlp" && given.has("mlp-hidden")) {
          throw new FlagError(
            `--mlp-hidden contradicts --problem ${c.problem}: the hidden width is the MLP's only`,
          );
        }
        const tasksMode = c.tasks !== "-";
        for (const name of tasksMode ? SINGLE_FLAGS : TASK_FLAGS) {
          if (given.has(name)) {
            throw new FlagError(
              tasksMode
                ? `--${name} contradicts --tasks: each task of the mix sets its own model and batch size`
                : `--${name} needs --tasks (it sets how the task mix is drawn)`,
            );
          }
        }
        if (tasksMode && distributed) {
          throw new FlagError(
            "--distributed with --tasks: a task-mix meta-training runs in one process for now " +
              "(leave out one of the two)",
          );
        }
        const comm = distributed?.comm;
        const named = c.out !== "-"
          ? c.out
          : `runs/train-${new Date().toISOString().replace(/[:.]/g, "-")}`;
        const out = comm ? bcastString(named, comm) : named;
        if (!comm || comm.rank === 0) await ensureWritableDir("out", out);
        comm?.barrier(); // the check removes what it created before another rank writes there
        const options = {
          ...META_TRAIN_DEFAULTS,
          metaRollBack: c["meta-roll-back"],
          keepProb: c["keep-prob"],
          metaLr: c["meta-lr"],
          lr: c.lr,
          cgIterations: c["cg-iter"],
          xInit: c["x-init"],
          preconditioner: c.preconditioner,
          lambda0: c.damping,
          replayMode: c["replay-mode"],
          coordinateFraction: c["coordinate-fraction"],
          ...(c["feature-norm"] !== "raw" ? { featureNorm: c["feature-norm"] } : {}),
          ...(c["meta-loss"] !== "raw" ? { metaLoss: c["meta-loss"] } : {}),
        };
        const command = `deno task train ${Deno.args.join(" ")}`.trim();
        if (tasksMode) {
          let mix;
          try {
            mix = parseTaskMix(c.tasks);
          } catch (e) {
            throw new FlagError((e as Error).message);
          }
          const augmentation: TaskAugmentation = {
            scaleRange: parseScaleRange(c["reparam-scale"]),
            permuteLabels: c["permute-labels"],
            permutePixels: c["permute-pixels"],
            batchSizes: parseBatchSizes(c["batch-sizes"]),
          };
          checkAugmentation(augmentation);
          const r = await taskTrainRun({
            mix,
            augmentation,
            replayPool: c["replay-pool"],
            replayProb: c["replay-prob"],
            dataset: c.dataset,
            dataDir: c["data-dir"] === "-" ? undefined : c["data-dir"],
            shuffleBuffer: 5000,
            iterations: c.iterations,
            ...(c.epochs ? { epochs: c.epochs } : {}),
            seed: c.seed,
            out,
            checkpointEvery: c["checkpoint-every"],
            resume: c.resume,
            command,
            options,
          });
          console.log(
            `meta-trained ${r.iterations} windows on the task mix in ${
              r.wallSeconds.toFixed(1)
            } s: ${r.weightsPath} (log ${r.logPath})`,
          );
          return;
        }
        const r = await metaTrainRun({
          model: modelFor(c.problem, c["mlp-hidden"]),
          modelName: c.problem === "mlp" ? `mlp-${c["mlp-hidden"]}` : c.problem,
          dataset: c.dataset,
          dataDir: c["data-dir"] === "-" ? undefined : c["data-dir"],
          batchSize: c["batch-size"],
          shuffleBuffer: 5000,
          iterations: c.iterations,
          ...(c.epochs ? { epochs: c.epochs } : {}),
          seed: c.seed,
          out,
          checkpointEvery: c["checkpoint-every"],
          resume: c.resume,
          command,
          distributed,
          options,
        });
        if (comm && comm.rank !== 0) return;
        console.log(
          `meta-trained ${r.iterations} iterations in ${
            r.wallSeconds.toFixed(1)
          } s: ${r.weightsPath} (log ${r.logPath})`,
        );
      }),
  );
}
