/**
 * Parameter kinds: MLHF's meta-networks are shared by every parameter tensor of one kind
 * (docs/algorithm.md#parameter-kinds). A kind is explicit data attached to each parameter leaf by
 * the model, never parsed from a name (docs/algorithm.md#explicit-parameter-kinds).
 * @module
 */

/**
 * The six kinds of the original's `RNN_optimizers`, in the original's order
 * (docs/algorithm.md#parameter-kinds).
 */
export const PARAM_KINDS = [
  "conv2d/kernel",
  "conv2d/bias",
  "batch/gamma",
  "batch/beta",
  "dense/kernel",
  "dense/bias",
] as const;
/** A parameter kind: the layer type and the parameter's role in it (one meta-network set each). */
export type ParamKind = typeof PARAM_KINDS[number];

/** True when s names a known kind. */
export const isParamKind = (s: unknown): s is ParamKind =>
  typeof s === "string" && (PARAM_KINDS as readonly string[]).includes(s);

/** Leaf indices grouped by kind, in first-appearance order of the kinds. */
export const groupByKind = (kinds: readonly ParamKind[]): Map<ParamKind, number[]> => {
  const groups = new Map<ParamKind, number[]>();
  kinds.forEach((k, i) => {
    if (!isParamKind(k)) throw new Error(`leaf ${i}: unknown parameter kind '${k}'`);
    const g = groups.get(k);
    if (g) g.push(i);
    else groups.set(k, [i]);
  });
  return groups;
};
