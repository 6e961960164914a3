/**
 * A safeguard against diverging MLHF steps (docs/algorithm.md#safeguard); not in the original,
 * whose behaviour is `none`. Two rules, alone or together:
 *
 * - `trust`: the step is scaled so ‖ηx̃‖ ≤ c‖θ‖ (x̃ = s·x, s = min(1, c‖θ‖/‖ηx‖), c = 0.25 as
 *   meta-training's clip).
 * - `lm`: a Levenberg–Marquardt acceptance test on the current batch. The predicted change
 *   q = −η⟨g, x̃⟩ + ½η²⟨x̃, G x̃⟩ (G x̃ from CG's by-products: A x = g − r, so ⟨x, G x⟩ = ⟨x, g − r⟩ −
 *   ⟨x, λ ⊙ x⟩, with no extra G·v), the actual change L(θ − ηx̃; B) − L(θ; B) (one forward pass),
 *   ρ = actual / q. ρ < ¼ raises the multiplier μ of the damping (μ/ω, at most μ_max), ρ > ¾ lowers
 *   it (μ·ω, at least μ_min); ρ < 0 rejects the step (zero update).
 *
 * Every decision is a device-side select: no host read, so one code path serves every backend.
 * @module
 */
import { tf } from "../../_deps.ts";
import { leaves, type Params, scale, sub, unflatten, vdot } from "../../tree.ts";

/** The safeguards MLHF offers: `none` is the original's behaviour. */
export const SAFEGUARDS = ["none", "lm", "trust", "lm+trust"] as const;
/** A safeguard's name. */
export type Safeguard = typeof SAFEGUARDS[number];

/** Settings of the safeguard (docs/algorithm.md#safeguard). */
export interface SafeguardOptions {
  /** Which rules run. */
  readonly mode: Safeguard;
  /** ω < 1: ρ > ¾ multiplies μ by ω, ρ < ¼ divides it by ω (0.9). */
  readonly decay: number;
  /** μ's floor (1: the learned damping is never lowered). */
  readonly muMin: number;
  /** μ's ceiling (1e6). */
  readonly muMax: number;
  /** c, the trust region's radius as a fraction of ‖θ‖ (0.25). */
  readonly trustFraction: number;
}

/** The safeguard's defaults (docs/algorithm.md#safeguard). */
export const SAFEGUARD_DEFAULTS: SafeguardOptions = {
  mode: "none",
  decay: 0.9,
  muMin: 1,
  muMax: 1e6,
  trustFraction: 0.25,
};

/** ρ below this: μ rises. */
export const RHO_LOW = 0.25;
/** ρ above this: μ falls. */
export const RHO_HIGH = 0.75;
/** ρ below this (or not finite): the step is rejected. */
export const RHO_REJECT = 0;

/** The safeguard's state: μ, and the last step's decisions (for the log). Scalars, float32. */
export interface SafeguardState {
  /** μ, the multiplier of the learned damping: λ_eff = μ·λ (1 at the start). */
  readonly mu: tf.Scalar;
  /** 1 when the last step was rejected (zero update), else 0. */
  readonly rejected: tf.Scalar;
  /** The last step's ρ (−1 when it was not finite or nothing was predicted and lost). */
  readonly rho: tf.Scalar;
  /** The last step's trust-region factor s ≤ 1 (1: not scaled). */
  readonly trustScale: tf.Scalar;
}

/** Whether the mode runs the LM test (and so scales λ by μ). */
export const usesLm = (mode: Safeguard): boolean => mode === "lm" || mode === "lm+trust";
/** Whether the mode runs the trust region. */
export const usesTrust = (mode: Safeguard): boolean => mode === "trust" || mode === "lm+trust";

/** The initial state: μ = 1 (clipped to [μ_min, μ_max]), nothing rejected. */
export const initSafeguardState = (o: SafeguardOptions): SafeguardState => ({
  mu: tf.scalar(Math.min(o.muMax, Math.max(1, o.muMin))),
  rejected: tf.scalar(0),
  rho: tf.scalar(0),
  trustScale: tf.scalar(1),
});

/** Checks the settings; throws a RangeError naming the bad field. */
export const checkSafeguardOptions = (o: SafeguardOptions): void => {
  const bad = (field: string, v: unknown, want: string) =>
    new RangeError(`MLHF safeguard: ${field} is ${v}, expected ${want}`);
  if (!(SAFEGUARDS as readonly string[]).includes(o.mode)) {
    throw bad("mode", JSON.stringify(o.mode), `one of ${SAFEGUARDS.join(", ")}`);
  }
  if (!(o.decay > 0 && o.decay < 1)) throw bad("decay", o.decay, "a number in (0, 1)");
  if (!(o.muMin > 0 && Number.isFinite(o.muMin))) throw bad("muMin", o.muMin, "a finite μ > 0");
  if (!(o.muMax >= o.muMin)) throw bad("muMax", o.muMax, `a number ≥ muMin (${o.muMin})`);
  if (!(o.trustFraction > 0)) throw bad("trustFraction", o.trustFraction, "a number > 0");
};

/** What one safeguarded step needs. */
export interface SafeguardInputs<P extends Params> {
  /** θ. */
  readonly params: P;
  /** g, the gradient on the batch. */
  readonly gradient: P;
  /** x, CG's solution of (G + λ_eff) x = g. */
  readonly x: P;
  /** r = g − (G + λ_eff) x, CG's residual. */
  readonly r: P;
  /** λ_eff, the damping CG used (per coordinate, or one number). */
  readonly lambda: P | number;
  /** η. */
  readonly learningRate: number;
  /** L(θ; B). */
  readonly loss: tf.Scalar;
  /** θ′ ↦ L(θ′; B), the same batch (needed by `lm`). */
  readonly lossAt?: (params: P) => tf.Scalar;
}

