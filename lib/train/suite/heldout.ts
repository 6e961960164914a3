/**
 * The held-out suite, declared before anything runs (docs: README "Held-out suite"): six MNIST-
 * shaped tasks that no meta-training drew (the shipped weights saw only the 784→20 sigmoid→10 MLP
 * on the `meta-train` split; a task sampler must keep these architectures and transforms out of
 * its mix), and the optimizer families with their grids. Every task trains on the `eval-train`
 * split (disjoint from meta-training) and tests on `test`. No weight decay anywhere: the race is
 * on the training cross-entropy.
 * @module
 */
import { cudaConvnet, mlp, resnetV2Cifar } from "../../../models/mod.ts";
import type { AnyModel } from "../models.ts";
import type { OptimizerName, Settings } from "../optimizers.ts";
import type { PixelTransform } from "./transformed_source.ts";

/** One task of the suite. */
export interface SuiteTask {
  /** Its name (a folder name; `--tasks` takes it). */
  readonly name: string;
  /** What it is, for the report. */
  readonly description: string;
  /** The model with `numClasses` outputs. */
  readonly model: (numClasses: number) => AnyModel;
  /** The transform of every image (train and test). */
  readonly transform: PixelTransform;
  /** Examples per step. */
  readonly batchSize: number;
  /** Steps of the full run. */
  readonly steps: number;
  /** Evaluate (and record the training-loss window) every this many steps. */
  readonly evalEvery: number;
}

/** A model as the runs take it (parameters and batch-norm state as opaque trees). */
const erase = (m: unknown): AnyModel => m as AnyModel;

/** The six held-out tasks, cheapest first (`--tasks` with none picks these in this order). */
export const HELDOUT_TASKS: readonly SuiteTask[] = [
  {
    name: "mlp-rotated",
    description: "the original's MLP (784→20 sigmoid→10, N(0, 0.01²)) on MNIST rotated by 90°",
    model: (numClasses) => erase(mlp({ numClasses })),
    transform: "rotate90",
    batchSize: 128,
    steps: 400,
    evalEvery: 20,
  },
  {
    name: "mlp-inverted",
    description: "the original's MLP on MNIST with inverted pixels (1 − x)",
    model: (numClasses) => erase(mlp({ numClasses })),
    transform: "invert",
    batchSize: 128,
    steps: 400,
    evalEvery: 20,
  },
  {
    name: "mlp-deep-tanh",
    description: "a deeper MLP, 784→64→64→64→64→10 tanh, N(0, 0.1²)",
    model: (numClasses) =>
      erase(mlp({ numClasses, hidden: [64, 64, 64, 64], activation: "tanh", initStd: 0.1 })),
    transform: "none",
    batchSize: 128,
    steps: 400,
    evalEvery: 20,
  },
  {
    name: "mlp-wide-relu",
    description: "a wider MLP, 784→512 relu→10, N(0, 0.05²)",
    model: (numClasses) =>
      erase(mlp({ numClasses, hidden: [512], activation: "relu", initStd: 0.05 })),
    transform: "none",
    batchSize: 128,
    steps: 400,
    evalEvery: 20,
  },
  {
    name: "convnet",
    description: "the CUDA-convnet at full width (filters 64, 64; units 384, 192) on MNIST",
    model: (numClasses) => erase(cudaConvnet({ numClasses })),
    transform: "none",
    batchSize: 128,
    steps: 200,
    evalEvery: 20,
  },
  {
    name: "resnet20",
    description: "ResNet-20 v2 (batch norm) on MNIST",
    model: (numClasses) => erase(resnetV2Cifar({ depth: 20, numClasses })),
    transform: "none",
    batchSize: 128,
    steps: 200,
    evalEvery: 20,
  },
];

/** Which MLHF meta-weights variant a family runs (the ablation rows). */
export type MlhfVariant = "shipped" | "fixed-damping" | "no-precond";

