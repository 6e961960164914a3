/**
 * Preconditioned conjugate gradient over parameter trees, exactly as MLHF runs it
 * (docs/algorithm.md#preconditioned-cg): a fixed iteration budget K, a warm start x₀, a diagonal
 * (inverse) preconditioner P applied as y = P ⊙ r, global inner products (one α and one β for the
 * whole network) and the original's guards: α = ρ / max(⟨p, q⟩, ε), β = ρ′ / max(ρ, ε), stop when
 * ‖r‖ < ε, with ε = 1e-6.
 *
 * The stop test never reads the device: the loop always runs K iterations, and the step size is
 * α·m with m = [‖r‖ ≥ ε] computed on the device, so once ‖r‖ < ε, x and r stay as they are (x + 0·p)
 * and m stays 0 (r no longer changes; ρ = ⟨r, P r⟩ recomputes to the same value). The result equals
 * the original's early exit, bit for bit where the tolerance never triggers (α·1 = α), and a step
 * needs no host read (webgpu under Deno has none). A mask on α costs one scalar product per
 * iteration; `tf.where` on every leaf made meta-training 3–4× slower (on x alone, 2.7×). One
 * difference: where ‖r‖ is NaN (a NaN λ, G or b) the host loop kept x, while here x + 0·NaN is NaN,
 * so the NaN reaches x (and the parameters) in the same step.
 *
 * Everything is ordinary TF.js ops, so the solution is differentiable with respect to anything A,
 * P, b or x₀ depend on (meta-training differentiates through every iteration,
 * docs/algorithm.md#what-is-cut). The caller owns memory: wrap calls in `tf.tidy` (or `tidyTree`).
 * @module
 */
import { tf } from "../_deps.ts";
import { add, addScaled, mul, type Params, sub, vdot } from "../tree.ts";

/** ε of the original (`_EPSILON` in rnn.py). */
export const CG_EPSILON = 1e-6;

/** Settings of {@link conjugateGradient}. */
export interface PcgOptions<P extends Params> {
  /** Warm start x₀ (the previous step's solution in MLHF; zeros at a reset). */
  readonly x0: P;
  /** Iterations K (the loop also stops once ‖r‖ < ε). */
  readonly maxIterations: number;
  /**
   * The diagonal inverse preconditioner P (y = P ⊙ r), or a function of r₀ = b − A x₀ that returns
   * it (MLHF computes P after r₀, docs/algorithm.md#mlhf-direction). Omitted: P ≡ 1, plain CG.
   */
  readonly preconditioner?: P | ((r0: P) => P);
  /** Stop once ‖r‖ < ε (default {@link CG_EPSILON}). */
  readonly epsilon?: number;
}

/** What {@link conjugateGradient} returns (the caller owns the tensors). */
export interface PcgResult<P extends Params> {
  /** The solution x ≈ A⁻¹ b. */
  readonly x: P;
  /** The final residual r = b − A x (tracked by the recurrence). */
  readonly r: P;
  /** r₀ = b − A x₀. */
  readonly r0: P;
  /** The preconditioner used (undefined for P ≡ 1). */
  readonly preconditioner?: P;
  /** Iterations run: K, the loop always runs (converged ones leave everything as it was). */
  readonly iterations: number;
  /** The iterations that changed x (those before ‖r‖ < ε), counted on the device (float32). */
  readonly iterationsRun: tf.Scalar;
}

/**
 * A(v) = G(v) + λ ⊙ v, with λ a per-coordinate tree or one number, or one number as a scalar tensor
 * (docs/algorithm.md#damping).
 */
export const dampedOperator = <P extends Params>(
  g: (v: P) => P,
  lambda: P | number | tf.Scalar,
): (v: P) => P =>
(v) =>
  typeof lambda === "number" || lambda instanceof tf.Tensor
    ? addScaled(g(v), lambda as number | tf.Scalar, v)
    : add(g(v), mul(lambda, v));

/**
 * 1 while ‖r‖ ≥ ε, else 0 (float32, on the device); a NaN norm gives 0, as `NaN >= ε` stopped the
 * host loop.
 */
const stillActive = (r: Params, epsilon: number): tf.Scalar =>
  tf.cast(tf.greaterEqual(tf.sqrt(vdot(r, r)), epsilon), "float32") as tf.Scalar;

/**
 * Solves A x = b approximately with K steps of preconditioned CG
 * (docs/algorithm.md#preconditioned-cg).
 */
export const conjugateGradient = <P extends Params>(
  A: (v: P) => P,
  b: P,
  { x0, maxIterations, preconditioner, epsilon = CG_EPSILON }: PcgOptions<P>,
): PcgResult<P> => {
  const r0 = sub(b, A(x0)); // one A-product even when x₀ = 0, as in the original
  const P = typeof preconditioner === "function" ? preconditioner(r0) : preconditioner;
  const precond = (r: P): P => (P === undefined ? r : mul(P, r));
  let x = x0, r = r0;
  let y = precond(r);
  let p = y;
  let rho = vdot(r, y);
  let run: tf.Scalar = tf.scalar(0);
  for (let k = 0; k < maxIterations; k++) {
    const active = stillActive(r, epsilon);
    const q = A(p);
    const alpha = tf.mul(rho.div(vdot(p, q).maximum(epsilon)), active) as tf.Scalar;
    x = addScaled(x, alpha, p);
    r = addScaled(r, alpha.neg() as tf.Scalar, q);
    y = precond(r);
    const rhoNext = vdot(r, y);
    const beta = rhoNext.div(rho.maximum(epsilon)) as tf.Scalar;
    rho = rhoNext;
    p = addScaled(y, beta, p);
    run = tf.add(run, active);
  }
  return { x, r, r0, preconditioner: P, iterations: maxIterations, iterationsRun: run };
};
