/**
 * One meta-training iteration (docs/algorithm.md#meta-training): unroll T MLHF steps in training
 * mode on T consecutive batches, then update the meta-weights with Adam.
 *
 * Per inner step i: ℓ_i, g_i and G_i at (θ_i, B_i) (G through the symmetric-gradient product,
 * docs/algorithm.md#gradient-of-h); λ_i, P_i, x_i, r_i from `mlhfDirection`;
 * h_i = −⟨g_i, x_i⟩ / √⟨x_i, g_i − r_i⟩;
 * x̃_i = x_i·min(1, 0.25‖sg θ_i‖/(η‖x_i‖)); θ_{i+1} = sg(θ_i) − η·(u ⊙ x̃_i), u ~ U[0.98, 1.02];
 * ℓ′_i = L(θ_{i+1}; B_i). Then m_i = ½(ℓ′_i + ℓ_{i+1}) − sg(ℓ_i) (i < T−1; divided by sg(ℓ_i) with
 * `metaLoss: "relative"`, lib/meta/meta_loss.ts), M = Σ softmax(sg m)ᵢ mᵢ,
 * H = mean h_i, R = 2e-7·½‖φ‖². The λ networks get ∇(10·M + R), the preconditioner networks
 * ∇(H + R); the cross terms are discarded (docs/algorithm.md#cross-terms-discarded), so the window
 * is differentiated twice, once per loss. LSTM states carry gradient through the window and are
 * cut at its end; g, θ in the update, x_prev and r_prev are stop-gradient
 * (docs/algorithm.md#what-is-cut). The meta-gradient's global norm is clipped to ‖φ‖ and Adam
 * (TF defaults) takes the step. A non-finite meta-gradient skips the update.
 * Whether everything carried to the next iteration (θ, the inner state, φ, Adam's moments, the
 * newest replay entry) is finite is reduced on the device and read once; when it is not, the
 * result names the tensor.
 * @module
 */
import { tf } from "../_deps.ts";
import {
  type Batch,
  gaussNewtonProduct,
  type ModelFn,
  symmetricProduct,
} from "../curvature/gauss_newton.ts";
import type { Loss } from "../../ops/losses.ts";
import { plain } from "../../ops/interpret.ts";
import {
  addScaled,
  leaves,
  mapTree,
  norm,
  type Params,
  scale,
  sub,
  unflatten,
  vdot,
  zipTree,
} from "../tree.ts";
import { foldIn, type Key, permutation, stream, uniform } from "../prng.ts";
import { type AdamState, scaleByAdam } from "../optim/transforms.ts";
import { describeNonFinite, finiteFlag } from "../optim/finite.ts";
import {
  initMlhfState,
  type MetaWeights,
  MLHF_DEFAULTS,
  mlhfDirection,
  type MlhfOptions,
  type MlhfState,
  type Role,
  type TapedCoordinates,
} from "../optim/mlhf/direction.ts";
import { groupByKind, PARAM_KINDS, type ParamKind } from "../param_kinds.ts";
import { detach } from "./detach.ts";
import { type MetaLossKind, windowMetaLoss } from "./meta_loss.ts";

export { detach };

/**
 * Meta-training settings (docs/algorithm.md#meta-training-settings; defaults in
 * `META_TRAIN_DEFAULTS`).
 */
export interface MetaTrainOptions extends MlhfOptions {
  /** T, the unrolled window (`meta_roll_back`). */
  readonly metaRollBack: number;
  /**
   * Probability of continuing the trajectory after a window (`keep_prob`,
   * docs/algorithm.md#experience-replay).
   */
  readonly keepProb: number;
  /** Adam's learning rate on the meta-weights (`meta_lr`, 1e-3). */
  readonly metaLr: number;
  /** η, the inner learning rate (`--lr`, 1.0). */
  readonly lr: number;
  /** `as-written`: every reset restarts from the initial weights (the original's dead store);
   * `intended`: progressively better states are stored, up to `replaySize`
   * (docs/algorithm.md#replay-store-never-fires). */
  readonly replayMode: "as-written" | "intended";
  /** Most optimizee states the `intended` replay store keeps (200). */
  readonly replaySize: number;
  /** Weight of the meta-loss for the λ networks (10 in the original). */
  readonly metaLossScale: number;
  /**
   * The λ networks' per-step score (docs/algorithm.md#meta-losses): `raw`, the original's loss
   * difference, or `relative`, that difference over the pre-update loss (scale-free). Absent:
   * `raw` (so the settings of runs made before the option, and their checkpoints, are unchanged).
   */
  readonly metaLoss?: MetaLossKind;
  /** L2 coefficient on the meta-weights (2e-7). */
  readonly l2: number;
  /** Clip ‖ηx‖ to this fraction of ‖θ‖ (0.25). */
  readonly clipFraction: number;
  /** Multiplicative noise half-width (0.02: u ~ U[0.98, 1.02]). */
  readonly noise: number;
  /**
   * Memory knob (not in the original): the fraction of each kind's coordinates, drawn afresh per
   * window, whose meta-network steps are backpropagated; the others run untaped (same values, no
   * meta-gradient, no stored activations). 1 = all, as the original.
   */
  readonly coordinateFraction: number;
}

