/**
 * Batch norm as the original's `tf.layers.batch_normalization(momentum=0.997, epsilon=1e-5,
 * fused=False)` (docs/algorithm.md#resnet-v2): train mode normalizes with the batch statistics
 * (what the loss and the curvature use, docs/algorithm.md#batch-norm-in-train-mode); inference mode
 * uses moving statistics, a value kept outside the parameters and updated by the pure
 * `updateMovingStats`.
 * @module
 */
import { tf } from "../lib/_deps.ts";
import { type Params, tidyTree, zipTree } from "../lib/tree.ts";
import type { Nn } from "../ops/nn.ts";
import { constant, type ParamFn, type Tagged } from "./init.ts";

/** `_BATCH_NORM_DECAY` of `resnet_model.py`. */
export const BN_MOMENTUM = 0.997;
/** `_BATCH_NORM_EPSILON` of `resnet_model.py`. */
export const BN_EPSILON = 1e-5;

/** A batch-norm layer's parameters (scale and center), each of shape [C]. */
export type BnParams = { readonly gamma: tf.Tensor; readonly beta: tf.Tensor };

/** Per-channel statistics, each of shape [C]: a batch's (train mode) or the moving ones. */
export type BnStats = { readonly mean: tf.Tensor; readonly variance: tf.Tensor };

/** Tagged BN parameters for C channels: gamma 1, beta 0 (TF's defaults). */
export const bnParams = (param: ParamFn, channels: number): { gamma: Tagged; beta: Tagged } => ({
  gamma: param("batch/gamma", [channels], constant(1)),
  beta: param("batch/beta", [channels], constant(0)),
});

/** Initial moving statistics for C channels: mean 0, variance 1 (TF's defaults). */
export const initBnStats = (channels: number): BnStats => ({
  mean: tf.zeros([channels]),
  variance: tf.ones([channels]),
});

/**
 * Train mode: normalizes with the batch's mean and (biased) variance over every axis but the last,
 * returning the output and those statistics.
 */
export const bnTrain = (nn: Nn, p: BnParams, x: tf.Tensor): { y: tf.Tensor; stats: BnStats } => {
  const { y, mean, variance } = nn.batchNormTrain(x, p.gamma, p.beta, BN_EPSILON);
  return { y, stats: { mean, variance } };
};

/** Inference mode: normalizes with given (moving) statistics, which carry no tangent. */
export const bnInference = (nn: Nn, p: BnParams, s: BnStats, x: tf.Tensor): tf.Tensor =>
  nn.batchNormInference(x, p.gamma, p.beta, s.mean, s.variance, BN_EPSILON);

/**
 * One moving-average step, as TF's `assign_moving_average`: moving ← moving − (1 − momentum)·
 * (moving − batch), i.e. momentum·moving + (1 − momentum)·batch, leaf by leaf. `batch` is the aux
 * output of a train-mode pass (shaped like the state); the batch variance is the biased one, as
 * unfused `tf.layers.batch_normalization` uses. Pure: returns a new state, disposes nothing.
 */
export const updateMovingStats = <S extends Params>(
  state: S,
  batch: Params,
  momentum = BN_MOMENTUM,
): S => {
  if (!(momentum >= 0 && momentum <= 1)) {
    throw new RangeError(`momentum must be in [0, 1], got ${momentum}`);
  }
  return tidyTree(() =>
    zipTree(state, batch, (m, b) => tf.sub(m, tf.mul(tf.sub(m, b), 1 - momentum)))
  );
};
