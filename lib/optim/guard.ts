/**
 * Non-finite guard: a step whose loss or gradient is NaN or ±∞ never reaches the parameters. The
 * update is zero, the inner state is kept, and the skip is counted in the state. The decision stays
 * on the device (`tf.where` on every tensor): no host read. Numbers in the inner state (a step
 * count) cannot be chosen on the device: they take the new step's values even on a skipped step.
 * @module
 */
import { tf } from "../_deps.ts";
import { mapTree, type Params } from "../tree.ts";
import { allFiniteFlag, type GradientTransformation, type UpdateContext } from "./base.ts";

/** The state of {@link skipNonFinite}: the inner state and the count of skipped steps. */
export interface GuardState<S> {
  /** The wrapped transformation's state. */
  readonly inner: S;
  /** Steps skipped so far for a non-finite loss or gradient (a float32 scalar). */
  readonly skipped: tf.Scalar;
}

/** A bool scalar: the loss (if given) and every gradient entry are finite. */
export const allFinite = (grads: Params, loss?: tf.Scalar): tf.Scalar => allFiniteFlag(grads, loss);

/** `next` where `ok`, else `prev`, tensor by tensor through any state value. */
const selectState = <T>(ok: tf.Scalar, next: T, prev: unknown): T => {
  if (next instanceof tf.Tensor) {
    return (prev instanceof tf.Tensor && prev !== next
      ? tf.where(ok, next, prev)
      : next) as unknown as T;
  }
  if (Array.isArray(next)) {
    return next.map((x, i) => selectState(ok, x, (prev as unknown[] | undefined)?.[i])) as T;
  }
  if (next && typeof next === "object") {
    const p = (prev ?? {}) as Record<string, unknown>;
    return Object.fromEntries(
      Object.entries(next).map(([k, v]) => [k, selectState(ok, v, p[k])]),
    ) as T;
  }
  return next;
};

/** Wraps a transformation so non-finite steps are skipped and counted. */
export const skipNonFinite = <S, P extends Params>(
  inner: GradientTransformation<S, P>,
): GradientTransformation<GuardState<S>, P> => ({
  init: (p) => ({ inner: inner.init(p), skipped: tf.scalar(0) }),
  update: (g, state, ctx) => {
    const ok = allFinite(g, ctx.loss ?? ctx.curvature?.loss);
    const [u, s] = inner.update(g, state.inner, ctx);
    // `where` selects, so a NaN update never passes (0 · NaN would).
    const updates = mapTree(u, (x) => tf.where(ok, x, tf.zerosLike(x)));
    return [updates, {
      inner: selectState(ok, s, state.inner),
      skipped: tf.add(state.skipped, tf.cast(tf.logicalNot(ok), "float32")) as tf.Scalar,
    }];
  },
  ...(inner.prepare
    ? {
      prepare: async (state: GuardState<S>, ctx: UpdateContext<P>) => ({
        ...state,
        inner: await inner.prepare!(state.inner, ctx),
      }),
    }
    : {}),
});
