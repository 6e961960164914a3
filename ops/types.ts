/**
 * The DSL's core types. Every primitive op is one `OpDef`: its primal rule, its R-forward (JVP) rule
 * and the transpose of that JVP (the VJP), side by side. Interpreters (`ops/interpret.ts`) evaluate a
 * model written once against `Nn` either plainly (TF.js's tape then gives first-order gradients) or
 * while recording a linearization (J·v and Jᵀ·u replayed from saved primals,
 * docs/algorithm.md#r-forward-and-transpose-rules).
 * @module
 */
import type { tf } from "../lib/_deps.ts";

/** A tangent or cotangent: a tensor, or `null` for a symbolic zero (data inputs cost nothing). */
export type Tangent = tf.Tensor | null;

/**
 * One primitive op. `jvp` must be linear in `dxs`; `transpose` must be its exact adjoint:
 * Σᵢ⟨ctᵢ_out, dxᵢ⟩ = ⟨ct, jvp(dxs)⟩ (tested for every op in `tests/jvp_rules_test.ts`).
 * `residuals` computes, once per linearization, what both rules reuse (masks, derivatives).
 */
export interface OpDef<A, R = unknown> {
  /** The op's name (in recorded ops and errors). */
  readonly name: string;
  /** y = f(xs). */
  primal(xs: readonly tf.Tensor[], attrs: A): tf.Tensor;
  /** What `jvp` and `transpose` reuse, computed once per linearization from the primal values. */
  residuals?(xs: readonly tf.Tensor[], y: tf.Tensor, attrs: A): R;
  /** ẏ = J·ẋ at xs: linear in `dxs` (a null tangent is a symbolic zero). */
  jvp(xs: readonly tf.Tensor[], y: tf.Tensor, dxs: readonly Tangent[], attrs: A, res: R): Tangent;
  /**
   * The adjoint of `jvp`: the cotangent of each input from the output's `ct` (null where `needs` is
   * false).
   */
  transpose(
    xs: readonly tf.Tensor[],
    y: tf.Tensor,
    ct: tf.Tensor,
    needs: readonly boolean[],
    attrs: A,
    res: R,
  ): readonly Tangent[];
}

/** Applies a primitive (the one hook an interpreter provides). */
export type Apply = <A, R>(op: OpDef<A, R>, xs: readonly tf.Tensor[], attrs: A) => tf.Tensor;