/** The original's meta-training settings (docs/algorithm.md#meta-training-settings), with MLHF's own defaults. */
export const META_TRAIN_DEFAULTS: MetaTrainOptions = {
  ...MLHF_DEFAULTS,
  metaRollBack: 10,
  keepProb: 0.5,
  metaLr: 1e-3,
  lr: 1,
  replayMode: "as-written",
  replaySize: 200,
  metaLossScale: 10,
  l2: 2e-7,
  clipFraction: 0.25,
  noise: 0.02,
  coordinateFraction: 1,
};

/** Everything a run carries between iterations (all of it is checkpointed). */
export interface MetaTrainState<P extends Params> {
  /** Iterations (windows) done. */
  readonly iteration: number;
  /** θ, the optimizee's parameters. */
  readonly theta: P;
  /** MLHF's inner state (λ and the LSTM states) for θ. */
  readonly inner: MlhfState<P>;
  /** φ, the meta-weights being trained. */
  readonly meta: MetaWeights;
  /** Adam's moments for φ. */
  readonly adam: AdamState<MetaWeights & Params>;
  /** Stored optimizee states (starts with the initial weights). */
  readonly replay: readonly P[];
  /** Best base loss so far for the `intended` replay store (+∞ at start; the original's 0). */
  readonly bestLoss: number;
  /** ‖θ‖ when the best base loss was stored (+∞ at start). */
  readonly bestNorm: number;
  /** Non-finite meta-gradients skipped so far. */
  readonly skipped: number;
}

/**
 * The per-window diagnostics of the original (docs/algorithm.md#meta-losses) plus the update's
 * bookkeeping.
 */
export interface MetaDiagnostics {
  /** The iteration this window was (0-based). */
  readonly iteration: number;
  /** M, the meta-loss of the λ networks (docs/algorithm.md#meta-losses). */
  readonly metaLoss: number;
  /**
   * H, the Hessian loss (the preconditioner's meta-loss when it is trained, else the λ window's).
   */
  readonly hessianLoss: number;
  /** The L2 term ½·l2·‖φ‖². */
  readonly l2Loss: number;
  /** mean ‖r_i‖. */
  readonly rLoss: number;
  /** mean(ℓ_{i+1} − ℓ_i). */
  readonly meanLossChange: number;
  /** mean(ℓ′_i − ℓ_i). */
  readonly meanPostUpdateChange: number;
  /** ℓ_{T−1}. */
  readonly baseLoss: number;
  /** Bytes held by TF.js tensors at the end of the unrolled window (≈ the BPTT peak). */
  readonly windowBytes: number;
  /** ‖∇φ‖ of the meta-loss plus the L2 term, before clipping. */
  readonly gradNorm: number;
  /** ‖φ‖ before the update (the clip threshold). */
  readonly metaNorm: number;
  /** Whether the meta-gradient was clipped to ‖φ‖. */
  readonly clipped: boolean;
  /** Whether the update was skipped for a non-finite meta-gradient or loss. */
  readonly skipped: boolean;
  /** Whether the trajectory was reset after the window (probability 1 − keepProb). */
  readonly reset: boolean;
  /** Optimizee states in the replay store after the window. */
  readonly replaySize: number;
}

