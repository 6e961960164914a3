/**
 * The first-order baselines as compositions (the original's settings, docs/algorithm.md#presets,
 * are the tasks' defaults): `sgd`, `momentum`, `adam`, `rmsprop`, each optionally with the
 * baselines' weight decay.
 * @module
 */
import type { Params } from "../tree.ts";
import { chain, type GradientTransformation } from "./base.ts";
import {
  addDecayedWeights,
  scaleByAdam,
  scaleByLearningRate,
  scaleByRms,
  trace,
} from "./transforms.ts";

/** Options shared by the baselines. */
export interface BaselineOptions {
  /** η, the learning rate. */
  readonly learningRate: number;
  /**
   * Weight decay wd in CE + wd·Σ½‖w‖² (docs/algorithm.md#weight-decay: 2e-4 on CIFAR; 0 = none).
   */
  readonly weightDecay?: number;
}

type T<P extends Params> = GradientTransformation<unknown[], P>;
const withDecay = <P extends Params>(
  wd: number | undefined,
  // deno-lint-ignore no-explicit-any
  ...rest: GradientTransformation<any, P>[]
): T<P> => (wd ? chain<P>(addDecayedWeights<P>(wd), ...rest) : chain<P>(...rest));

/** θ ← θ − η·g. */
export const sgd = <P extends Params>({ learningRate, weightDecay }: BaselineOptions): T<P> =>
  withDecay(weightDecay, scaleByLearningRate<P>(learningRate));

/** TF's momentum: a ← μa + g; θ ← θ − η·a. */
export const momentum = <P extends Params>(
  { learningRate, weightDecay, momentum: mu = 0.9 }: BaselineOptions & { momentum?: number },
): T<P> => withDecay(weightDecay, trace<P>(mu), scaleByLearningRate<P>(learningRate));

/** Adam with TF's defaults (β₁ 0.9, β₂ 0.999, ε 1e-8). */
export const adam = <P extends Params>(
  { learningRate, weightDecay, beta1, beta2, epsilon }: BaselineOptions & {
    beta1?: number;
    beta2?: number;
    epsilon?: number;
  },
): T<P> =>
  withDecay(
    weightDecay,
    scaleByAdam<P>({ beta1, beta2, epsilon }),
    scaleByLearningRate<P>(learningRate),
  );

/** RMSprop (TF 1.x: mean square initialized to ones, ε 1e-10). */
export const rmsprop = <P extends Params>(
  { learningRate, weightDecay, decay, momentum: mu, epsilon, initialMeanSquare }:
    & BaselineOptions
    & { decay?: number; momentum?: number; epsilon?: number; initialMeanSquare?: number },
): T<P> =>
  withDecay(
    weightDecay,
    scaleByRms<P>({ decay, momentum: mu, epsilon, initialMeanSquare }),
    scaleByLearningRate<P>(learningRate),
  );
