/** Matrix product, bilinear: ẏ = op(ȧ)·op(b) + op(a)·op(ḃ). @module */
import type { tf } from "../lib/_deps.ts";
import { matMulT } from "./_matmul.ts";
import type { OpDef } from "./types.ts";
import { addT } from "./_tangent.ts";

/** The attributes of {@link matMul}. */
export interface MatMulAttrs {
  /** Use aᵀ. */
  readonly transposeA: boolean;
  /** Use bᵀ. */
  readonly transposeB: boolean;
}

/** y = op(a)·op(b) for 2-D a, b; op is the transpose where the flag is set. */
export const matMul: OpDef<MatMulAttrs> = {
  name: "matMul",
  primal: ([a, b], { transposeA: tA, transposeB: tB }) =>
    matMulT(a as tf.Tensor2D, b as tf.Tensor2D, tA, tB),
  jvp: ([a, b], _y, [da, db], { transposeA: tA, transposeB: tB }) =>
    addT(
      da && matMulT(da as tf.Tensor2D, b as tf.Tensor2D, tA, tB),
      db && matMulT(a as tf.Tensor2D, db as tf.Tensor2D, tA, tB),
    ),
  // With A′ = op(a), B′ = op(b): dA′ = ȳ·B′ᵀ and dB′ = A′ᵀ·ȳ, transposed back where flagged.
  transpose: ([a, b], _y, ct, needs, { transposeA: tA, transposeB: tB }) => {
    const c = ct as tf.Tensor2D, A = a as tf.Tensor2D, B = b as tf.Tensor2D;
    return [
      needs[0] ? (tA ? matMulT(B, c, tB, true) : matMulT(c, B, false, !tB)) : null,
      needs[1] ? (tB ? matMulT(c, A, true, tA) : matMulT(A, c, !tA, false)) : null,
    ];
  },
};