/**
 * Estimated bytes that BPTT through one window keeps: per coordinate and inner step ≈ 620 floats
 * (the CG vectors, features and the tape's saved copies) plus ≈ 400·f for the LSTM activations of
 * both roles, f = `coordinateFraction` (measured with MLPs: 653 MiB at the end of a T = 10 window
 * over the MNIST MLP's 15 910 coordinates, `windowBytes` in the log; 0.64 of the memory with
 * f = 0.1), plus `activationFloats` of model activations per inner step. Float32: 4 bytes a float.
 * The knobs are T (`--meta-roll-back`), f (`--coordinate-fraction`) and the batch size; the
 * CUDA-convnet's 1.76 M coordinates need T ≤ 3 (f = 1) or T ≤ 4 (f = 0.1) within 24 GiB (measured
 * there at T = 2, batch 64: peak RSS 13.8 GiB with f = 1, 6.4 GiB with f = 0.1; the estimate is
 * 13.3 and 8.6 GiB, so it is conservative at small f).
 */
export const estimateWindowBytes = (
  coordinates: number,
  T: number,
  activationFloats: number,
  coordinateFraction = 1,
): number => 4 * T * (coordinates * (620 + 400 * coordinateFraction) + 3 * activationFloats);

/**
 * The coordinates backpropagated in one window (`coordinateFraction`): per kind, ⌈f·n⌉ of its n
 * coordinates drawn without replacement from `key` (at least one), the rest run untaped.
 */
export const tapedCoordinates = (
  key: Key,
  kinds: readonly ParamKind[],
  like: readonly tf.Tensor[],
  fraction: number,
): TapedCoordinates => {
  if (!(fraction > 0 && fraction <= 1)) {
    throw new RangeError(`coordinateFraction must be in (0, 1], got ${fraction}`);
  }
  const out = new Map<ParamKind, ReturnType<typeof splitCoordinates>>();
  for (const [kind, idx] of groupByKind(kinds)) {
    const n = idx.reduce((acc, i) => acc + like[i].size, 0);
    const perm = permutation(foldIn(key, PARAM_KINDS.indexOf(kind) + 1), n);
    out.set(kind, splitCoordinates(n, perm.subarray(0, Math.max(1, Math.ceil(fraction * n)))));
  }
  return out;
};

/**
 * One kind's entry of `TapedCoordinates` for n coordinates: the given taped ones first, then the
 * others in ascending order, and the inverse of that permutation.
 */
export const splitCoordinates = (
  n: number,
  taped: ArrayLike<number>,
): { perm: tf.Tensor1D; order: tf.Tensor1D; count: number } => {
  const isTaped = new Uint8Array(n);
  for (let i = 0; i < taped.length; i++) isTaped[taped[i]] = 1;
  const perm = new Int32Array(n);
  perm.set(Int32Array.from(taped));
  let k = taped.length;
  for (let i = 0; i < n; i++) if (!isTaped[i]) perm[k++] = i;
  const order = new Int32Array(n);
  perm.forEach((coord, pos) => (order[coord] = pos));
  return {
    perm: tf.tensor1d(perm, "int32"),
    order: tf.tensor1d(order, "int32"),
    count: taped.length,
  };
};

/** The tensors of a `tapedCoordinates` result. */
export const tapedCoordinateTensors = (t: TapedCoordinates | undefined): tf.Tensor[] =>
  t ? [...t.values()].flatMap((s) => [s.perm, s.order]) : [];

/** The context of a meta-training run: the optimizee and its kinds. */
export interface MetaProblem<P extends Params> {
  /** The optimizee's model. */
  readonly model: ModelFn<P>;
  /** The optimizee's loss. */
  readonly lossFn: Loss;
  /** The kind of each leaf of θ, in leaf order. */
  readonly kinds: readonly ParamKind[];
}

const detachTree = <P extends Params>(p: P): P => mapTree(p, detach);
/** The multiplicative noise u ~ U[1 − w, 1 + w] for each inner step and leaf, from a key. */
export const windowNoise = <P extends Params>(key: Key, like: P, steps: number, w: number): P[] =>
  Array.from(
    { length: steps },
    (_, i) =>
      mapTree(
        like,
        (x, j) => tf.tensor(uniform(foldIn(foldIn(key, i), j), x.size, 1 - w, 1 + w), x.shape),
      ),
  );

const lossOf = <P extends Params>(pr: MetaProblem<P>, theta: P, b: Batch): tf.Scalar => {
  const out = pr.model(plain, theta, b.x);
  return pr.lossFn.value(out instanceof tf.Tensor ? out : out.output, b.y);
};

