/**
 * Comparison presets: the original's evaluation scripts (docs/algorithm.md#presets) and the quick
 * MNIST default. A preset fixes the model, data set, batch size, run length and the optimizers with
 * their settings; command-line flags override any of them.
 * @module
 */
import type { DatasetName } from "../data/dataset.ts";
import type { ModelName } from "./models.ts";
import type { OptimizerName, Settings } from "./optimizers.ts";

/** A preset comparison. */
export interface Preset {
  /** What the preset runs, for `--help` and the report. */
  readonly description: string;
  /** The model. */
  readonly model: ModelName;
  /** The data set. */
  readonly dataset: DatasetName;
  /** The batch size. */
  readonly batchSize: number;
  /** Passes over the training data. */
  readonly epochs: number;
  /** Steps cap (0: none). */
  readonly steps: number;
  /** Evaluate every this many steps besides each epoch's end (0: epochs only). */
  readonly evalEvery: number;
  /** The optimizers compared, each with its explicit settings. */
  readonly optimizers: readonly { name: OptimizerName; settings: Settings }[];
  /** Default meta-weights file of MLHF in this preset. */
  readonly metaWeights: string;
  /**
   * The `deno task train` command whose run directory's `meta-weights.mlhf` is `metaWeights`
   * (`DATA_DIR`: the CIFAR-10 directory), for the message when the file is missing.
   */
  readonly metaWeightsCommand: string;
  /**
   * HF(fixed) settings that replace MLHF while the default meta-weights file does not exist
   * (absent: a missing file is an error).
   */
  readonly mlhfFallback?: Settings;
}

/** Preset names accepted by `--preset`. */
export const PRESET_NAMES = ["mnist", "cifar-b128", "cifar-b512", "imagenet-resnet18"] as const;
/** A preset name accepted by `--preset`. */
export type PresetName = typeof PRESET_NAMES[number];

/**
 * HF(fixed) in place of MLHF on MNIST while no meta-weights are shipped: η 1, λ 0.1 and K 10
 * reach ~90% test accuracy within the default run (the CIFAR script's η 1e-2 barely moves the
 * MLP in a few hundred steps).
 */
export const MNIST_HF_FALLBACK: Settings = { lr: 1, damping: 0.1, "cg-iter": 10 };

/** The README's CUDA-convnet meta-training (makes `weights/mlhf-convnet.mlhf`). */
const CONVNET_META_TRAINING = "deno task train --problem convnet --dataset cifar10 " +
  "--data-dir DATA_DIR --batch-size 64 --keep-prob 0.3 --meta-roll-back 3 --out runs/mt-convnet";

/** The presets by name (the original's settings for CIFAR and ImageNet, docs/algorithm.md#presets). */
export const PRESETS: Readonly<Record<PresetName, Preset>> = {
  mnist: {
    description: "quick default: the original's MLP (784→20 sigmoid→10) on the embedded MNIST, " +
      "2 epochs; Adam's lr 1e-2 is the best of {1e-3, 3e-3, 1e-2, 3e-2} for this run length",
    model: "mlp",
    dataset: "mnist",
    batchSize: 128,
    epochs: 2,
    steps: 0,
    evalEvery: 50,
    // Adam's lr: the best of 1e-3, 3e-3, 1e-2 and 3e-2 on this run (92.5% test accuracy; the
    // CIFAR scripts' 1e-3 reaches 85.9% in these 468 steps).
    optimizers: [{ name: "mlhf", settings: {} }, { name: "adam", settings: { lr: 1e-2 } }],
    metaWeights: "weights/mlhf-mnist.mlhf",
    metaWeightsCommand:
      "deno task train --backend wasm --iterations 300 --checkpoint-every 10 --out runs/mt-mnist-300",
    mlhfFallback: MNIST_HF_FALLBACK,
  },
  "cifar-b128": {
    description: "validation_meta_optimizer_on_cifar10.sh: CUDA-convnet, batch 128, 250 epochs",
    model: "convnet",
    dataset: "cifar10",
    batchSize: 128,
    epochs: 250,
    steps: 0,
    evalEvery: 0,
    optimizers: [
      { name: "mlhf", settings: { lr: 2 } },
      { name: "momentum", settings: { lr: 1e-3, momentum: 0.9 } },
      { name: "adam", settings: { lr: 1e-3 } },
      { name: "rmsprop", settings: { lr: 1e-3, decay: 0.99 } },
    ],
    metaWeights: "weights/mlhf-convnet.mlhf",
    metaWeightsCommand: CONVNET_META_TRAINING,
  },
  "cifar-b512": {
    description:
      "validation_2nd_order_optimizer_on_cifar10.sh: CUDA-convnet, batch 512, 250 epochs",
    model: "convnet",
    dataset: "cifar10",
    batchSize: 512,
    epochs: 250,
    steps: 0,
    evalEvery: 0,
    optimizers: [
      { name: "mlhf", settings: { lr: 8 } },
      { name: "hf-fixed", settings: { lr: 1e-2, damping: 5e-3, "cg-iter": 20 } },
      { name: "hf-lm", settings: { lr: 1e-3, damping: 1, "lm-decay": 0.99, "cg-iter": 20 } },
      { name: "kfac", settings: { lr: 0.1, damping: 1, ema: 0.99 } },
    ],
    metaWeights: "weights/mlhf-convnet.mlhf",
    metaWeightsCommand: CONVNET_META_TRAINING,
  },
  "imagenet-resnet18": {
    description: "validation_meta_optimizer_on_imagenet.sh: ResNet-18 v2, batch 64, 100 epochs",
    model: "resnet18",
    dataset: "imagenet",
    batchSize: 64,
    epochs: 100,
    steps: 0,
    evalEvery: 0,
    optimizers: [
      { name: "mlhf", settings: { lr: 0.5 } },
      { name: "momentum", settings: { lr: 0.025, momentum: 0.9 } },
      { name: "rmsprop", settings: { lr: 2.5e-4, decay: 0.99 } },
      { name: "adam", settings: { lr: 2.5e-4 } },
    ],
    metaWeights: "weights/mlhf-resnet.mlhf",
    // The original validates on ImageNet the meta-weights trained on CIFAR's ResNet-20 (docs/algorithm.md#presets).
    metaWeightsCommand:
      "deno task train --problem resnet --dataset cifar10 --data-dir DATA_DIR --out runs/mt-resnet",
  },
};

/**
 * One line for a preset whose meta-weights file does not exist: what is missing, that it is not
 * shipped, the meta-training command that makes it (with `dataDir` when it is CIFAR-10's) and the
 * alternatives.
 */
export const missingMetaWeightsMessage = (name: PresetName, dataDir = ""): string => {
  const p = PRESETS[name];
  const dir = dataDir && p.dataset === "cifar10" ? dataDir : "DATA_DIR";
  const command = p.metaWeightsCommand.replace("DATA_DIR", dir);
  const run = /--out (\S+)/.exec(command)?.[1] ?? "<run directory>";
  return `${p.metaWeights}: MLHF's meta-weights for preset ${name} do not exist: they are not ` +
    `shipped with the repository. Make them by meta-training, \`${command}\`${
      command.includes("DATA_DIR") ? " (DATA_DIR: the CIFAR-10 binary directory)" : ""
    }, then copy ${run}/meta-weights.mlhf to ${p.metaWeights}; or pass --meta-weights FILE ` +
    `(or untrained), or leave mlhf out with --compare.`;
};
