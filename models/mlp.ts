/**
 * The MLP of `problems.py: mlp` (docs/algorithm.md#mlp), generalized to any widths and activation:
 * flatten → dense + activation per hidden layer → dense logits. The original is `mlp()`: one hidden
 * layer of 20 sigmoid units, every weight and bias N(0, 0.01²).
 * @module
 */
import type { tf } from "../lib/_deps.ts";
import type { Key } from "../lib/prng.ts";
import type { Nn } from "../ops/nn.ts";
import { paramSource, randomNormal, untag } from "./init.ts";
import { dense, type DenseParams, denseParams } from "./layers.ts";
import { activate, type Activation, type InputShape, type Model, type NoState } from "./types.ts";

/** MLP options; the defaults are the original's. */
export interface MlpOptions {
  /** Hidden layer widths (default [20]). */
  readonly hidden?: readonly number[];
  /** Hidden activation (default "sigmoid"). */
  readonly activation?: Activation;
  /** Outputs (default 10). */
  readonly numClasses?: number;
  /** Std of the N(0, std²) initializer of every weight and bias (default 0.01). */
  readonly initStd?: number;
}

/** The MLP's parameters: one dense layer per hidden layer, then the output layer. */
export type MlpParams = { readonly layers: DenseParams[] };

/** An MLP on flattened inputs. */
export const mlp = (opts: MlpOptions = {}): Model<MlpParams, NoState> => {
  const { hidden = [20], activation = "sigmoid", numClasses = 10, initStd = 0.01 } = opts;
  const forward = (nn: Nn, p: MlpParams, x: tf.Tensor): tf.Tensor => {
    let h = nn.flatten(x);
    p.layers.forEach((layer, i) => {
      h = dense(nn, layer, h);
      if (i < p.layers.length - 1) h = activate(nn, activation, h);
    });
    return h;
  };
  return {
    name: `mlp(${[...hidden, numClasses].join("-")},${activation})`,
    numClasses,
    init: (key: Key, inputShape: InputShape) => {
      const param = paramSource(key);
      const init = randomNormal(initStd);
      const dims = [inputShape.reduce((a, b) => a * b, 1), ...hidden, numClasses];
      const layers = dims.slice(1).map((out, i) => denseParams(param, dims[i], out, init, init));
      return { ...untag<MlpParams>({ layers }), state: {} };
    },
    apply: forward,
    applyInference: (nn, p, _state, x) => forward(nn, p, x),
  };
};
