/**
 * Pre-activation ResNet v2 as in the MLHF fork's `resnet_model.py` (unfused batch norm;
 * docs/algorithm.md#resnet-v2). A building block is BN-ReLU → [1×1 projection shortcut on the first
 * block of every stage, applied to the BN-ReLU output] → conv3×3(stride) → BN-ReLU → conv3×3, plus
 * the shortcut. Convs have no bias; stride-2 convs pad explicitly (`fixed_padding`) then run VALID.
 * The head is BN-ReLU → global mean pool (the original's 8×8 / 7×7 VALID average pool, equal at the
 * original input sizes) → dense.
 *
 * Initializers as in `resnet_model.py`: convs `tf.variance_scaling_initializer()` (fan-in, scale
 * 1.0, truncated normal; see `models/init.ts`), the dense layer `tf.layers.dense`'s defaults
 * (glorot-uniform kernel, zero bias), BN gamma 1 and beta 0, moving mean 0 and variance 1.
 * @module
 */
import type { tf } from "../lib/_deps.ts";
import type { Nn } from "../ops/nn.ts";
import { constant, glorotUniform, paramSource, untag, varianceScaling } from "./init.ts";
import { conv2dFixedPadding, dense, type DenseParams, denseParams } from "./layers.ts";
import {
  bnInference,
  type BnParams,
  bnParams,
  type BnStats,
  bnTrain,
  initBnStats,
} from "./batch_norm_state.ts";
import { activate, type Activation, type InputShape, type Model } from "./types.ts";

/** One building block's parameters. */
export type BlockParams = {
  readonly bn1: BnParams;
  readonly conv1: tf.Tensor;
  readonly bn2: BnParams;
  readonly conv2: tf.Tensor;
};

/** One stage: the first block's 1×1 projection-shortcut kernel, then the blocks. */
export type StageParams = { readonly shortcut: tf.Tensor; readonly blocks: BlockParams[] };

/** A ResNet v2's parameters. */
export type ResNetParams = {
  readonly stem: tf.Tensor;
  readonly stages: StageParams[];
  readonly bnFinal: BnParams;
  readonly dense: DenseParams;
};

/** One block's batch-norm statistics. */
export type BlockStats = { readonly bn1: BnStats; readonly bn2: BnStats };

/**
 * A ResNet's batch-norm statistics: the moving ones (its state) or one batch's (the aux output of
 * train mode), indexed [stage][block].
 */
export type ResNetState = { readonly stages: BlockStats[][]; readonly bnFinal: BnStats };

/** A ResNet v2 architecture. */
export interface ResNetConfig {
  /** The model's name (e.g. `resnet20`). */
  readonly name: string;
  /** Outputs. */
  readonly numClasses: number;
  /** Stem conv: kernel size and stride (filters = filters[0]), then an optional 3×3/2 max-pool. */
  readonly stem: { readonly kernel: number; readonly stride: number; readonly maxPool: boolean };
  /** Per stage: its number of blocks. */
  readonly blocks: readonly number[];
  /** Per stage: its filters. */
  readonly filters: readonly number[];
  /** Per stage: the first block's stride. */
  readonly strides: readonly number[];
  /** "relu" as in the original; "tanh" gives a smooth variant for derivative checks. */
  readonly activation: Activation;
  /**
   * Scale of the convs' variance-scaling init: 1.0 is `tf.variance_scaling_initializer()`'s
   * default, which `resnet_model.py` uses; 2.0 would be He init.
   */
  readonly convInitScale: number;
}

/** Normalizes x with a layer's parameters; `moving` is the state's statistics for that layer. */
type Norm = (x: tf.Tensor, p: BnParams, moving: BnStats | null) => {
  y: tf.Tensor;
  stats: BnStats;
};

/** The forward pass, shared by both modes; returns the logits and every layer's statistics. */
const forward = (
  nn: Nn,
  cfg: ResNetConfig,
  p: ResNetParams,
  state: ResNetState | null,
  x: tf.Tensor,
  norm: Norm,
): { logits: tf.Tensor; stats: ResNetState } => {
  const bnAct = (h: tf.Tensor, bp: BnParams, moving: BnStats | null) => {
    const { y, stats } = norm(h, bp, moving);
    return { y: activate(nn, cfg.activation, y), stats };
  };
  let h = conv2dFixedPadding(nn, x, p.stem, cfg.stem.stride);
  if (cfg.stem.maxPool) h = nn.maxPool(h, 3, { strides: 2, padding: "same" });
  const stages = p.stages.map((stage, s) =>
    stage.blocks.map((b, i): BlockStats => {
      const moving = state ? state.stages[s][i] : null;
      const stride = i === 0 ? cfg.strides[s] : 1;
      const pre = bnAct(h, b.bn1, moving && moving.bn1);
      const shortcut = i === 0 ? conv2dFixedPadding(nn, pre.y, stage.shortcut, stride) : h;
      const mid = bnAct(
        conv2dFixedPadding(nn, pre.y, b.conv1, stride),
        b.bn2,
        moving && moving.bn2,
      );
      h = nn.add(conv2dFixedPadding(nn, mid.y, b.conv2, 1), shortcut);
      return { bn1: pre.stats, bn2: mid.stats };
    })
  );
  const fin = bnAct(h, p.bnFinal, state && state.bnFinal);
  const logits = dense(nn, p.dense, nn.globalMeanPool(fin.y));
  return { logits, stats: { stages, bnFinal: fin.stats } };
};

