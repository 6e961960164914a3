/**
 * Non-finite guard: a step whose loss or gradient is NaN or ±∞ never reaches the parameters. The
 * update is zero, the inner state is kept, and the skip is counted in the state.
 * @module
 */
import { tf } from "../_deps.ts";
import { type Params, zerosLike } from "../tree.ts";
import { allFiniteTensors, type GradientTransformation } from "./base.ts";

/** The state of {@link skipNonFinite}: the inner state and the count of skipped steps. */
export interface GuardState<S> {
  /** The wrapped transformation's state. */
  readonly inner: S;
  /** Steps skipped so far for a non-finite loss or gradient. */
  readonly skipped: number;
}

/** True when the loss (if given) and every gradient entry are finite. */
export const allFinite = (grads: Params, loss?: tf.Scalar): boolean =>
  allFiniteTensors(grads, loss);

/** Wraps a transformation so non-finite steps are skipped and counted. */
export const skipNonFinite = <S, P extends Params>(
  inner: GradientTransformation<S, P>,
): GradientTransformation<GuardState<S>, P> => ({
  init: (p) => ({ inner: inner.init(p), skipped: 0 }),
  update: (g, state, ctx) => {
    if (!allFinite(g, ctx.loss ?? ctx.curvature?.loss)) {
      return [zerosLike(g), { inner: state.inner, skipped: state.skipped + 1 }];
    }
    const [u, s] = inner.update(g, state.inner, ctx);
    return [u, { inner: s, skipped: state.skipped }];
  },
});
