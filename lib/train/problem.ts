/**
 * From names to objects for `deno task eval`: the training problem (model, training and test
 * sources, weight-decay convention) and MLHF's meta-weights (a file, or untrained ones).
 * @module
 */
import { FlagError } from "../cli/flags.ts";
import { exists } from "../run/files.ts";
import { openSource } from "../data/dataset.ts";
import type { DatasetName } from "../data/dataset.ts";
import type { Source } from "../data/source.ts";
import { headerOptions, loadMetaWeights } from "../meta/meta_weights_file.ts";
import {
  defaultKindMap,
  describeKindMap,
  type KindMap,
  mapMetaWeightKinds,
} from "../optim/mlhf/kind_map.ts";
import { initMetaWeights, metaWeightTensors } from "../optim/mlhf/meta_weights.ts";
import { nonFinitePath } from "../optim/finite.ts";
import { tf } from "../_deps.ts";
import { MLHF_DEFAULTS } from "../optim/mlhf/direction.ts";
import { isParamKind, type ParamKind } from "../param_kinds.ts";
import { keyFromSeed } from "../prng.ts";
import { type AnyModel, EVAL_SPLITS, makeModel, type ModelName } from "./models.ts";
import type { MetaWeightsSource } from "./optimizers.ts";
import { type WeightDecay, weightDecayFor } from "./weight_decay.ts";

/** What every run of a comparison trains and tests on. */
export interface Problem {
  readonly modelName: string;
  readonly model: AnyModel;
  readonly dataset: string;
  readonly train: Source<unknown>;
  readonly test: Source<unknown>;
  /** Training examples per epoch, when cheap to count (not ImageNet). */
  readonly examplesPerEpoch?: number;
  /** The data set and split `train` is (for messages naming them). */
  readonly trainSplit?: { readonly dataset: DatasetName; readonly split: string };
  readonly weightDecay: WeightDecay;
  /** Releases the sources' files. */
  close(): Promise<void>;
}

/** Counts a source's examples by walking its ids (no decoding). */
export const countExamples = async (source: Source<unknown>): Promise<number> => {
  let n = 0;
  for await (const _ of source.ids(0, keyFromSeed(0))) n++;
  return n;
};

/** Opens the model and the evaluation splits of a data set. */
export const openProblem = async (
  modelName: ModelName,
  dataset: DatasetName,
  { dataDir, skipCorrupt }: { readonly dataDir?: string; readonly skipCorrupt?: boolean } = {},
): Promise<Problem> => {
  const splits = EVAL_SPLITS[dataset];
  const train = await openSource({ dataset, split: splits.train, dataDir, skipCorrupt });
  const test = await openSource({ dataset, split: splits.test, dataDir, skipCorrupt });
  return {
    modelName,
    model: makeModel(modelName, train.numClasses),
    dataset: `${dataset} (train: ${train.name}, test: ${test.name})`,
    train,
    test,
    examplesPerEpoch: dataset === "imagenet" ? undefined : await countExamples(train),
    trainSplit: { dataset, split: splits.train },
    weightDecay: weightDecayFor(dataset),
    close: async () => {
      await train.close?.();
      await test.close?.();
    },
  };
};

/** The number recorded as meta-training's η, if the header has one. */
const trainedLr = (training: Record<string, unknown> | undefined): number | undefined => {
  const lr = training?.lr ?? training?.learningRate;
  return typeof lr === "number" && Number.isFinite(lr) && lr > 0 ? lr : undefined;
};

/**
 * MLHF's meta-weights: `"untrained"` gives fresh ones from the seed; a path is loaded. A missing
 * file is an error when `required` (with the `missing` message if given), otherwise null (the
 * caller substitutes HF). Weights holding a NaN or ±∞ are an error naming the tensor. Given the
 * model's `kinds`, a kind the file has no networks for and the explicit `kindMap` does not name
 * gets the default transfer (`defaultKindMap`), returned as `defaultTransfer` for the caller to
 * print.
 */
export const resolveMetaWeights = async (
  spec: string,
  { seed, required, kindMap = [], kinds = [], missing }: {
    readonly seed: number;
    readonly required: boolean;
    /** Transfer: kinds that use another kind's networks (`--meta-kind-map`). */
    readonly kindMap?: KindMap;
    /** The model's parameter kinds (for the default transfer of kinds the file lacks). */
    readonly kinds?: readonly ParamKind[];
    /** The error message when the file does not exist (say why, and how to make it). */
    readonly missing?: string;
  },
): Promise<MetaWeightsSource | null> => {
  const mapped = kindMap.length ? `, kinds mapped ${describeKindMap(kindMap)}` : "";
  if (spec === "untrained") {
    return {
      weights: mapMetaWeightKinds(initMetaWeights(keyFromSeed(seed), MLHF_DEFAULTS), kindMap),
      options: {},
      description: `untrained meta-weights (glorot init from seed ${seed}${mapped})`,
    };
  }
  if (!(await exists(spec))) {
    if (!required) return null;
    if (missing) throw new Error(missing);
  }
  const file = await loadMetaWeights(spec);
  const bad = await nonFinitePath(file.weights);
  if (bad !== null) {
    tf.dispose(metaWeightTensors(file.weights));
    throw new Error(`${spec}: meta-weight ${bad} is not finite (NaN or ±∞): unusable by MLHF`);
  }
  let weights;
  try {
    weights = mapMetaWeightKinds(file.weights, kindMap);
  } catch (e) {
    tf.dispose(metaWeightTensors(file.weights));
    throw new FlagError(`--meta-kind-map: ${spec}: ${(e as Error).message}`);
  }
  const trained = Object.keys(file.weights).filter(isParamKind);
  const defaults = defaultKindMap(trained, kinds, kindMap);
  weights = mapMetaWeightKinds(weights, defaults);
  const transfer = defaults.length ? `, default transfer ${describeKindMap(defaults)}` : "";
  return {
    weights,
    options: headerOptions(file.header),
    trainedLearningRate: trainedLr(file.header.training),
    description: `meta-weights ${spec} (trained with ${
      JSON.stringify(file.header.options)
    }${mapped}${transfer})`,
    defaultTransfer: defaults,
  };
};
