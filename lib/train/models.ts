/**
 * The models `deno task eval` trains, by name, and the data each is evaluated on by default:
 * `mlp` (the original's quick MLP, 784→20 sigmoid→10, docs/algorithm.md#mlp), `convnet`
 * (CUDA-convnet, docs/algorithm.md#cuda-convnet), `convnet-small` (the CUDA-convnet at reduced
 * width, filters 16, 32 and units 64, 32: the small convnet of the MNIST results),
 * `resnet20 | resnet32 | resnet56` (ResNet v2 for CIFAR, docs/algorithm.md#resnet-v2) and
 * `resnet18` (ResNet-18 v2 for ImageNet, same section). The number of classes always comes from
 * the data set.
 * @module
 */
import { tf } from "../_deps.ts";
import {
  cudaConvnet,
  type InputShape,
  kindLeaves,
  mlp,
  type Model,
  resnet18V2ImageNet,
  resnetV2Cifar,
} from "../../models/mod.ts";
import type { DatasetName } from "../data/dataset.ts";
import type { ParamKind } from "../param_kinds.ts";
import { keyFromSeed } from "../prng.ts";
import { leaves, type Params } from "../tree.ts";

/** Model names accepted by `--model`. */
export const MODEL_NAMES = [
  "mlp",
  "convnet",
  "convnet-small",
  "resnet20",
  "resnet32",
  "resnet56",
  "resnet18",
] as const;
/** A model name accepted by `--model`. */
export type ModelName = typeof MODEL_NAMES[number];

/** Any model (parameters and batch-norm state are opaque trees here). */
export type AnyModel = Model<Params, Params>;

/** The model `name` with `numClasses` outputs. */
export const makeModel = (name: ModelName, numClasses: number): AnyModel => {
  const m = (() => {
    switch (name) {
      case "mlp":
        return mlp({ numClasses });
      case "convnet":
        return cudaConvnet({ numClasses });
      case "convnet-small":
        // 116 074 parameters on 28×28×1 MNIST.
        return cudaConvnet({ numClasses, filters: [16, 32], units: [64, 32] });
      case "resnet20":
      case "resnet32":
      case "resnet56":
        return resnetV2Cifar({ depth: Number(name.slice(6)), numClasses });
      case "resnet18":
        return resnet18V2ImageNet({ numClasses });
    }
  })();
  return m as unknown as AnyModel;
};

/** The data set a model is trained on when `--dataset` is not given. */
export const DEFAULT_DATASET: Readonly<Record<ModelName, DatasetName>> = {
  mlp: "mnist",
  convnet: "cifar10",
  "convnet-small": "mnist",
  resnet20: "cifar10",
  resnet32: "cifar10",
  resnet56: "cifar10",
  resnet18: "imagenet",
};

/**
 * The evaluation splits of each data set: train on the split the original evaluates on (CIFAR
 * batches 4–5, docs/algorithm.md#reduced-evaluation-sets; MNIST's second half, disjoint from
 * meta-training), test on the held-out split.
 */
export const EVAL_SPLITS: Readonly<Record<DatasetName, { train: string; test: string }>> = {
  mnist: { train: "eval-train", test: "test" },
  "fashion-mnist": { train: "eval-train", test: "test" },
  cifar10: { train: "train", test: "test" },
  imagenet: { train: "train", test: "validation" },
};

/** The input shape of each data set's images (HWC), known before its files are opened. */
export const DATASET_INPUT_SHAPE: Readonly<Record<DatasetName, InputShape>> = {
  mnist: [28, 28, 1],
  "fashion-mnist": [28, 28, 1],
  cifar10: [32, 32, 3],
  imagenet: [224, 224, 3],
};

/**
 * The parameter kinds of a model on inputs of `shape`, in leaf order (initializes it once and
 * frees the tensors).
 */
export const modelKinds = (model: AnyModel, shape: InputShape): ParamKind[] => {
  const init = model.init(keyFromSeed(0), shape);
  tf.dispose([...leaves(init.params), ...leaves(init.state)]);
  return kindLeaves(init.kinds as never) as ParamKind[];
};
