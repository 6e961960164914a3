/**
 * One MLHF direction (docs/algorithm.md#mlhf-direction), shared by evaluation and meta-training:
 *   λ = softplus(RNN_λ(tanh g, tanh r_prev, tanh x_prev)) + λ₀      (or λ₀ when damping is fixed)
 *   x₀ = x_prev | g | RNN_x(…)                                       (`xInit`)
 *   A v = G v + λ ⊙ v ;  r₀ = g − A x₀
 *   P = softplus(RNN_P(tanh g, tanh r₀, tanh x₀))                     (or P ≡ 1)
 *   x, r = PCG(A, P, g, x₀, K)
 * Every RNN advances its state exactly once. The networks are shared per parameter kind: the
 * coordinates of all leaves of one kind run as one batch. Differentiable in the meta-weights;
 * g, x_prev and r_prev enter through stop-gradient (docs/algorithm.md#what-is-cut).
 * @module
 */
import { tf } from "../../_deps.ts";
import { leaves, type Params, unflatten } from "../../tree.ts";
import { conjugateGradient, dampedOperator } from "../../solvers/cg.ts";
import { lstmNetStep, type LstmNetWeights, type LstmState, zeroLstmState } from "./lstm.ts";
import { groupByKind, type ParamKind } from "../../param_kinds.ts";
import { stopGradient } from "./stop_gradient.ts";
import { type FeatureNormState, featureNormStep, initFeatureNorm } from "./feature_norm.ts";

/** The meta-networks of one parameter kind: the λ network (RNN_λ), the preconditioner network
 * (RNN_P) and the x₀ network (RNN_x). */
export interface KindNets {
  readonly lambda?: LstmNetWeights;
  readonly precond?: LstmNetWeights;
  readonly x0?: LstmNetWeights;
}
/** All meta-weights, by kind. */
export type MetaWeights = Partial<Record<ParamKind, KindNets>>;

export interface MlhfOptions {
  /** K, the CG iterations per step (flag `CG_iter`, default 2). */
  readonly cgIterations: number;
  /**
   * λ₀, the floor added to the learned damping (flag `damping`, 2e-5,
   * docs/algorithm.md#damping-floor).
   */
  readonly lambda0: number;
  readonly xInit: "previous" | "gradient" | "rnn";
  readonly preconditioner: "rnn" | "none";
  /** How λ is made: `rnn`, softplus(RNN_λ(·)) + λ₀ per coordinate; `fixed`, the scalar λ₀. */
  readonly dampingMode: "rnn" | "fixed";
  /**
   * The meta-networks' inputs (not in the original): `raw` (absent), tanh of g, r and x as they
   * are; `rms`, each divided first by its tensor's running RMS
   * (docs/algorithm.md#scale-free-features).
   */
  readonly featureNorm?: "raw" | "rms";
}

export const MLHF_DEFAULTS: MlhfOptions = {
  cgIterations: 2,
  lambda0: 2e-5,
  xInit: "previous",
  preconditioner: "rnn",
  dampingMode: "rnn",
};

/**
 * Recurrent state per kind and role, plus the previous step's x and r
 * (docs/algorithm.md#the-update).
 */
export interface MlhfState<P extends Params> {
  readonly rnn: Partial<
    Record<ParamKind, { lambda?: LstmState; precond?: LstmState; x0?: LstmState }>
  >;
  readonly xPrev: P;
  readonly rPrev: P;
  /** The running mean squares of `featureNorm: "rms"` (absent otherwise). */
  readonly features?: FeatureNormState;
}

/** A meta-network's role: the λ network, the preconditioner network, the x₀ network. */
export type Role = "lambda" | "precond" | "x0";

/** A role's name in messages. */
const ROLE_NAME: Record<Role, string> = {
  lambda: "λ (damping)",
  precond: "preconditioner",
  x0: "x₀",
};

const rolesFor = (o: MlhfOptions): Role[] => [
  ...(o.dampingMode === "rnn" ? ["lambda" as const] : []),
  ...(o.preconditioner === "rnn" ? ["precond" as const] : []),
  ...(o.xInit === "rnn" ? ["x0" as const] : []),
];

/** Checks that every kind present has the networks the options need; names what is missing. */
export const checkMetaWeights = (
  meta: MetaWeights,
  kinds: readonly ParamKind[],
  o: MlhfOptions,
): void => {
  for (const kind of groupByKind(kinds).keys()) {
    for (const role of rolesFor(o)) {
      if (!meta[kind]?.[role]) {
        throw new Error(
          `MLHF: no ${
            ROLE_NAME[role]
          } meta-network for parameter kind '${kind}' (the meta-weights have: ${
            Object.keys(meta).join(", ") || "none"
          })`,
        );
      }
    }
  }
};