/** The result of unrolling one window (tensors live in the caller's scope). */
export interface Window<P extends Params> {
  /** M, the softmax-weighted post-update loss (0 when T = 1). */
  readonly metaLoss: tf.Scalar;
  /** H = mean h_i. */
  readonly hessianLoss: tf.Scalar;
  /** θ at the window's end. */
  readonly thetaEnd: P;
  /** MLHF's inner state at the window's end. */
  readonly innerEnd: MlhfState<P>;
  /** Frees the window's curvature linearizations: call after any backward pass through it. */
  readonly release: () => void;
  /**
   * The values its diagnostics come from, on the device: ℓ_i, ℓ_{i+1}, ℓ′_i and ‖r_i‖ for each
   * step, in that order ({@link windowNumbers} turns them into `numbers` once read).
   */
  readonly readings: tf.Tensor1D;
  /** tf.memory().numBytes at the window's end (a host number). */
  readonly windowBytes: number;
}

/** The window's per-step averages of the diagnostics (the rest come from the update). */
export type WindowNumbers = Omit<
  MetaDiagnostics,
  | "iteration"
  | "metaLoss"
  | "hessianLoss"
  | "l2Loss"
  | "gradNorm"
  | "metaNorm"
  | "clipped"
  | "skipped"
  | "reset"
  | "replaySize"
>;

/** A window's diagnostics from its `readings` once read (host float64 means, as before). */
export const windowNumbers = (
  values: ArrayLike<number>,
  steps: number,
  windowBytes: number,
): WindowNumbers => {
  const T = steps;
  const ell = Array.from({ length: T }, (_, i) => values[i]);
  const ellNext = Array.from({ length: T - 1 }, (_, i) => values[T + i]);
  const ellPrime = Array.from({ length: T }, (_, i) => values[2 * T - 1 + i]);
  const rNorms = Array.from({ length: T }, (_, i) => values[3 * T - 1 + i]);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(xs.length, 1);
  return {
    rLoss: mean(rNorms),
    meanLossChange: mean(ellNext.map((v, i) => v - ell[i])),
    meanPostUpdateChange: mean(ellPrime.map((v, i) => v - ell[i])),
    baseLoss: ell[T - 1],
    windowBytes,
  };
};

/**
 * Unrolls T = batches.length training-mode MLHF steps from (θ, S) with meta-weights φ and the
 * given noise; differentiable in φ. Curvature objects are created and disposed inside.
 */
export const unrollWindow = <P extends Params>(
  pr: MetaProblem<P>,
  o: MetaTrainOptions,
  meta: MetaWeights,
  theta0: P,
  inner0: MlhfState<P>,
  batches: readonly Batch[],
  noise: readonly P[],
  taped?: TapedCoordinates,
): Window<P> => {
  const T = batches.length;
  let theta = theta0, inner = inner0;
  const ell: tf.Scalar[] = [],
    ellNext: tf.Scalar[] = [],
    ellPrime: tf.Scalar[] = [],
    h: tf.Scalar[] = [];
  const rNorms: tf.Scalar[] = [];
  // G_i's backward pass (ū ↦ G_i ū) runs during the caller's tf.grads, so the linearizations
  // live until `release()`.
  const curvatures: { dispose(): void }[] = [];
  const release = () => curvatures.forEach((c) => c.dispose());
  for (let i = 0; i < T; i++) {
    const thetaSg = detachTree(theta); // sg(θ_i): G_i, g_i and the update start from its value
    leaves(thetaSg).forEach((t) => tf.keep(t)); // G_i reads it in the backward pass too
    curvatures.push({ dispose: () => tf.dispose(leaves(thetaSg)) });
    const gn = gaussNewtonProduct(pr.model, pr.lossFn, thetaSg, batches[i]);
    curvatures.push(gn);
    try {
      ell.push(detach(gn.loss));
      const G = symmetricProduct(gn, thetaSg);
      const d = mlhfDirection(meta, inner, gn.gradient, G, pr.kinds, o, taped);
      const g = gn.gradient;
      h.push(tf.neg(tf.div(vdot(g, d.x), tf.sqrt(vdot(d.x, sub(g, d.r))))) as tf.Scalar);
      rNorms.push(detach(norm(d.r)));
      const thetaNorm = norm(thetaSg); // θ_i is cut (sg), so no gradient flows through it
      const factor = tf.minimum(
        1,
        tf.div(tf.mul(o.clipFraction, thetaNorm), tf.mul(o.lr, norm(d.x))),
      );
      const step = zipTree(d.x, noise[i], (x, u) => tf.mul(tf.mul(x, u), factor));
      const next = addScaled(thetaSg, -o.lr, step);
      ellPrime.push(lossOf(pr, next, batches[i]));
      if (i + 1 < T) ellNext.push(lossOf(pr, next, batches[i + 1]));
      theta = next;
      inner = d.next;
    } catch (e) {
      release();
      throw e;
    }
  }
  // m_i (docs/algorithm.md#meta-losses) for i < T−1; M = Σ softmax(sg m)_i m_i.
  const metaLoss = windowMetaLoss(o.metaLoss ?? "raw", ell, ellPrime, ellNext);
  const hessianLoss = tf.mean(tf.stack(h)) as tf.Scalar;
  const readings = detach(
    tf.concat([...ell, ...ellNext, ...ellPrime, ...rNorms].map((t) => tf.reshape(t, [1]))),
  ) as tf.Tensor1D;
  return {
    metaLoss,
    hessianLoss,
    thetaEnd: theta,
    innerEnd: inner,
    release,
    readings,
    windowBytes: tf.memory().numBytes,
  };
};

