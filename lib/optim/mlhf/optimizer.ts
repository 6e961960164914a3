/**
 * MLHF as an optimizer (evaluation / normal training, docs/algorithm.md#the-update): one
 * `mlhfDirection` per step, then θ ← θ − η·x with no momentum, weight decay, clipping or line
 * search. The LSTM states and x_prev, r_prev persist across steps in the optimizer state. Needs
 * `ctx.curvature`. With a `safeguard` (docs/algorithm.md#safeguard; not in the original, default
 * `none`), the step may be scaled (trust region) or rejected (LM test, which also needs `ctx.model`,
 * `ctx.lossFn` and `ctx.batch`), and the safeguard's state and decisions ride in the optimizer state.
 * @module
 */
import { tf } from "../../_deps.ts";
import { type Params, scale } from "../../tree.ts";
import type { GradientTransformation } from "../base.ts";
import { requireCurvature } from "../hessian_free.ts";
import { plain } from "../../../ops/interpret.ts";
import {
  checkMetaWeights,
  initMlhfState,
  type MetaWeights,
  MLHF_DEFAULTS,
  mlhfDirection,
  type MlhfOptions,
  type MlhfState,
} from "./direction.ts";
import {
  checkSafeguardOptions,
  initSafeguardState,
  type Safeguard,
  SAFEGUARD_DEFAULTS,
  safeguardDiagnostics,
  type SafeguardOptions,
  type SafeguardState,
  safeguardStep,
  selectTree,
  usesLm,
} from "./safeguard.ts";
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
  /**
   * The safeguard against diverging steps (docs/algorithm.md#safeguard): `none` (default, the
   * original), `lm`, `trust` or `lm+trust`.
   */
  readonly safeguard?: Safeguard;
  /** The safeguard's other settings (defaults `SAFEGUARD_DEFAULTS`). */
  readonly safeguardOptions?: Partial<Omit<SafeguardOptions, "mode">>;
}

/** The MLHF optimizer's state: MLHF's, plus the safeguard's when one runs. */
export type MlhfOptimizerState<P extends Params> = MlhfState<P> & {
  readonly safeguard?: SafeguardState;
};

/** The MLHF optimizer. Throws at init when a kind present has no meta-network. */
export const mlhf = <P extends Params>(
  { metaWeights, kinds, learningRate, safeguard = "none", safeguardOptions, ...rest }:
    MlhfOptimizerOptions,
): GradientTransformation<MlhfOptimizerState<P>, P> => {
  const o: MlhfOptions = { ...MLHF_DEFAULTS, ...rest };
  const sg: SafeguardOptions = { ...SAFEGUARD_DEFAULTS, ...safeguardOptions, mode: safeguard };
  checkSafeguardOptions(sg);
  if (sg.mode === "none") {
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
  }
  return {
    init: (params) => {
      checkMetaWeights(metaWeights, kinds, o);
      return { ...initMlhfState(params, kinds, o), safeguard: initSafeguardState(sg) };
    },
    update: (g, state, ctx) => {
      const curv = requireCurvature(ctx, "mlhf");
      const { safeguard: s0, ...inner } = state;
      if (!s0) throw new Error(`mlhf (safeguard ${sg.mode}): the state has no safeguard state`);
      const lm = usesLm(sg.mode);
      const { model, lossFn, batch } = ctx;
      if (lm && (!model || !lossFn || !batch)) {
        throw new Error(
          `mlhf (safeguard ${sg.mode}): ctx.model, ctx.lossFn and ctx.batch are required`,
        );
      }
      const d = mlhfDirection(
        metaWeights,
        inner,
        g,
        curv.product,
        kinds,
        o,
        undefined,
        lm ? s0.mu : undefined,
      );
      const r = safeguardStep(sg, s0, {
        params: ctx.params,
        gradient: g,
        x: d.x,
        r: d.r,
        lambda: d.lambda,
        learningRate,
        loss: ctx.loss ?? curv.loss,
        lossAt: lm
          ? (p) => {
            const out = model!(plain, p, batch!.x);
            return lossFn!.value(out instanceof tf.Tensor ? out : out.output, batch!.y);
          }
          : undefined,
      });
      // A rejected step leaves MLHF's state (LSTM states, x_prev, r_prev) as it was.
      const next = selectTree(r.accept, d.next, inner as MlhfState<P>);
      return [r.update, { ...next, safeguard: r.next }];
    },
    diagnostics: (state) => state.safeguard ? safeguardDiagnostics(sg.mode, state.safeguard) : {},
  };
};
