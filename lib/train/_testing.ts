/**
 * Test fixtures of the training modules: a tiny synthetic classification problem (4×4×1 images of
 * three noisy class templates), a tiny MLP, and a source that can inject a NaN example.
 * @module
 */
import { keyFromSeed, normal, split } from "../prng.ts";
import type { Source } from "../data/source.ts";
import { mlp, resnetV2Cifar } from "../../models/mod.ts";
import type { AnyModel } from "./models.ts";
import type { Problem } from "./problem.ts";
import { weightDecayFor } from "./weight_decay.ts";

const SHAPE = [4, 4, 1] as const;
const CLASSES = 3;

/** N examples: class c's template (a bright row c) plus N(0, 0.2²) noise; label i mod 3. */
export const syntheticSource = (
  n: number,
  seed: number,
  { name = "synthetic", nanAt = -1 }: { name?: string; nanAt?: number } = {},
): Source<number> => {
  const noise = normal(split(keyFromSeed(seed), 1)[0], n * 16, 0, 0.2);
  return {
    name: `${name}-${n}-${seed}`,
    shape: SHAPE,
    numClasses: CLASSES,
    ids: function* () {
      for (let i = 0; i < n; i++) yield i;
    },
    load: (i) => {
      const label = i % CLASSES;
      const image = new Float32Array(16);
      for (let j = 0; j < 16; j++) {
        image[j] = (Math.floor(j / 4) === label ? 1 : 0) + noise[i * 16 + j];
      }
      if (i === nanAt) image[0] = NaN;
      return { image, label };
    },
  };
};

/** A tiny MLP (16 → 6 tanh → 3). */
export const tinyModel = (): AnyModel =>
  mlp({
    hidden: [6],
    activation: "tanh",
    numClasses: CLASSES,
    initStd: 0.3,
  }) as unknown as AnyModel;

/** The synthetic problem: 96 training and 30 test examples. */
export const tinyProblem = (options: { nanAt?: number } = {}): Omit<Problem, "close"> => ({
  modelName: "tiny-mlp",
  model: tinyModel(),
  dataset: "synthetic",
  train: syntheticSource(96, 1, { name: "train", ...options }) as Source<unknown>,
  test: syntheticSource(30, 2, { name: "test" }) as Source<unknown>,
  examplesPerEpoch: 96,
  weightDecay: weightDecayFor("mnist"),
});

/** A fresh temporary directory. */
export const tempDir = (): Promise<string> => Deno.makeTempDir({ prefix: "mlhf-train-test-" });

/** A tiny ResNet v2 with batch norm (depth 8, 2 filters per stage) for the synthetic images. */
export const tinyResNet = (): AnyModel =>
  resnetV2Cifar({ depth: 8, filters: [2, 2, 2], numClasses: CLASSES }) as unknown as AnyModel;