/** The zero state (first step, or after a reset): zero LSTM states, x_prev = r_prev = 0. */
export const initMlhfState = <P extends Params>(
  params: P,
  kinds: readonly ParamKind[],
  o: MlhfOptions,
): MlhfState<P> => {
  const ls = leaves(params);
  if (ls.length !== kinds.length) {
    throw new RangeError(`MLHF: ${kinds.length} kinds for ${ls.length} parameter leaves`);
  }
  const rnn: MlhfState<P>["rnn"] = {};
  for (const [kind, idx] of groupByKind(kinds)) {
    const n = idx.reduce((s, i) => s + ls[i].size, 0);
    rnn[kind] = Object.fromEntries(rolesFor(o).map((r) => [r, zeroLstmState(n)]));
  }
  const zeros = unflatten(params, ls.map((x) => tf.zerosLike(x)));
  const rPrev = unflatten(params, ls.map((x) => tf.zerosLike(x)));
  return o.featureNorm === "rms"
    ? { rnn, xPrev: zeros, rPrev, features: initFeatureNorm(ls.length) }
    : { rnn, xPrev: zeros, rPrev };
};

/** Concatenates the flattened leaves of one kind. */
const gather = (ls: readonly tf.Tensor[], idx: readonly number[]): tf.Tensor1D =>
  (idx.length === 1
    ? tf.reshape(ls[idx[0]], [-1])
    : tf.concat(idx.map((i) => tf.reshape(ls[i], [-1])), 0)) as tf.Tensor1D;

/** Splits a per-kind vector back into the leaves' shapes, writing into `out`. */
const scatter = (
  v: tf.Tensor1D,
  idx: readonly number[],
  like: readonly tf.Tensor[],
  out: tf.Tensor[],
) => {
  const parts = idx.length === 1 ? [v] : tf.split(v, idx.map((i) => like[i].size));
  idx.forEach((i, j) => (out[i] = tf.reshape(parts[j], like[i].shape)));
};

/**
 * Meta-training's memory knob (`coordinateFraction`): per kind, a permutation `perm` of the
 * coordinates whose first `count` entries have their meta-network steps on the autodiff tape (the
 * others run untaped: they pass no meta-gradient and keep no activations), and `order`, its inverse.
 * Both int32.
 */
export type TapedCoordinates = ReadonlyMap<ParamKind, {
  readonly perm: tf.Tensor1D;
  readonly order: tf.Tensor1D;
  readonly count: number;
}>;

/**
 * Rows of x reordered by the permutation `perm` (with inverse `inv`). Its gradient is the inverse
 * reordering, a plain gather: tf.gather's own needs UnsortedSegmentSum, which wasm lacks.
 */
const permuteRows = (x: tf.Tensor2D, perm: tf.Tensor1D, inv: tf.Tensor1D): tf.Tensor2D =>
  tf.customGrad(
    ((t: tf.Tensor) => ({
      value: tf.gather(t, perm),
      gradFunc: (dy: tf.Tensor) => [tf.gather(dy, inv)],
    })) as unknown as Parameters<typeof tf.customGrad>[0],
  )(x) as tf.Tensor2D;

/** The net's step with no tape: outputs and states packed in one tensor [N, 1 + 2·layers·units]. */
const untapedStep = (w: LstmNetWeights, state: LstmState, input: tf.Tensor2D): tf.Tensor2D => {
  // Ops inside a customGrad's forward are not recorded (TF.js records at kernel depth 0 only).
  const f = tf.customGrad(
    ((...xs: tf.Tensor[]) => {
      const s = lstmNetStep(w, state, xs[0] as tf.Tensor2D);
      return {
        value: tf.concat([tf.reshape(s.out, [-1, 1]), ...s.state.c, ...s.state.h], 1),
        gradFunc: () => [tf.zerosLike(xs[0])],
      };
    }) as unknown as Parameters<typeof tf.customGrad>[0],
  );
  return f(input) as tf.Tensor2D;
};

/**
 * One step of a kind's network with only the first `sub.count` coordinates of `sub.perm` on the
 * tape: the two parts run separately and are put back in coordinate order (values are those of
 * the plain step).
 */
