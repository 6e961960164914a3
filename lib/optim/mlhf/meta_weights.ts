/**
 * Initial meta-weights: for each parameter kind, the networks the options need (RNN_λ, RNN_P and,
 * with `xInit: 'rnn'`, RNN_x), glorot-uniform kernels and zero biases, from one seed.
 * @module
 */
import { foldIn, type Key } from "../../prng.ts";
import { initLstmNet, lstmNetTensors } from "./lstm.ts";
import type { KindNets, MetaWeights, MlhfOptions } from "./direction.ts";
import { PARAM_KINDS, type ParamKind } from "../../param_kinds.ts";
import type { tf } from "../../_deps.ts";

/** Fresh meta-weights for the given kinds (default: all six). */
export const initMetaWeights = (
  key: Key,
  o: Pick<MlhfOptions, "dampingMode" | "preconditioner" | "xInit">,
  kinds: readonly ParamKind[] = PARAM_KINDS,
): MetaWeights => {
  const out: MetaWeights = {};
  kinds.forEach((kind) => {
    const k = foldIn(key, PARAM_KINDS.indexOf(kind) + 1);
    const nets: { -readonly [R in keyof KindNets]: KindNets[R] } = {};
    if (o.dampingMode === "rnn") nets.lambda = initLstmNet(foldIn(k, 1));
    if (o.preconditioner === "rnn") nets.precond = initLstmNet(foldIn(k, 2));
    if (o.xInit === "rnn") nets.x0 = initLstmNet(foldIn(k, 3));
    out[kind] = nets;
  });
  return out;
};

/** Every tensor of the meta-weights in a fixed order (kind, role, layer). */
export const metaWeightTensors = (m: MetaWeights): tf.Tensor[] =>
  PARAM_KINDS.flatMap((kind) => {
    const n = m[kind];
    if (!n) return [];
    return (["lambda", "precond", "x0"] as const).flatMap((
      r,
    ) => (n[r] ? lstmNetTensors(n[r]!) : []));
  });