/** One step's outcome: the update to add to θ, whether it was taken, and the next state. */
export interface SafeguardResult<P extends Params> {
  /** −η·x̃, or zeros when rejected. */
  readonly update: P;
  /** Bool scalar: true when the step was taken. */
  readonly accept: tf.Scalar;
  /** The next state. */
  readonly next: SafeguardState;
}

/** where(c, a, b) over two values of the same structure (tensors selected, the rest from a). */
export const selectTree = <T>(c: tf.Tensor, a: T, b: T): T => {
  const walk = (x: unknown, y: unknown): unknown => {
    if (x instanceof tf.Tensor) return tf.where(c, x, y as tf.Tensor);
    if (Array.isArray(x)) return x.map((v, i) => walk(v, (y as unknown[])[i]));
    if (x && typeof x === "object") {
      return Object.fromEntries(
        Object.entries(x).map(([k, v]) => [k, walk(v, (y as Record<string, unknown>)[k])]),
      );
    }
    return x;
  };
  return walk(a, b) as T;
};

/**
 * The safeguarded update of one MLHF step (module doc). All scalars stay on the device. The caller
 * owns memory (wrap in a tidy).
 */
export const safeguardStep = <P extends Params>(
  o: SafeguardOptions,
  state: SafeguardState,
  i: SafeguardInputs<P>,
): SafeguardResult<P> => {
  const eta = i.learningRate;
  let finite = tf.scalar(true, "bool") as tf.Scalar;
  let s: tf.Scalar = tf.scalar(1);
  if (usesTrust(o.mode)) {
    const step = tf.mul(eta, tf.sqrt(vdot(i.x, i.x)));
    const radius = tf.mul(o.trustFraction, tf.sqrt(vdot(i.params, i.params)));
    s = tf.where(tf.greater(step, radius), tf.div(radius, step), tf.scalar(1)) as tf.Scalar;
    finite = tf.isFinite(step) as tf.Scalar;
  }
  let accept = finite;
  let mu = state.mu, rho: tf.Scalar = tf.scalar(0);
  if (usesLm(o.mode)) {
    if (!i.lossAt) throw new Error("MLHF safeguard (lm): needs lossAt, the loss on the batch");
    // ⟨x, G x⟩ = ⟨x, A x⟩ − ⟨x, λ ⊙ x⟩ with A x = g − r.
    const xAx = vdot(i.x, sub(i.gradient, i.r));
    const lambda = i.lambda;
    const xLx = typeof lambda === "number"
      ? tf.mul(lambda, vdot(i.x, i.x))
      : vdot(i.x, unflatten(i.x, leaves(lambda).map((l, k) => tf.mul(l, leaves(i.x)[k]))));
    const xGx = tf.sub(xAx, xLx);
    // Predicted and actual reductions of the step −η s x.
    const predicted = tf.sub(
      tf.mul(eta, tf.mul(s, vdot(i.gradient, i.x))),
      tf.mul(0.5 * eta * eta, tf.mul(tf.square(s), xGx)),
    );
    const after = i.lossAt(
      unflatten(
        i.params,
        leaves(i.params).map((t, k) => tf.sub(t, tf.mul(tf.mul(eta, s), leaves(i.x)[k]))),
      ),
    );
    const actual = tf.sub(i.loss, after);
    const raw = tf.where(
      tf.greater(predicted, 0),
      tf.div(actual, predicted),
      tf.where(tf.greater(actual, 0), tf.scalar(0), tf.scalar(-1)),
    );
    rho = tf.where(tf.isFinite(raw), raw, tf.scalar(-1)) as tf.Scalar;
    const up = tf.minimum(tf.div(mu, o.decay), o.muMax);
    const down = tf.maximum(tf.mul(mu, o.decay), o.muMin);
    mu = tf.where(
      tf.less(rho, RHO_LOW),
      up,
      tf.where(tf.greater(rho, RHO_HIGH), down, mu),
    ) as tf.Scalar;
    accept = tf.logicalAnd(accept, tf.greaterEqual(rho, RHO_REJECT)) as tf.Scalar;
  }
  const step = scale(i.x, tf.mul(-eta, s) as tf.Scalar);
  const update = unflatten(
    i.params,
    leaves(step).map((t) => tf.where(accept, t, tf.zerosLike(t))),
  );
  return {
    update,
    accept,
    next: {
      mu: tf.clone(mu),
      // A select, not a cast: the cpu backend's bool → float32 cast keeps the bool's Uint8Array
      // storage, which the checkpoint writer cannot read as float32.
      rejected: tf.where(accept, tf.scalar(0), tf.scalar(1)) as tf.Scalar,
      rho,
      trustScale: s,
    },
  };
};

/** The per-step log columns of a mode: `rejected`, and `mu`, `rho` (lm) and `trust_scale`. */
export const safeguardDiagnostics = (
  mode: Safeguard,
  s: SafeguardState,
): Record<string, tf.Scalar> => ({
  rejected: s.rejected,
  ...(usesLm(mode) ? { mu: s.mu, rho: s.rho } : {}),
  ...(usesTrust(mode) ? { trust_scale: s.trustScale } : {}),
});