/** The λ networks (trained on 10·M) or the preconditioner and x₀ networks (trained on H). */
type Group = "lambda" | "precond";
const ROLES: Record<Group, readonly Role[]> = {
  lambda: ["lambda"],
  precond: ["precond", "x0"],
};
const groupOf = (meta: MetaWeights, g: Group): MetaWeights =>
  Object.fromEntries(
    Object.entries(meta).flatMap(([k, nets]) => {
      const picked = ROLES[g].flatMap((r) => (nets?.[r] ? [[r, nets[r]]] : []));
      return picked.length ? [[k, Object.fromEntries(picked)]] : [];
    }),
  ) as MetaWeights;
const merge = (a: MetaWeights, b: MetaWeights): MetaWeights => {
  const out: Record<string, object> = {};
  for (const m of [a, b]) {
    for (const [k, v] of Object.entries(m)) out[k] = { ...(out[k] ?? {}), ...v };
  }
  return out as MetaWeights;
};
/** The meta-weights in a fixed order: kinds as in PARAM_KINDS, roles lambda, precond, x0. */
const canonical = (m: MetaWeights): MetaWeights =>
  Object.fromEntries(
    PARAM_KINDS.flatMap((k) => (m[k] ? [[k, m[k]] as const] : [])).map(([k, n]) => [
      k,
      Object.fromEntries(
        (["lambda", "precond", "x0"] as const).flatMap((r) => (n?.[r] ? [[r, n[r]]] : [])),
      ),
    ]),
  ) as MetaWeights;

/**
 * ∂(scale·L)/∂φ_group for L = M (λ networks) or H (preconditioner), everything else held fixed.
 * Returns the gradient tree (shaped like the group) and the window (from this pass).
 */
export const windowGradient = <P extends Params>(
  pr: MetaProblem<P>,
  o: MetaTrainOptions,
  meta: MetaWeights,
  group: Group,
  theta: P,
  inner: MlhfState<P>,
  batches: readonly Batch[],
  noise: readonly P[],
  taped?: TapedCoordinates,
): { grads: MetaWeights; window: Window<P> } => {
  const mine = groupOf(meta, group);
  const other = groupOf(meta, group === "lambda" ? "precond" : "lambda");
  const xs = leaves(mine as Params);
  let win!: Window<P>;
  const f = (...vs: tf.Tensor[]) => {
    const w = merge(unflatten(mine as Params, vs) as MetaWeights, other);
    win = unrollWindow(pr, o, w, theta, inner, batches, noise, taped);
    tf.keep(win.metaLoss);
    tf.keep(win.hessianLoss);
    tf.keep(win.readings);
    leaves(win.thetaEnd).forEach((t) => tf.keep(t));
    const st = win.innerEnd;
    leaves(st.xPrev).forEach((t) => tf.keep(t));
    leaves(st.rPrev).forEach((t) => tf.keep(t));
    if (st.features) [...st.features.g, ...st.features.x].forEach((t) => tf.keep(t));
    for (const roles of Object.values(st.rnn)) {
      for (const s of Object.values(roles ?? {})) [...s!.c, ...s!.h].forEach((t) => tf.keep(t));
    }
    return group === "lambda" ? tf.mul(o.metaLossScale, win.metaLoss) : win.hessianLoss;
  };
  let gs: tf.Tensor[];
  try {
    if (group === "lambda" && batches.length < 2) {
      // T = 1: M ≡ 0 (no next batch), so the λ networks' meta-gradient is zero; tf.grads
      // would refuse a loss that does not depend on them.
      tf.tidy(() => void f(...xs));
      gs = xs.map((x) => tf.zerosLike(x));
    } else gs = tf.grads(f)(xs);
  } finally {
    win?.release();
  }
  return { grads: unflatten(mine as Params, gs) as MetaWeights, window: win };
};

