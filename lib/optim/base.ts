/**
 * One optimizer interface for every method (optax's GradientTransformation): a pure pair
 * `init(params) → state` and `update(updates, state, ctx) → [updates, state]`. State is a value
 * (tensors and numbers), never hidden in an object; `ctx` carries what second-order methods need.
 * Updates are *added* to the parameters (`applyUpdates`), so a descent step returns −η·direction.
 * @module
 */
import { tf } from "../_deps.ts";
import { add, type Params } from "../tree.ts";
import type { Batch, GaussNewton, ModelFn } from "../curvature/gauss_newton.ts";
import type { Loss } from "../../ops/losses.ts";
import type { Key } from "../prng.ts";

/** What an update may use besides the gradient. First-order methods ignore all of it. */
export interface UpdateContext<P extends Params = Params> {
  /** The current parameters θ_t. */
  readonly params: P;
  /** The minibatch the gradient was computed on. */
  readonly batch?: Batch;
  /** L(θ_t; B_t). */
  readonly loss?: tf.Scalar;
  /**
   * The curvature at (θ_t, B_t) (gradient, G·v): built once per step by the caller, who disposes
   * it after the update. Second-order methods require it.
   */
  readonly curvature?: GaussNewton<P>;
  /** The model and loss, for methods that evaluate the loss elsewhere (LM's ρ on the last batch). */
  readonly model?: ModelFn<P>;
  /** The loss, with `model`. */
  readonly lossFn?: Loss;
  /** A PRNG key for this step (noise, sampled targets). */
  readonly key?: Key;
}

/** A gradient transformation with state S. */
export interface GradientTransformation<S, P extends Params = Params> {
  /** The initial state for `params`. */
  init(params: P): S;
  /**
   * Transforms `updates` (the gradient, or the previous transformation's output in a chain) into
   * the step's updates, and returns them with the next state.
   */
  update(updates: P, state: S, ctx: UpdateContext<P>): [P, S];
  /**
   * Optional host work that `update` needs before it runs and that must read the device (K-FAC's
   * float64 factor inversions), done with asynchronous reads: the training step awaits it with the
   * update's context and passes the state it returns to `update`, which then reads nothing (webgpu
   * under Deno has no synchronous read). A caller that skips it gets `update`'s own fallback.
   */
  prepare?(state: S, ctx: UpdateContext<P>): Promise<S>;
  /**
   * Optional per-step numbers for the log (e.g. MLHF's safeguard: `rejected`, `mu`), as scalar
   * tensors taken from the state `update` returned: the training step reads them in the same host
   * read as the loss, so they cost no extra sync. The tensors belong to the state.
   */
  diagnostics?(state: S): Readonly<Record<string, tf.Scalar>>;
}

/** θ + u. */
export const applyUpdates = <P extends Params>(params: P, updates: P): P => add(params, updates);

/** Chains transformations: each one's output updates feed the next; the state is the tuple. */
export const chain = <P extends Params>(
  // deno-lint-ignore no-explicit-any
  ...ts: GradientTransformation<any, P>[]
): GradientTransformation<unknown[], P> => ({
  init: (params) => ts.map((t) => t.init(params)),
  update: (updates, state, ctx) => {
    if (!Array.isArray(state) || state.length !== ts.length) {
      throw new Error(
        `chain: state has ${
          Array.isArray(state) ? state.length : "no"
        } entries for ${ts.length} transformations; call init first`,
      );
    }
    let u = updates;
    const next = ts.map((t, i) => {
      const [nu, ns] = t.update(u, state[i], ctx);
      u = nu;
      return ns;
    });
    return [u, next];
  },
  ...(ts.some((t) => t.prepare)
    ? {
      prepare: async (state: unknown[], ctx: UpdateContext<P>) => {
        const next: unknown[] = [];
        for (const [i, t] of ts.entries()) {
          next.push(t.prepare ? await t.prepare(state[i], ctx) : state[i]);
        }
        return next;
      },
    }
    : {}),
  ...(ts.some((t) => t.diagnostics)
    ? {
      diagnostics: (state: unknown[]) =>
        Object.assign({}, ...ts.map((t, i) => t.diagnostics?.(state[i]) ?? {})),
    }
    : {}),
});

/** Every tensor inside a state value (for disposal and leak checks). */
export const stateTensors = (s: unknown): tf.Tensor[] => {
  const out: tf.Tensor[] = [];
  const walk = (x: unknown): void => {
    if (x instanceof tf.Tensor) out.push(x);
    else if (Array.isArray(x)) x.forEach(walk);
    else if (x && typeof x === "object") Object.values(x).forEach(walk);
  };
  walk(s);
  return out;
};

/**
 * True when every float32 tensor inside the values (trees, states, scalars) is finite: one
 * device-side reduction, read with one `await`.
 */
export const allFiniteTensors = async (...values: unknown[]): Promise<boolean> => {
  const flag = allFiniteFlag(...values);
  try {
    return (await flag.data())[0] === 1;
  } finally {
    flag.dispose();
  }
};

/** A bool scalar on the device: every float32 entry inside the values is finite (no NaN, ±∞). */
export const allFiniteFlag = (...values: unknown[]): tf.Scalar =>
  tf.tidy(() => {
    const alls = values.flatMap((v) => stateTensors(v)).filter((t) => t.dtype === "float32")
      .map((t) => tf.all(tf.isFinite(t)));
    return (alls.length ? tf.all(tf.stack(alls)) : tf.scalar(true, "bool")) as tf.Scalar;
  });

/** Disposes every tensor of a state that is not also in `keep` (e.g. the new state). */
export const disposeState = (s: unknown, keep: unknown = null): void => {
  const kept = new Set(stateTensors(keep).map((t) => t.id));
  for (const t of stateTensors(s)) if (!kept.has(t.id) && !t.isDisposed) t.dispose();
};
