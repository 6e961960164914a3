/**
 * The common model interface and parameter kinds (docs/algorithm.md#parameter-kinds). A model is
 * written once against the DSL (`ops/nn.ts`), so it has a plain forward pass and an R-forward pass;
 * its `init` returns the parameters together with an explicit kind tag per parameter tensor (a tree
 * of the same structure), never parsed from a name, plus the batch-norm moving statistics (its
 * `state`).
 * @module
 */
import { tf } from "../lib/_deps.ts";
import type { Key } from "../lib/prng.ts";
import { leaves, leavesOf, type Params, type Tree } from "../lib/tree.ts";
import type { ModelOutput } from "../ops/interpret.ts";
import type { Nn } from "../ops/nn.ts";
import type { ModelFn } from "../lib/curvature/gauss_newton.ts";

/**
 * Parameter kinds are shared with the meta-networks (one LSTM pair per kind,
 * docs/algorithm.md#parameter-kinds).
 */
import { isParamKind, PARAM_KINDS, type ParamKind } from "../lib/param_kinds.ts";
export { isParamKind, PARAM_KINDS, type ParamKind } from "../lib/param_kinds.ts";

/** A tree of kinds with the structure of the parameter tree P (one kind per tensor leaf). */
export type KindTree<P> = P extends tf.Tensor ? ParamKind
  : P extends readonly (infer E)[] ? KindTree<E>[]
  : { readonly [K in keyof P]: KindTree<P[K]> };

/** The kinds of a kind tree in leaf order, aligned with `leaves(params)`. */
export const kindLeaves = (kinds: Tree<ParamKind>): ParamKind[] => leavesOf(kinds, isParamKind);

/** Number of scalar parameters per kind (kinds absent from the model count 0). */
export const countByKind = (params: Params, kinds: Tree<ParamKind>): Record<ParamKind, number> => {
  const ps = leaves(params), ks = kindLeaves(kinds);
  if (ps.length !== ks.length) {
    throw new RangeError(`${ps.length} parameter leaves but ${ks.length} kinds`);
  }
  const out = Object.fromEntries(PARAM_KINDS.map((k) => [k, 0])) as Record<ParamKind, number>;
  ps.forEach((p, i) => (out[ks[i]] += p.size));
  return out;
};

/** Spatial input shape [height, width, channels] (NHWC without the batch axis). */
export type InputShape = readonly [number, number, number];

/** Hidden-layer nonlinearity. ReLU is the original's; tanh gives smooth variants for FD checks. */
export type Activation = "relu" | "sigmoid" | "tanh";

/** Applies a named activation through the DSL. */
export const activate = (nn: Nn, act: Activation, x: tf.Tensor): tf.Tensor => nn[act](x);

/** What `init` returns. The caller owns (and disposes) `params` and `state`. */
export interface Initialized<P extends Params, S extends Params> {
  /** The parameters. */
  readonly params: P;
  /** One kind per parameter tensor, same structure as `params`. */
  readonly kinds: KindTree<P>;
  /** Batch-norm moving statistics (`{}` for models without batch norm); not parameters. */
  readonly state: S;
}

/** A model written once against the DSL. */
export interface Model<P extends Params, S extends Params> {
  /** The model's name (in logs and reports). */
  readonly name: string;
  /** Outputs (the logits' last dimension). */
  readonly numClasses: number;
  /** Deterministic parameters from a key (bit-identical for the same key and input shape). */
  init(key: Key, inputShape: InputShape): Initialized<P, S>;
  /**
   * Train mode (what the curvature uses): logits, or `{ output: logits, aux: batch statistics }`
   * with `aux` shaped like the state, for `updateMovingStats`.
   */
  readonly apply: ModelFn<P>;
  /** Inference mode: batch norm uses the moving statistics in `state`. */
  applyInference(nn: Nn, params: P, state: S, x: tf.Tensor): tf.Tensor;
}

/** Models without batch norm have an empty state. */
export type NoState = Record<string, never>;

/** The logits of a model output. */
export const logitsOf = (out: ModelOutput): tf.Tensor =>
  out instanceof tf.Tensor ? out : out.output;
