/**
 * Hessian-Free baselines (docs/algorithm.md#presets): HF with fixed damping and HF with the
 * Levenberg–Marquardt heuristic (docs/algorithm.md#levenberg-marquardt-rule). Each step solves
 * (G + λI)x = g with K iterations of CG (P ≡ 1) warm started from the previous solution, then
 * θ ← θ − η·x. Needs `ctx.curvature`; the LM variant also needs `ctx.model`, `ctx.lossFn` and
 * `ctx.batch` to measure ρ on the previous batch. LM's λ, ρ, ℓ and q stay on the device (float32
 * scalars): a step reads nothing back.
 * @module
 */
import { tf } from "../_deps.ts";
import { type Params, scale, sub, vdot, zerosLike } from "../tree.ts";
import { conjugateGradient, dampedOperator } from "../solvers/cg.ts";
import {
  levenbergMarquardtDampingOnDevice,
  predictedReductionOnDevice,
  reductionRatioOnDevice,
} from "../solvers/levenberg_marquardt.ts";
import type { GradientTransformation, UpdateContext } from "./base.ts";
import type { Batch, GaussNewton } from "../curvature/gauss_newton.ts";
import { plain } from "../../ops/interpret.ts";

/** Settings of {@link hessianFree}. */
export interface HessianFreeOptions {
  /** η: the update is −η·x. */
  readonly learningRate: number;
  /** λ (fixed), or the initial λ for LM. */
  readonly damping: number;
  /** K, the CG iterations per step. */
  readonly cgIterations: number;
  /** `'previous'`: x₀ = last solution (the original's `x_use='x'`); `'zero'`; `'gradient'`. */
  readonly xInit?: "previous" | "zero" | "gradient";
  /**
   * Levenberg–Marquardt adaptation of λ with this factor δ
   * (docs/algorithm.md#levenberg-marquardt-rule); omitted = fixed λ.
   */
  readonly lmDecay?: number;
}

/** The state of {@link hessianFree}. */
export interface HessianFreeState<P extends Params> {
  /** The last CG solution x (x₀ of the next solve with `xInit: 'previous'`). */
  readonly xPrev: P;
  /** λ, the current damping (a number when fixed, a scalar tensor with LM). */
  readonly lambda: number | tf.Scalar;
  /** LM bookkeeping from the previous step (absent before the first step). */
  readonly prevBatch?: Batch;
  /** ℓ_{t−1}, the loss on the previous batch before the step. */
  readonly prevLoss?: tf.Scalar;
  /** q_{t−1}, the quadratic model's predicted change for the previous step. */
  readonly prevQ?: tf.Scalar;
}

/** The step's curvature from `ctx`, or an error naming `who` when the caller built none. */
export const requireCurvature = <P extends Params>(
  ctx: UpdateContext<P>,
  who: string,
): GaussNewton<P> => {
  if (!ctx.curvature) {
    throw new Error(`${who}: ctx.curvature is required (build it with gaussNewtonProduct)`);
  }
  return ctx.curvature;
};

/** HF with fixed damping, or with LM damping when `lmDecay` is set. Returns −η·x. */
export const hessianFree = <P extends Params>(
  o: HessianFreeOptions,
): GradientTransformation<HessianFreeState<P>, P> => ({
  init: (params) => ({
    xPrev: zerosLike(params),
    lambda: o.lmDecay === undefined ? o.damping : tf.scalar(o.damping),
  }),
  update: (g, state, ctx) => {
    const curv = requireCurvature(ctx, "hessianFree");
    let lambda = state.lambda;
    if (o.lmDecay !== undefined) {
      if (!ctx.model || !ctx.lossFn || !ctx.batch) {
        throw new Error("hessianFree (LM): ctx.model, ctx.lossFn and ctx.batch are required");
      }
      let rho = tf.scalar(0.5);
      if (state.prevBatch && state.prevLoss !== undefined && state.prevQ !== undefined) {
        const model = ctx.model, lossFn = ctx.lossFn, prev = state.prevBatch;
        const out = model(plain, ctx.params, prev.x);
        const now = lossFn.value(out instanceof tf.Tensor ? out : out.output, prev.y);
        rho = reductionRatioOnDevice(now, state.prevLoss, state.prevQ);
      }
      const lambda0 = typeof lambda === "number" ? tf.scalar(lambda) : lambda;
      lambda = levenbergMarquardtDampingOnDevice(lambda0, rho, o.lmDecay);
    }
    const x0 = o.xInit === "zero" ? zerosLike(g) : o.xInit === "gradient" ? g : state.xPrev;
    const { x, r } = conjugateGradient(dampedOperator(curv.product, lambda), g, {
      x0,
      maxIterations: o.cgIterations,
    });
    const updates = scale(x, -o.learningRate);
    if (o.lmDecay === undefined) return [updates, { xPrev: x, lambda }];
    const batch = ctx.batch!;
    return [updates, {
      xPrev: x,
      lambda,
      prevBatch: { x: batch.x.clone(), y: batch.y.clone() },
      prevLoss: curv.loss.clone(),
      prevQ: predictedReductionOnDevice(o.learningRate, vdot(g, x), vdot(x, sub(g, r))),
    }];
  },
});
