/**
 * Tiny networks written against the DSL, for whole-network derivative tests (the real models live
 * in `models/`). Each comes with deterministic parameters and a batch from a seed.
 * @module
 */
import { tf } from "../../lib/_deps.ts";
import { keyFromSeed, normal, split, uniform } from "../../lib/prng.ts";
import type { Batch, ModelFn } from "../../lib/curvature/gauss_newton.ts";

type P = Record<string, tf.Tensor>;

export interface TinyNet {
  readonly name: string;
  readonly model: ModelFn<P>;
  readonly params: P;
  readonly batch: Batch;
}

const rn = (seed: number, shape: number[], std: number) =>
  tf.tensor(normal(keyFromSeed(seed), shape.reduce((a, b) => a * b, 1), 0, std), shape);

const oneHot = (seed: number, n: number, c: number) =>
  tf.tidy(() => {
    const u = uniform(keyFromSeed(seed), n);
    return tf.oneHot(tf.tensor1d(Array.from(u, (v) => Math.floor(v * c)), "int32"), c).toFloat();
  });

/** Builds one of the tiny networks; the caller disposes params and batch. */
export const tinyNet = (
  kind: "mlpSigmoid" | "mlpTanh" | "convMaxPool" | "convBatchNorm",
  seed: number,
  batchSize = 3,
): TinyNet => {
  const s = split(keyFromSeed(seed), 1)[0][0];
  switch (kind) {
    case "mlpSigmoid":
    case "mlpTanh": {
      const act = kind === "mlpSigmoid" ? "sigmoid" : "tanh";
      return {
        name: kind,
        params: {
          w1: rn(s, [4, 5], 0.8),
          b1: rn(s + 1, [5], 0.3),
          w2: rn(s + 2, [5, 3], 0.8),
          b2: rn(s + 3, [3], 0.3),
        },
        batch: { x: rn(s + 4, [batchSize, 4], 1), y: oneHot(s + 5, batchSize, 3) },
        model: (nn, p, x) => nn.dense(nn[act](nn.dense(x, p.w1, p.b1)), p.w2, p.b2),
      };
    }
    case "convMaxPool":
      return {
        name: kind,
        params: {
          k: rn(s, [3, 3, 2, 3], 0.5),
          b: rn(s + 1, [3], 0.1),
          w: rn(s + 2, [3 * 3 * 3, 4], 0.4),
          c: rn(s + 3, [4], 0.1),
        },
        batch: { x: rn(s + 4, [batchSize, 6, 6, 2], 1), y: oneHot(s + 5, batchSize, 4) },
        model: (nn, p, x) => {
          const h = nn.maxPool(nn.relu(nn.biasAdd(nn.conv2d(x, p.k), p.b)), 2);
          return nn.dense(nn.flatten(h), p.w, p.c);
        },
      };
    case "convBatchNorm":
      return {
        name: kind,
        params: {
          k: rn(s, [3, 3, 2, 3], 0.5),
          gamma: tf.tidy(() => tf.add(1, rn(s + 1, [3], 0.1))),
          beta: rn(s + 2, [3], 0.1),
          w: rn(s + 3, [3, 4], 0.5),
          c: rn(s + 4, [4], 0.1),
        },
        batch: { x: rn(s + 5, [batchSize, 5, 5, 2], 1), y: oneHot(s + 6, batchSize, 4) },
        model: (nn, p, x) => {
          const h = nn.conv2d(x, p.k, { strides: 2, padding: "same" });
          const bn = nn.batchNormTrain(h, p.gamma, p.beta);
          return nn.dense(nn.globalMeanPool(nn.tanh(bn.y)), p.w, p.c);
        },
      };
  }
};

export const TINY_NETS = ["mlpSigmoid", "mlpTanh", "convMaxPool", "convBatchNorm"] as const;