/** A ResNet v2 from its architecture. */
export const resnetV2 = (cfg: ResNetConfig): Model<ResNetParams, ResNetState> => {
  const n = cfg.blocks.length;
  if (cfg.filters.length !== n || cfg.strides.length !== n) {
    throw new RangeError("resnetV2: blocks, filters and strides need one entry per stage");
  }
  if (cfg.blocks.some((b) => !(Number.isInteger(b) && b >= 1))) {
    throw new RangeError(`resnetV2: every stage needs ≥ 1 block, got [${cfg.blocks}]`);
  }
  return {
    name: cfg.name,
    numClasses: cfg.numClasses,
    init: (key, [, , c]: InputShape) => {
      const param = paramSource(key);
      const vs = varianceScaling(cfg.convInitScale);
      const conv = (k: number, cin: number, cout: number) =>
        param("conv2d/kernel", [k, k, cin, cout], vs);
      const stem = conv(cfg.stem.kernel, c, cfg.filters[0]);
      let cin = cfg.filters[0];
      const stages = [], stageStats: BlockStats[][] = [];
      for (const [s, f] of cfg.filters.entries()) {
        const shortcut = conv(1, cin, f);
        const ins = Array.from({ length: cfg.blocks[s] }, (_, i) => (i === 0 ? cin : f));
        const blocks = ins.map((ci) => ({
          bn1: bnParams(param, ci),
          conv1: conv(3, ci, f),
          bn2: bnParams(param, f),
          conv2: conv(3, f, f),
        }));
        stages.push({ shortcut, blocks });
        stageStats.push(ins.map((ci) => ({ bn1: initBnStats(ci), bn2: initBnStats(f) })));
        cin = f;
      }
      const bnFinal = bnParams(param, cin);
      const head = denseParams(param, cin, cfg.numClasses, glorotUniform, constant(0));
      const state: ResNetState = { stages: stageStats, bnFinal: initBnStats(cin) };
      return { ...untag<ResNetParams>({ stem, stages, bnFinal, dense: head }), state };
    },
    apply: (nn, p, x) => {
      const train: Norm = (h, bp) => bnTrain(nn, bp, h);
      const { logits, stats } = forward(nn, cfg, p, null, x, train);
      return { output: logits, aux: stats as unknown as tf.TensorContainer };
    },
    applyInference: (nn, p, state, x) => {
      const inference: Norm = (h, bp, moving) => {
        if (!moving) throw new Error("resnetV2: missing moving statistics");
        return { y: bnInference(nn, bp, moving, h), stats: moving };
      };
      return forward(nn, cfg, p, state, x, inference).logits;
    },
  };
};

/** Options of the named ResNets. Smaller filters and other activations serve tests. */
export interface ResNetOptions {
  /** Outputs (default 10 for the CIFAR ResNets, 1001 for ResNet-18). */
  readonly numClasses?: number;
  /** Filters per stage (the stem uses filters[0]). */
  readonly filters?: readonly number[];
  /** Activation (default "relu", as the original). */
  readonly activation?: Activation;
  /** Variance-scaling scale of the conv kernels (default 1.0, as the original). */
  readonly convInitScale?: number;
}

/** The CIFAR ResNet v2 of depth 6n + 2 (20, 32, 56, …): 3 stages of n blocks, strides 1/2/2. */
export const resnetV2Cifar = (
  opts: ResNetOptions & { readonly depth: number },
): Model<ResNetParams, ResNetState> => {
  const { depth, numClasses = 10, filters = [16, 32, 64], activation = "relu" } = opts;
  const { convInitScale = 1 } = opts;
  if (!(Number.isInteger(depth) && depth >= 8 && depth % 6 === 2)) {
    throw new RangeError(`resnetV2Cifar: depth must be 6n + 2 with n ≥ 1, got ${depth}`);
  }
  const n = (depth - 2) / 6;
  return resnetV2({
    name: `resnetV2Cifar${depth}`,
    numClasses,
    stem: { kernel: 3, stride: 1, maxPool: false },
    blocks: [n, n, n],
    filters,
    strides: [1, 2, 2],
    activation,
    convInitScale,
  });
};

/** ResNet-18 v2 for ImageNet: conv 7×7/2, max-pool 3×3/2, 4 stages of 2 blocks, 1001 classes. */
export const resnet18V2ImageNet = (opts: ResNetOptions = {}): Model<ResNetParams, ResNetState> => {
  const { numClasses = 1001, filters = [64, 128, 256, 512], activation = "relu" } = opts;
  const { convInitScale = 1 } = opts;
  return resnetV2({
    name: "resnet18V2ImageNet",
    numClasses,
    stem: { kernel: 7, stride: 2, maxPool: true },
    blocks: [2, 2, 2, 2],
    filters,
    strides: [1, 2, 2, 2],
    activation,
    convInitScale,
  });
};
