/**
 * The "CUDA-convnet" of `problems.py: convnet` (docs/algorithm.md#cuda-convnet): conv1 5×5 SAME +
 * bias + ReLU → max-pool 2×2/2 SAME → conv2 5×5 + bias + ReLU → max-pool 2×2/2 SAME → flatten →
 * dense 384 ReLU → dense 192 ReLU → dense logits. Conv kernels N(0, 0.05²) (plain normal), conv
 * biases 0; local3/local4 kernels N(0, 0.04²), biases 0.1; softmax_linear kernel N(0, (1/192)²),
 * bias 0. 1,756,426 parameters on 32×32×3; the first dense layer is sized from the input (28×28×1
 * works).
 * @module
 */
import type { tf } from "../lib/_deps.ts";
import type { Nn } from "../ops/nn.ts";
import { constant, paramSource, randomNormal, untag } from "./init.ts";
import {
  type ConvParams,
  convParams,
  convSame,
  dense,
  type DenseParams,
  denseParams,
} from "./layers.ts";
import { activate, type Activation, type InputShape, type Model, type NoState } from "./types.ts";

/** Options; the defaults are the original's. Smaller widths serve tests. */
export interface CudaConvnetOptions {
  /** Outputs (default 10). */
  readonly numClasses?: number;
  /** Filters of conv1 and conv2 (default [64, 64]). */
  readonly filters?: readonly [number, number];
  /** Units of local3 and local4 (default [384, 192]). */
  readonly units?: readonly [number, number];
  /** Hidden activation (default "relu"; "tanh" gives a smooth variant for derivative checks). */
  readonly activation?: Activation;
}

/** The convnet's parameters, named after the original's variable scopes. */
export type CudaConvnetParams = {
  readonly conv1: ConvParams;
  readonly conv2: ConvParams;
  readonly local3: DenseParams;
  readonly local4: DenseParams;
  readonly softmaxLinear: DenseParams;
};

/** Spatial size after one 2×2/2 SAME max-pool. */
const pooled = (n: number): number => Math.ceil(n / 2);

/** The CUDA-convnet. */
export const cudaConvnet = (opts: CudaConvnetOptions = {}): Model<CudaConvnetParams, NoState> => {
  const { numClasses = 10, filters = [64, 64], units = [384, 192], activation = "relu" } = opts;
  const forward = (nn: Nn, p: CudaConvnetParams, x: tf.Tensor): tf.Tensor => {
    const pool = (h: tf.Tensor) => nn.maxPool(h, 2, { strides: 2, padding: "same" });
    let h = pool(activate(nn, activation, convSame(nn, p.conv1, x)));
    h = pool(activate(nn, activation, convSame(nn, p.conv2, h)));
    h = activate(nn, activation, dense(nn, p.local3, nn.flatten(h)));
    h = activate(nn, activation, dense(nn, p.local4, h));
    return dense(nn, p.softmaxLinear, h);
  };
  return {
    name: "cudaConvnet",
    numClasses,
    init: (key, [h, w, c]: InputShape) => {
      const param = paramSource(key);
      const flat = pooled(pooled(h)) * pooled(pooled(w)) * filters[1];
      const convInit = randomNormal(0.05);
      const localInit = randomNormal(0.04);
      const tagged = {
        conv1: convParams(param, 5, c, filters[0], convInit, constant(0)),
        conv2: convParams(param, 5, filters[0], filters[1], convInit, constant(0)),
        local3: denseParams(param, flat, units[0], localInit, constant(0.1)),
        local4: denseParams(param, units[0], units[1], localInit, constant(0.1)),
        // The original's literal 1/192.0, kept whatever the width of local4.
        softmaxLinear: denseParams(param, units[1], numClasses, randomNormal(1 / 192), constant(0)),
      };
      return { ...untag<CudaConvnetParams>(tagged), state: {} };
    },
    apply: forward,
    applyInference: (nn, p, _state, x) => forward(nn, p, x),
  };
};
