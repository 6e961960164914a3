/**
 * Test-set evaluation in inference mode (batch norm with its moving statistics): mean
 * cross-entropy and accuracy over every example of a source in storage order (the last partial
 * batch included), or over its first `maxExamples`.
 * @module
 */
import { tf } from "../_deps.ts";
import { keyFromSeed } from "../prng.ts";
import { imageSize } from "../data/images.ts";
import type { Source } from "../data/source.ts";
import { plain } from "../../ops/interpret.ts";
import { softmaxCrossEntropy } from "../../ops/losses.ts";
import type { Params } from "../tree.ts";
import type { AnyModel } from "./models.ts";

/** Mean loss and accuracy over `examples` examples. */
export interface Evaluation {
  /** The mean loss. */
  readonly loss: number;
  /** The fraction classified correctly. */
  readonly accuracy: number;
  /** The examples evaluated. */
  readonly examples: number;
}

/** Options of `evaluate`. */
export interface EvaluateOptions {
  /** Examples per forward pass (default 500). */
  readonly batchSize?: number;
  /** Evaluate only the first this many examples (0 or absent: all). */
  readonly maxExamples?: number;
}

/** Sum of CE and number correct on one host batch, read with one `await` (no synchronous read). */
const scoreBatch = async (
  model: AnyModel,
  params: Params,
  state: Params,
  source: Source<unknown>,
  x: Float32Array,
  y: Int32Array,
): Promise<{ lossSum: number; correct: number }> => {
  const n = y.length;
  const both = tf.tidy(() => {
    const xs = tf.tensor4d(x.subarray(0, n * imageSize(source.shape)), [n, ...source.shape]);
    const labels = tf.tensor1d(y, "int32");
    const z = model.applyInference(plain, params, state, xs);
    const loss = softmaxCrossEntropy.value(z, tf.oneHot(labels, z.shape[1]!).toFloat());
    const correct = tf.sum(tf.cast(tf.equal(tf.argMax(z, -1), labels), "float32"));
    return tf.stack([loss, correct]);
  });
  try {
    const [loss, correct] = await both.data();
    return { lossSum: loss * n, correct };
  } finally {
    both.dispose();
  }
};

/** Evaluates the model on a source; creates no lasting tensors. */
export const evaluate = async (
  model: AnyModel,
  params: Params,
  state: Params,
  source: Source<unknown>,
  { batchSize = 500, maxExamples = 0 }: EvaluateOptions = {},
): Promise<Evaluation> => {
  const size = imageSize(source.shape);
  const key = keyFromSeed(0); // test preprocessing draws nothing; the key is only a formality
  const x = new Float32Array(batchSize * size);
  let y: number[] = [];
  let lossSum = 0, correct = 0, examples = 0;
  const flush = async () => {
    if (!y.length) return;
    const s = await scoreBatch(model, params, state, source, x, Int32Array.from(y));
    lossSum += s.lossSum;
    correct += s.correct;
    examples += y.length;
    y = [];
  };
  for await (const id of source.ids(0, key)) {
    if (maxExamples > 0 && examples + y.length >= maxExamples) break;
    const ex = await source.load(id, key);
    if (ex === null) continue;
    x.set(ex.image, y.length * size);
    y.push(ex.label);
    if (y.length === batchSize) await flush();
  }
  await flush();
  if (examples === 0) throw new RangeError(`${source.name}: no examples to evaluate`);
  return { loss: lossSum / examples, accuracy: correct / examples, examples };
};
