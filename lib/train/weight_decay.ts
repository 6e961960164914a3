/**
 * The original's weight-decay convention (docs/algorithm.md#weight-decay): the first-order
 * baselines and K-FAC minimize CE + wd·Σ½‖w‖² (`use_meta_optimizer.py` adds it to the loss of every
 * optimizer but its own), while MLHF and the HF baselines, which run through
 * `MetaHessionFreeOptimizer`, minimize the cross-entropy only. wd is 2e-4 over all variables
 * (CIFAR, and here MNIST) and 1e-4 with batch norm excluded on ImageNet.
 * @module
 */
import type { DatasetName } from "../data/dataset.ts";
import type { ParamKind } from "../param_kinds.ts";

/** wd and which parameters it covers. */
export interface WeightDecay {
  /** wd in CE + wd·Σ½‖w‖². */
  readonly value: number;
  /** Batch-norm γ and β are left out (ImageNet). */
  readonly excludeBatchNorm: boolean;
}

/** The convention's weight decay for a data set. */
export const weightDecayFor = (dataset: DatasetName): WeightDecay =>
  dataset === "imagenet"
    ? { value: 1e-4, excludeBatchNorm: true }
    : { value: 2e-4, excludeBatchNorm: false };

/** Optimizers that minimize CE only (no weight decay) under the convention. */
export const CE_ONLY_OPTIMIZERS: readonly string[] = ["mlhf", "hf-fixed", "hf-lm"];

/** Whether the convention gives optimizer `name` weight decay. */
export const usesWeightDecay = (name: string): boolean => !CE_ONLY_OPTIMIZERS.includes(name);

/** Whether leaf i (of the given kinds) is decayed. */
export const decayMask = (
  kinds: readonly ParamKind[],
  wd: WeightDecay,
): (i: number) => boolean =>
(i) => !(wd.excludeBatchNorm && (kinds[i] === "batch/gamma" || kinds[i] === "batch/beta"));

/** One sentence stating the convention, for reports. */
export const describeWeightDecay = (wd: WeightDecay): string =>
  `Weight decay (the original's convention, docs/algorithm.md#weight-decay): SGD, momentum, ` +
  `Adam, RMSprop and K-FAC minimize CE + ${wd.value}·Σ½‖w‖² over ${
    wd.excludeBatchNorm ? "all variables except batch norm" : "all variables"
  }; MLHF, HF(fixed) and HF(LM) minimize the cross-entropy only. The logged training loss is ` +
  `the cross-entropy alone for every optimizer.`;