/** An optimizer family: one optimizer, its fixed settings, and the grid it is tuned over. */
export interface SuiteFamily {
  /** Its name in the report (`--optimizers` takes it). */
  readonly name: string;
  /** The optimizer. */
  readonly optimizer: OptimizerName;
  /** Settings every run of the family has. */
  readonly settings: Settings;
  /** The tuned setting and its values (absent: one run, untuned). */
  readonly grid?: { readonly key: "lr" | "damping"; readonly values: readonly number[] };
  /** For `mlhf`: which meta-weights variant. */
  readonly variant?: MlhfVariant;
  /** What it is, for the report. */
  readonly description: string;
}

/** The family whose tuned median final training loss is each task's target. */
export const TARGET_FAMILY = "adam";

/** The families and their grids (learning rates in factors of about 3; best by final loss). */
export const HELDOUT_FAMILIES: readonly SuiteFamily[] = [
  {
    name: "sgd",
    optimizer: "sgd",
    settings: { "weight-decay": 0 },
    grid: { key: "lr", values: [0.01, 0.03, 0.1, 0.3, 1, 3] },
    description: "SGD",
  },
  {
    name: "momentum",
    optimizer: "momentum",
    settings: { momentum: 0.9, "weight-decay": 0 },
    grid: { key: "lr", values: [0.001, 0.003, 0.01, 0.03, 0.1, 0.3] },
    description: "heavy-ball momentum 0.9",
  },
  {
    name: "adam",
    optimizer: "adam",
    settings: { "weight-decay": 0 },
    grid: { key: "lr", values: [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2] },
    description: "Adam (β 0.9, 0.999, ε 1e-8)",
  },
  {
    name: "rmsprop",
    optimizer: "rmsprop",
    settings: { "weight-decay": 0 },
    grid: { key: "lr", values: [1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3] },
    description: "RMSprop (decay 0.99, TF 1.x: mean square starts at 1)",
  },
  {
    name: "hf-fixed",
    optimizer: "hf-fixed",
    settings: { lr: 1, "cg-iter": 10, "weight-decay": 0 },
    grid: { key: "damping", values: [1e-3, 1e-2, 0.1, 1, 10] },
    description: "HF with fixed damping λ (η 1, K 10)",
  },
  {
    name: "hf-lm",
    optimizer: "hf-lm",
    settings: { lr: 1, "cg-iter": 10, damping: 1, "lm-decay": 0.99, "weight-decay": 0 },
    description: "HF with Levenberg–Marquardt damping (η 1, K 10, λ₀ 1, δ 0.99)",
  },
  {
    name: "kfac",
    optimizer: "kfac",
    settings: { "weight-decay": 0 },
    description: "K-FAC at the original's settings (lr 0.1, damping 1, EMA 0.99, momentum 0.9)",
  },
  {
    name: "mlhf",
    optimizer: "mlhf",
    settings: {},
    variant: "shipped",
    description: "MLHF, the shipped meta-weights (learned damping and preconditioner)",
  },
  {
    name: "mlhf-safeguard",
    optimizer: "mlhf",
    settings: { safeguard: "lm+trust" },
    variant: "shipped",
    description:
      "MLHF, the shipped meta-weights with the safeguard (LM acceptance test and trust region)",
  },
  {
    name: "mlhf-fixed-damping",
    optimizer: "mlhf",
    settings: {},
    grid: { key: "damping", values: [1e-2, 0.1, 1] },
    variant: "fixed-damping",
    description: "ablation: MLHF's learned preconditioner with a fixed λ instead of the λ network",
  },
  {
    name: "mlhf-no-precond",
    optimizer: "mlhf",
    settings: {},
    variant: "no-precond",
    description: "ablation: MLHF's learned damping with no preconditioner (P ≡ 1)",
  },
];

/** A suite by name (`--suite`). */
export const SUITES = {
  heldout: { tasks: HELDOUT_TASKS, families: HELDOUT_FAMILIES },
} as const;
/** A suite's name. */
export type SuiteName = keyof typeof SUITES;
