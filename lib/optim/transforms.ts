/**
 * First-order building blocks (optax's scale_by_* family), each with its state type beside it.
 * Conventions follow TF.js's `tf.train` optimizers (and TF 1.x), so the aliases in `alias.ts`
 * reproduce `tf.train.sgd/momentum/adam/rmsprop` trajectories (tested in `alias_test.ts`).
 * @module
 */
import { tf } from "../_deps.ts";
import { addScaled, mapTree, type Params, scale, zerosLike, zipTree } from "../tree.ts";
import type { GradientTransformation } from "./base.ts";

/** No state. */
export type EmptyState = Record<never, never>;

/** u ↦ s·u. */
export const scaleBy = <P extends Params>(s: number): GradientTransformation<EmptyState, P> => ({
  init: () => ({}),
  update: (u, state) => [scale(u, s), state],
});

/** u ↦ −η·u: turns a direction into a descent update. */
export const scaleByLearningRate = <P extends Params>(
  lr: number | ((step: number) => number),
): GradientTransformation<{ step: number }, P> => ({
  init: () => ({ step: 0 }),
  update: (u, { step }) => [
    scale(u, -(typeof lr === "number" ? lr : lr(step))),
    { step: step + 1 },
  ],
});

/** A piecewise-constant schedule: `values[i]` until `boundaries[i]` (steps), then the next. */
export const piecewiseConstant = (
  boundaries: readonly number[],
  values: readonly number[],
): (step: number) => number => {
  if (values.length !== boundaries.length + 1) {
    throw new RangeError("piecewiseConstant: values must have one more entry than boundaries");
  }
  return (step: number): number => {
    const i = boundaries.findIndex((b) => step < b);
    return values[i < 0 ? values.length - 1 : i];
  };
};

/**
 * Adds the gradient of wd·Σ½‖w‖² (the baselines' weight decay, docs/algorithm.md#weight-decay):
 * u ↦ u + wd·θ.
 */
export const addDecayedWeights = <P extends Params>(
  wd: number,
  mask?: (leafIndex: number) => boolean,
): GradientTransformation<EmptyState, P> => ({
  init: () => ({}),
  update: (u, state, { params }) => [
    zipTree(u, params, (g, p, i) => (mask && !mask(i) ? g : tf.add(g, tf.mul(p, wd)))),
    state,
  ],
});

/** The state of {@link trace}. */
export interface TraceState<P extends Params> {
  /** a, the accumulated updates. */
  readonly trace: P;
}
/** Momentum accumulator (TF's MomentumOptimizer): a ← μ·a + u; returns a. */
export const trace = <P extends Params>(
  momentum: number,
): GradientTransformation<TraceState<P>, P> => ({
  init: (p) => ({ trace: zerosLike(p) }),
  update: (u, { trace: a }) => {
    const next = zipTree(a, u, (t, g) => tf.add(tf.mul(t, momentum), g));
    return [next, { trace: next }];
  },
});

/** The state of {@link scaleByAdam}. */
export interface AdamState<P extends Params> {
  /** Steps taken. */
  readonly count: number;
  /** m, the first moment's moving average. */
  readonly mu: P;
  /** v, the second moment's moving average. */
  readonly nu: P;
}
/**
 * Adam's direction m̂/(√v̂ + ε) (TF.js AdamOptimizer: bias correction by accumulated β powers); the
 * learning rate is applied afterwards.
 */
export const scaleByAdam = <P extends Params>(
  { beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8 } = {},
): GradientTransformation<AdamState<P>, P> => ({
  init: (p) => ({ count: 0, mu: zerosLike(p), nu: zerosLike(p) }),
  update: (u, { count, mu, nu }) => {
    const t = count + 1;
    const mu2 = zipTree(mu, u, (m, g) => tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1)));
    const nu2 = zipTree(nu, u, (v, g) => tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2)));
    const c1 = 1 - beta1 ** t, c2 = 1 - beta2 ** t;
    const dir = zipTree(
      mu2,
      nu2,
      (m, v) => tf.div(tf.div(m, c1), tf.add(tf.sqrt(tf.div(v, c2)), epsilon)),
    );
    return [dir, { count: t, mu: mu2, nu: nu2 }];
  },
});

/** The state of {@link scaleByRms}. */
export interface RmsState<P extends Params> {
  /** ms, the moving average of g². */
  readonly meanSquare: P;
  /** mom, the momentum of the scaled gradients. */
  readonly moment: P;
}
/**
 * RMSprop (TF's RMSPropOptimizer, not centered): ms ← ρ·ms + (1−ρ)g²; mom ← μ·mom + g/√(ms + ε);
 * returns mom (the learning rate is applied afterwards). TF 1.x initializes ms to ones (the
 * original's baselines); TF.js initializes it to zeros: `initialMeanSquare` picks.
 */
export const scaleByRms = <P extends Params>(
  { decay = 0.9, momentum = 0, epsilon = 1e-10, initialMeanSquare = 1 } = {},
): GradientTransformation<RmsState<P>, P> => ({
  init: (p) => ({
    meanSquare: mapTree(p, (x) => tf.fill(x.shape, initialMeanSquare)),
    moment: zerosLike(p),
  }),
  update: (u, { meanSquare, moment }) => {
    const ms = zipTree(
      meanSquare,
      u,
      (s, g) => tf.add(tf.mul(s, decay), tf.mul(tf.square(g), 1 - decay)),
    );
    const scaled = zipTree(u, ms, (g, s) => tf.div(g, tf.sqrt(tf.add(s, epsilon))));
    const mom = momentum === 0 ? scaled : addScaled(scaled, momentum, moment);
    return [mom, { meanSquare: ms, moment: mom }];
  },
});