/** Initial meta-training state: θ from the model's init, zero inner state, Adam moments zero. */
export const initMetaTrainState = <P extends Params>(
  pr: MetaProblem<P>,
  o: MetaTrainOptions,
  theta: P,
  meta: MetaWeights,
): MetaTrainState<P> => {
  const adam = scaleByAdam<MetaWeights & Params>().init(canonical(meta) as MetaWeights & Params);
  return {
    iteration: 0,
    theta,
    inner: initMlhfState(theta, pr.kinds, o),
    meta: canonical(meta),
    adam,
    replay: [mapTree(theta, (t) => t.clone())],
    bestLoss: o.replayMode === "intended" ? Infinity : 0,
    bestNorm: Infinity,
    skipped: 0,
  };
};

/**
 * The first non-finite tensor a meta-training state carries (the replay buffer: its newest entry),
 * named by its path ("meta-weights dense/kernel/lambda/layers/0/kernel", "inner state
 * rnn/dense/kernel/lambda/c/0", "params/w1"), or null. Slow (one read per tensor): for after a
 * device-side flag said non-finite.
 */
export const describeNonFiniteState = <P extends Params>(
  s: MetaTrainState<P>,
): Promise<string | null> =>
  describeNonFinite([
    ["meta-weights", s.meta],
    ["meta-weights' Adam state", { mu: s.adam.mu, nu: s.adam.nu }],
    ["params", s.theta, "/"],
    ["inner state", s.inner],
    [`replay/${s.replay.length - 1}`, s.replay.at(-1) ?? null, "/"],
  ]);

/** The result of {@link metaIteration}. */
export interface MetaIterationResult<P extends Params> {
  /** The next state. */
  readonly state: MetaTrainState<P>;
  /** The iteration's diagnostics. */
  readonly diagnostics: MetaDiagnostics;
  /** Null, or the first tensor of the next state that holds a NaN or ±∞. */
  readonly nonFinite: string | null;
}

/**
 * A meta-iteration's device part ({@link metaIterationDevice}): everything computed, nothing read.
 * `read` holds the numbers the host needs; {@link finishMetaIteration} takes them.
 */
export interface PendingMetaIteration<P extends Params> {
  /**
   * [M, H, ‖∇‖, ‖φ‖, finite, clipped, ‖θ_T‖, finite flag of what is carried on, …window readings].
   */
  readonly read: tf.Tensor1D;
  /** Finishes the iteration from `read`'s values (the reset draw, disposal, diagnostics). */
  readonly finish: (values: ArrayLike<number>) => {
    state: MetaTrainState<P>;
    diagnostics: MetaDiagnostics;
    finite: boolean;
  };
}

/**
 * One meta-iteration's device work without a host read: both windows' meta-gradients, the clip
 * and the Adam step of φ, decided on the device (`tf.where`: a non-finite meta-gradient leaves φ
 * and its moments as they were), and the numbers to read as one tensor.
 */