const splitStep = (
  w: LstmNetWeights,
  state: LstmState,
  input: tf.Tensor2D,
  sub: NonNullable<ReturnType<TapedCoordinates["get"]>>,
): { out: tf.Tensor1D; state: LstmState } => {
  const n = input.shape[0], m = sub.count;
  if (m === n) return lstmNetStep(w, state, input);
  /** [taped rows, other rows] of t. */
  const parts = (t: tf.Tensor2D): [tf.Tensor2D, tf.Tensor2D] => {
    const p = permuteRows(t, sub.perm, sub.order);
    return [tf.slice(p, [0, 0], [m, -1]), tf.slice(p, [m, 0], [n - m, -1])];
  };
  const [inA, inB] = parts(input);
  const c = state.c.map(parts), h = state.h.map(parts);
  const a = lstmNetStep(w, { c: c.map((x) => x[0]), h: h.map((x) => x[0]) }, inA);
  const packed = untapedStep(w, { c: c.map((x) => x[1]), h: h.map((x) => x[1]) }, inB);
  const widths = [1, ...state.c.map((t) => t.shape[1]), ...state.h.map((t) => t.shape[1])];
  const [bOut, ...bStates] = tf.split(packed, widths, 1) as tf.Tensor2D[];
  const L = state.c.length;
  const join = (x: tf.Tensor2D, y: tf.Tensor2D) =>
    permuteRows(tf.concat([x, y], 0), sub.order, sub.perm);
  return {
    out: tf.reshape(join(tf.reshape(a.out, [-1, 1]), bOut), [-1]) as tf.Tensor1D,
    state: {
      c: a.state.c.map((t, l) => join(t, bStates[l])),
      h: a.state.h.map((t, l) => join(t, bStates[L + l])),
    },
  };
};

/**
 * tanh of one kind's concatenated feature, computed once per step: the damping and preconditioner
 * networks share g (and x₀ = x_prev by default), so the same squashed vector serves both.
 */
type Squash = (f: readonly tf.Tensor[], idx: readonly number[]) => tf.Tensor1D;
const squashOncePerStep = (): Squash => {
  const memo = new Map<string, tf.Tensor1D>();
  return (f, idx) => {
    const key = idx.map((i) => f[i].id).join(",");
    let t = memo.get(key);
    if (!t) memo.set(key, t = tf.tanh(gather(f, idx)));
    return t;
  };
};

/** Runs one role's network over all kinds: features → per-leaf outputs and next states. */
const runRole = <P extends Params>(
  role: Role,
  meta: MetaWeights,
  state: MlhfState<P>,
  groups: Map<ParamKind, number[]>,
  features: readonly (readonly tf.Tensor[])[],
  like: readonly tf.Tensor[],
  post: (out: tf.Tensor1D) => tf.Tensor1D,
  squash: Squash,
  taped?: TapedCoordinates,
): { values: tf.Tensor[]; next: Map<ParamKind, LstmState> } => {
  const values: tf.Tensor[] = new Array(like.length);
  const next = new Map<ParamKind, LstmState>();
  for (const [kind, idx] of groups) {
    const input = tf.stack(features.map((f) => squash(f, idx)), 1) as tf.Tensor2D;
    const sub = taped?.get(kind);
    const step = sub
      ? splitStep(meta[kind]![role]!, state.rnn[kind]![role]!, input, sub)
      : lstmNetStep(meta[kind]![role]!, state.rnn[kind]![role]!, input);
    scatter(post(step.out), idx, like, values);
    next.set(kind, step.state);
  }
  return { values, next };
};

export interface MlhfDirection<P extends Params> {
  readonly x: P;
  readonly r: P;
  readonly x0: P;
  readonly r0: P;
  /**
   * λ per coordinate (or the scalar λ₀ when damping is fixed), times `lambdaScale` when given: the
   * damping A used.
   */
  readonly lambda: P | number;
  /** P per coordinate (undefined for P ≡ 1). */
  readonly precond?: P;
  readonly iterations: number;
  /** The state for the next step (x_prev = x, r_prev = r, advanced LSTM states). */
  readonly next: MlhfState<P>;
}

/**
 * Computes one MLHF direction. `G` is v ↦ G·v at this step's (θ, B) — in meta-training the
 * symmetric-gradient product (docs/algorithm.md#gradient-of-h). `lambdaScale`, a scalar μ, makes
 * the damping μ·λ (the safeguard's multiplier, docs/algorithm.md#safeguard; omitted: λ as is).
 * The caller owns memory (wrap in a tidy).
 */
