/** Shape ops, all linear: reshape and zero padding. @module */
import { tf } from "../lib/_deps.ts";
import type { OpDef, Tangent } from "./types.ts";

/** The attributes of {@link reshape}. */
export interface ReshapeAttrs {
  /** The output's shape. */
  readonly shape: readonly number[];
}

/** Reshape (linear; the transpose reshapes back). */
export const reshape: OpDef<ReshapeAttrs> = {
  name: "reshape",
  primal: ([x], { shape }) => tf.reshape(x, [...shape]),
  jvp: (_xs, y, [dx]): Tangent => dx && tf.reshape(dx, y.shape),
  transpose: ([x], _y, ct, needs) => [needs[0] ? tf.reshape(ct, x.shape) : null],
};

/** The attributes of {@link pad}. */
export interface PadAttrs {
  /** [before, after] per axis. */
  readonly paddings: readonly (readonly [number, number])[];
}

/** Zero padding (docs/algorithm.md#r-forward-and-transpose-rules: the same paddings). */
export const pad: OpDef<PadAttrs> = {
  name: "pad",
  primal: ([x], { paddings }) => tf.pad(x, paddings.map(([a, b]) => [a, b] as [number, number])),
  jvp: (_xs, _y, [dx], { paddings }): Tangent =>
    dx && tf.pad(dx, paddings.map(([a, b]) => [a, b] as [number, number])),
  transpose: ([x], _y, ct, needs, { paddings }) => [
    needs[0] ? tf.slice(ct, paddings.map(([a]) => a), x.shape) : null,
  ],
};