export const metaIterationDevice = <P extends Params>(
  pr: MetaProblem<P>,
  o: MetaTrainOptions,
  s: MetaTrainState<P>,
  batches: readonly Batch[],
  key: Key,
  mean?: (ts: readonly tf.Tensor[]) => tf.Tensor[],
): PendingMetaIteration<P> => {
  const noise = windowNoise(foldIn(key, 1), s.theta, batches.length, o.noise);
  const hasPrecond = o.preconditioner === "rnn";
  const taped = o.coordinateFraction < 1
    ? tapedCoordinates(foldIn(key, 3), pr.kinds, leaves(s.theta), o.coordinateFraction)
    : undefined;
  try {
    const a = windowGradient(pr, o, s.meta, "lambda", s.theta, s.inner, batches, noise, taped);
    const b = hasPrecond
      ? windowGradient(pr, o, s.meta, "precond", s.theta, s.inner, batches, noise, taped)
      : null;
    const win = a.window;
    const adamT = scaleByAdam<MetaWeights & Params>();
    const out = tf.tidy(() => {
      const phi = s.meta as MetaWeights & Params;
      const own = canonical(merge(a.grads, b ? b.grads : {})) as MetaWeights & Params;
      // Data-parallel meta-training: the meta-gradient and both meta-losses averaged over ranks.
      const raw = mean ? unflatten(own, mean(leaves(own))) : own;
      const grads = addScaled(raw, o.l2, phi); // ∇R = 2e-7·φ for both groups
      const gNorm = norm(grads), pNorm = norm(phi);
      const losses = [win.metaLoss, (b ? b.window : win).hessianLoss];
      const [mLoss, hLoss] = mean ? mean(losses) : losses;
      const finite = tf.logicalAnd(
        tf.isFinite(gNorm),
        tf.logicalAnd(tf.isFinite(mLoss), tf.isFinite(hLoss)),
      ) as tf.Scalar;
      const clipped = tf.logicalAnd(finite, tf.greater(gNorm, pNorm)) as tf.Scalar;
      const g = scale(grads, tf.where(clipped, tf.div(pNorm, gNorm), tf.scalar(1)) as tf.Scalar);
      const [dir, adam2] = adamT.update(g, s.adam, { params: phi });
      const keep = <T extends Params>(next: T, prev: T): T =>
        zipTree(next, prev, (x, y) => tf.where(finite, x, y));
      const meta = keep(addScaled(phi, -o.metaLr, dir), phi);
      const mu = keep(adam2.mu, s.adam.mu), nu = keep(adam2.nu, s.adam.nu);
      const flag = finiteFlag(win.thetaEnd, win.innerEnd, meta, mu, nu, s.replay.at(-1));
      const read = tf.concat([
        ...[mLoss, hLoss, gNorm, pNorm, finite, clipped, norm(win.thetaEnd), flag].map((t) =>
          tf.reshape(tf.cast(t, "float32"), [1])
        ),
        win.readings,
      ]);
      return { meta, mu, nu, count: adam2.count, read } as unknown as tf.TensorContainer;
    }) as unknown as {
      meta: MetaWeights & Params;
      mu: MetaWeights & Params;
      nu: MetaWeights & Params;
      count: number;
      read: tf.Tensor1D;
    };
    // What the host decides needs no tensor of the windows but θ_T and S_T: free the rest now.
    tf.dispose(leaves(a.grads as Params));
    if (b) tf.dispose(leaves(b.grads as Params));
    tf.dispose([a.window.metaLoss, a.window.hessianLoss, a.window.readings]);
    if (b) {
      tf.dispose([b.window.metaLoss, b.window.hessianLoss, b.window.readings]);
      tf.dispose([...leaves(b.window.thetaEnd), ...stateLeaves(b.window.innerEnd)]);
    }
    tf.dispose([...leaves(s.theta), ...stateLeaves(s.inner)]);
    tf.dispose(leaves(s.meta as Params));
    tf.dispose([...leaves(s.adam.mu), ...leaves(s.adam.nu)]);
    const finish = (v: ArrayLike<number>) => {
      const [mLoss, hLoss, gNorm, pNorm] = [v[0], v[1], v[2], v[3]];
      const finiteMeta = v[4] === 1, clipped = v[5] === 1, thetaEndNorm = v[6];
      const numbers = windowNumbers(Array.from(v).slice(8), batches.length, win.windowBytes);
      // Continue the trajectory from θ_T, S_T (cut), or reset with probability 1 − keepProb.
      let theta = win.thetaEnd, inner = win.innerEnd, replay = s.replay;
      let bestLoss = s.bestLoss, bestNorm = s.bestNorm;
      const draw = stream(foldIn(key, 2));
      const reset = draw() >= o.keepProb;
      const toDispose: tf.Tensor[] = [];
      if (reset) {
        // The store condition (docs/algorithm.md#experience-replay, (a)); dead as written since
        // bestLoss starts at 0.
        if (numbers.baseLoss <= bestLoss && thetaEndNorm < 1.2 * bestNorm) {
          replay = [...replay, mapTree(theta, (t) => t.clone())];
          if (replay.length > o.replaySize) {
            toDispose.push(...leaves(replay[0]));
            replay = replay.slice(1);
          }
          bestLoss = numbers.baseLoss;
          bestNorm = thetaEndNorm;
        }
        const pick = replay[Math.floor(draw() * replay.length)];
        toDispose.push(...leaves(theta));
        toDispose.push(...stateLeaves(inner));
        theta = mapTree(pick, (t) => t.clone());
        inner = initMlhfState(theta, pr.kinds, o);
      }
      tf.dispose(toDispose);
      const diagnostics: MetaDiagnostics = {
        iteration: s.iteration,
        metaLoss: mLoss,
        hessianLoss: hLoss,
        l2Loss: 0.5 * o.l2 * pNorm * pNorm,
        ...numbers,
        gradNorm: gNorm,
        metaNorm: pNorm,
        clipped,
        skipped: !finiteMeta,
        reset,
        replaySize: replay.length,
      };
      const state: MetaTrainState<P> = {
        iteration: s.iteration + 1,
        theta,
        inner,
        meta: out.meta,
        adam: { count: finiteMeta ? out.count : s.adam.count, mu: out.mu, nu: out.nu },
        replay,
        bestLoss,
        bestNorm,
        skipped: s.skipped + (finiteMeta ? 0 : 1),
      };
      return { state, diagnostics, finite: v[7] === 1 };
    };
    return { read: out.read, finish };
  } finally {
    tf.dispose(noise.flatMap((n) => leaves(n)));
    tf.dispose(tapedCoordinateTensors(taped));
  }
};