export const mlhfDirection = <P extends Params>(
  meta: MetaWeights,
  state: MlhfState<P>,
  gradient: P,
  G: (v: P) => P,
  kinds: readonly ParamKind[],
  o: MlhfOptions,
  taped?: TapedCoordinates,
  lambdaScale?: tf.Scalar,
): MlhfDirection<P> => {
  const groups = groupByKind(kinds);
  const g = unflatten(gradient, leaves(gradient).map((t) => stopGradient(t)));
  const xPrev = unflatten(state.xPrev, leaves(state.xPrev).map((t) => stopGradient(t)));
  const rPrev = unflatten(state.rPrev, leaves(state.rPrev).map((t) => stopGradient(t)));
  const lg = leaves(g), lx = leaves(xPrev), lr = leaves(rPrev);
  // The networks' features: the raw g, r_prev, x_prev, or each over its running RMS.
  let fg: readonly tf.Tensor[] = lg, fr: readonly tf.Tensor[] = lr, fx: readonly tf.Tensor[] = lx;
  let features: FeatureNormState | undefined;
  let normalize = (v: tf.Tensor, _leaf: number, _as: "g" | "x") => v;
  if (o.featureNorm === "rms") {
    if (!state.features) throw new Error("MLHF (featureNorm rms): the state has no feature norms");
    const f = featureNormStep(state.features, lg, lx);
    features = f.next;
    normalize = f.normalize;
    fg = lg.map((t, i) => normalize(t, i, "g"));
    fr = lr.map((t, i) => normalize(t, i, "g"));
    fx = lx.map((t, i) => normalize(t, i, "x"));
  }
  const rnn: { [K in ParamKind]?: { lambda?: LstmState; precond?: LstmState; x0?: LstmState } } =
    {};
  const setState = (role: Role, next: Map<ParamKind, LstmState>) => {
    for (const [kind, s] of next) rnn[kind] = { ...(rnn[kind] ?? state.rnn[kind]), [role]: s };
  };
  const softplusPlus = (c: number) => (out: tf.Tensor1D) =>
    tf.add(tf.softplus(out), c) as tf.Tensor1D;
  const squash = squashOncePerStep();

  // 1. λ from (tanh g, tanh r_prev, tanh x_prev).
  let lambda: P | number = o.lambda0;
  if (o.dampingMode === "rnn") {
    const d = runRole(
      "lambda",
      meta,
      state,
      groups,
      [fg, fr, fx],
      lg,
      softplusPlus(o.lambda0),
      squash,
      taped,
    );
    lambda = unflatten(gradient, d.values);
    setState("lambda", d.next);
  }
  if (lambdaScale) {
    const l = lambda;
    lambda = unflatten(
      gradient,
      lg.map((t, i) =>
        typeof l === "number"
          ? tf.mul(tf.onesLike(t), tf.mul(lambdaScale, l))
          : tf.mul(leaves(l)[i], lambdaScale)
      ),
    );
  }
  // 2. x₀.
  let x0: P = xPrev;
  if (o.xInit === "gradient") x0 = g;
  else if (o.xInit === "rnn") {
    const d = runRole("x0", meta, state, groups, [fg, fr, fx], lg, (out) => out, squash, taped);
    x0 = unflatten(gradient, d.values);
    setState("x0", d.next);
  }
  // 3–5. r₀ = g − A x₀, then P from (tanh g, tanh r₀, tanh x₀), then PCG.
  const A = dampedOperator(G, lambda);
  let precond: P | undefined;
  const preconditioner = o.preconditioner === "rnn"
    ? (r0: P): P => {
      const d = runRole(
        "precond",
        meta,
        state,
        groups,
        o.featureNorm === "rms"
          ? [
            fg,
            leaves(r0).map((t, i) => normalize(t, i, "g")),
            o.xInit === "previous"
              ? fx
              : o.xInit === "gradient"
              ? fg
              : leaves(x0).map((t, i) => normalize(t, i, "x")),
          ]
          : [lg, leaves(r0), leaves(x0)],
        lg,
        softplusPlus(0),
        squash,
        taped,
      );
      setState("precond", d.next);
      precond = unflatten(gradient, d.values);
      return precond;
    }
    : undefined;
  const res = conjugateGradient(A, g, { x0, maxIterations: o.cgIterations, preconditioner });
  const nextRnn = { ...state.rnn, ...rnn };
  return {
    x: res.x,
    r: res.r,
    x0,
    r0: res.r0,
    lambda,
    precond,
    iterations: res.iterations,
    next: { rnn: nextRnn, xPrev: res.x, rPrev: res.r, ...(features ? { features } : {}) },
  };
};
