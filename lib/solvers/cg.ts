/**
 * Preconditioned conjugate gradient over parameter trees, exactly as MLHF runs it
 * (docs/algorithm.md#preconditioned-cg): a fixed iteration budget K, a warm start x₀, a diagonal
 * (inverse) preconditioner P applied as y = P ⊙ r, global inner products (one α and one β for the
 * whole network) and the original's guards: α = ρ / max(⟨p, q⟩, ε), β = ρ′ / max(ρ, ε), stop when
 * ‖r‖ < ε, with ε = 1e-6.
 *
 * Everything is ordinary TF.js ops, so the solution is differentiable with respect to anything A,
 * P, b or x₀ depend on (meta-training differentiates through every iteration,
 * docs/algorithm.md#what-is-cut). The caller owns memory: wrap calls in `tf.tidy` (or `tidyTree`).
 * @module
 */
import type { tf } from "../_deps.ts";
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
  /** Iterations run. */
  readonly iterations: number;
}

/** A(v) = G(v) + λ ⊙ v, with λ a per-coordinate tree or one number (docs/algorithm.md#damping). */
export const dampedOperator = <P extends Params>(
  g: (v: P) => P,
  lambda: P | number,
): (v: P) => P =>
(v) => (typeof lambda === "number" ? addScaled(g(v), lambda, v) : add(g(v), mul(lambda, v)));

const normOf = (r: Params): number => Math.sqrt((vdot(r, r) as tf.Scalar).dataSync()[0]);

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
  let k = 0;
  while (k < maxIterations && normOf(r) >= epsilon) {
    const q = A(p);
    const alpha = rho.div(vdot(p, q).maximum(epsilon)) as tf.Scalar;
    x = addScaled(x, alpha, p);
    r = addScaled(r, alpha.neg() as tf.Scalar, q);
    y = precond(r);
    const rhoNext = vdot(r, y);
    const beta = rhoNext.div(rho.maximum(epsilon)) as tf.Scalar;
    rho = rhoNext;
    p = addScaled(y, beta, p);
    k++;
  }
  return { x, r, r0, preconditioner: P, iterations: k };
};
