/**
 * Parameter initializers, all drawn from `lib/prng.ts` (so a key gives bit-identical parameters on
 * every backend), and the tagging that pairs every parameter tensor with its kind.
 *
 * TF conventions reproduced: `_compute_fans` for fan-in/fan-out; `variance_scaling_initializer()`
 * (fan-in, "normal" = truncated normal at ±2 std, std = sqrt(scale/fan_in)/0.87962566103423978 so
 * the truncated samples have std sqrt(scale/fan_in)); glorot uniform (the default kernel
 * initializer of `tf.layers`).
 * @module
 */
import { tf } from "../lib/_deps.ts";
import { foldIn, type Key, normal, truncatedNormal, uniform } from "../lib/prng.ts";
import { leavesOf, type Params, type Tree, unflattenAs } from "../lib/tree.ts";
import type { KindTree, ParamKind } from "./types.ts";

/** A tensor shape. */
export type Shape = readonly number[];

/** An initializer: a tensor of `shape` drawn from `key` (constants ignore the key). */
export type Init = (key: Key, shape: Shape) => tf.Tensor;

/** Std of N(0, 1) truncated to [−2, 2] (`scipy.stats.truncnorm.std(-2, 2)`, TF's constant). */
export const TRUNCATED_NORMAL_STD = 0.87962566103423978;

const numel = (shape: Shape): number => shape.reduce((a, b) => a * b, 1);

/** TF's `_compute_fans`: [fan_in, fan_out], a kernel's receptive field times its in/out channels. */
export const fans = (shape: Shape): readonly [number, number] => {
  if (shape.length === 0) return [1, 1];
  if (shape.length === 1) return [shape[0], shape[0]];
  const receptive = numel(shape.slice(0, -2));
  return [shape[shape.length - 2] * receptive, shape[shape.length - 1] * receptive];
};

/** N(mean, std²), not truncated (`tf.random_normal_initializer`). */
export const randomNormal = (std: number, mean = 0): Init => (key, shape) =>
  tf.tensor(normal(key, numel(shape), mean, std), [...shape]);

/** Every element equal to `value` (`tf.constant_initializer`, `zeros`, `ones`). */
export const constant = (value: number): Init => (_key, shape) => tf.fill([...shape], value);

/** The std of `varianceScaling(scale)` samples for a shape: sqrt(scale / fan_in). */
export const varianceScalingStd = (shape: Shape, scale = 1): number =>
  Math.sqrt(scale / fans(shape)[0]);

/**
 * `tf.variance_scaling_initializer(scale, mode="fan_in", distribution="normal")`: truncated normal
 * with parameter sqrt(scale/fan_in)/0.8796…, so the samples' std is sqrt(scale/fan_in).
 * TF's default scale is 1.0 (what `resnet_model.py` uses).
 */
export const varianceScaling = (scale = 1): Init => (key, shape) =>
  tf.tensor(
    truncatedNormal(key, numel(shape), 0, varianceScalingStd(shape, scale) / TRUNCATED_NORMAL_STD),
    [...shape],
  );

/** The bound of `glorotUniform` for a shape: sqrt(6 / (fan_in + fan_out)). */
export const glorotLimit = (shape: Shape): number => {
  const [fanIn, fanOut] = fans(shape);
  return Math.sqrt(6 / (fanIn + fanOut));
};

/** U(−limit, limit) with limit = sqrt(6/(fan_in + fan_out)) (TF's default kernel initializer). */
export const glorotUniform: Init = (key, shape): tf.Tensor => {
  const limit = glorotLimit(shape);
  return tf.tensor(uniform(key, numel(shape), -limit, limit), [...shape]);
};

/** A parameter tensor with its kind, as built during `init`. */
export interface Tagged {
  /** The parameter tensor. */
  readonly value: tf.Tensor;
  /** Its kind. */
  readonly kind: ParamKind;
}

/** A tree of tagged leaves with the structure of the parameter tree P. */
export type TaggedTree<P> = P extends tf.Tensor ? Tagged
  : P extends readonly (infer E)[] ? TaggedTree<E>[]
  : { readonly [K in keyof P]: TaggedTree<P[K]> };

const isTagged = (x: unknown): boolean =>
  typeof x === "object" && x !== null && (x as Tagged).value instanceof tf.Tensor &&
  typeof (x as Tagged).kind === "string";

/** Splits a tagged tree into the parameter tree and the kind tree (same structure). */
export const untag = <P extends Params>(tree: TaggedTree<P>): { params: P; kinds: KindTree<P> } => {
  const t = tree as unknown as Tree<Tagged>;
  const ls = leavesOf(t, isTagged);
  return {
    params: unflattenAs(t, ls.map((l) => l.value), isTagged) as unknown as P,
    kinds: unflattenAs(t, ls.map((l) => l.kind), isTagged) as unknown as KindTree<P>,
  };
};

/** Makes one tagged parameter tensor. */
export type ParamFn = (kind: ParamKind, shape: Shape, init: Init) => Tagged;

/**
 * A source of parameters: each call draws the next key of a deterministic sequence derived from
 * `key` and returns the tagged tensor. Parameters are therefore a pure function of (key, order).
 */
export const paramSource = (key: Key): ParamFn => {
  let i = 0;
  return (kind, shape, init) => ({ value: init(foldIn(key, i++), shape), kind });
};