/**
 * Finishes a pending meta-iteration from its read values; `nonFinite` is found (slowly, one read
 * per tensor) only when the device flag said non-finite.
 */
export const finishMetaIteration = async <P extends Params>(
  p: PendingMetaIteration<P>,
  values: ArrayLike<number>,
): Promise<MetaIterationResult<P>> => {
  const { state, diagnostics, finite } = p.finish(values);
  return { state, diagnostics, nonFinite: finite ? null : await describeNonFiniteState(state) };
};

/**
 * One meta-iteration on T batches. Returns the next state (the previous one's tensors that are
 * not carried over are disposed), the diagnostics, and `nonFinite`: null, or the first tensor of
 * the next state that holds a NaN or ±∞ (see `describeNonFiniteState`). `key` fixes the noise and
 * the reset draw. Its numbers are read with one `await` (no synchronous read). `mean`, for
 * data-parallel meta-training (lib/distributed), averages tensors over the ranks: the
 * meta-gradient and the two meta-losses (each rank unrolls its own window).
 */
export const metaIteration = async <P extends Params>(
  pr: MetaProblem<P>,
  o: MetaTrainOptions,
  s: MetaTrainState<P>,
  batches: readonly Batch[],
  key: Key,
  mean?: (ts: readonly tf.Tensor[]) => tf.Tensor[],
): Promise<MetaIterationResult<P>> => {
  const p = metaIterationDevice(pr, o, s, batches, key, mean);
  let values: Float32Array;
  try {
    values = await p.read.data() as Float32Array;
  } finally {
    p.read.dispose();
  }
  return finishMetaIteration(p, values);
};

/** Every tensor of an inner MLHF state. */
export const stateLeaves = <P extends Params>(s: MlhfState<P>): tf.Tensor[] => [
  ...leaves(s.xPrev),
  ...leaves(s.rPrev),
  ...Object.values(s.rnn).flatMap((roles) =>
    Object.values(roles ?? {}).flatMap((st) => [...st!.c, ...st!.h])
  ),
  ...(s.features ? [...s.features.g, ...s.features.x] : []),
];

/** Every tensor a meta-training state holds (for keeping or disposing it as a whole). */
export const metaTrainStateTensors = <P extends Params>(s: MetaTrainState<P>): tf.Tensor[] => [
  ...leaves(s.theta),
  ...stateLeaves(s.inner),
  ...leaves(s.meta as Params),
  ...leaves(s.adam.mu),
  ...leaves(s.adam.nu),
  ...s.replay.flatMap((p) => leaves(p)),
];
