/**
 * MLHF as an optimizer (evaluation / normal training, docs/algorithm.md#the-update): one
 * `mlhfDirection` per step, then θ ← θ − η·x with no momentum, weight decay, clipping or line
 * search. The LSTM states and x_prev, r_prev persist across steps in the optimizer state. Needs
 * `ctx.curvature`.
 * @module
 */
import { type Params, scale } from "../../tree.ts";
import type { GradientTransformation } from "../base.ts";
import { requireCurvature } from "../hessian_free.ts";
import {
  checkMetaWeights,
  initMlhfState,
  type MetaWeights,
  MLHF_DEFAULTS,
  mlhfDirection,
  type MlhfOptions,
  type MlhfState,
} from "./direction.ts";
import type { ParamKind } from "../../param_kinds.ts";

/** Settings of the MLHF optimizer: MLHF's options (defaults `MLHF_DEFAULTS`) and what it runs on. */
export interface MlhfOptimizerOptions extends Partial<MlhfOptions> {
  /** The trained meta-networks, by parameter kind and role. */
  readonly metaWeights: MetaWeights;
  /** The kind of each parameter leaf, in leaf order (from the model's init). */
  readonly kinds: readonly ParamKind[];
  /**
   * η (the original's scripts, docs/algorithm.md#presets: 2 for the CIFAR convnet at batch 128, 8
   * at batch 512, 0.5 for ResNet-18).
   */
  readonly learningRate: number;
}

/** The MLHF optimizer. Throws at init when a kind present has no meta-network. */
export const mlhf = <P extends Params>(
  { metaWeights, kinds, learningRate, ...rest }: MlhfOptimizerOptions,
): GradientTransformation<MlhfState<P>, P> => {
  const o: MlhfOptions = { ...MLHF_DEFAULTS, ...rest };
  return {
    init: (params) => {
      checkMetaWeights(metaWeights, kinds, o);
      return initMlhfState(params, kinds, o);
    },
    update: (g, state, ctx) => {
      const curv = requireCurvature(ctx, "mlhf");
      const d = mlhfDirection(metaWeights, state, g, curv.product, kinds, o);
      return [scale(d.x, -learningRate), d.next];
    },
  };
};
