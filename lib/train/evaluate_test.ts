/**
 * Evaluation covers every test example (the last partial batch included) or the first
 * `maxExamples`, in inference mode, and matches a one-batch computation.
 */
import { assert } from "../../tests/_util/deps.ts";
import { useTestBackend } from "../../tests/_util/backend.ts";
import { withNoLeaks } from "../../tests/_util/numeric.ts";
import { tf } from "../_deps.ts";
import { keyFromSeed } from "../prng.ts";
import { leaves } from "../tree.ts";
import { plain } from "../../ops/interpret.ts";
import { softmaxCrossEntropy } from "../../ops/losses.ts";
import { evaluate } from "./evaluate.ts";
import { syntheticSource, tinyModel } from "./_testing.ts";

await useTestBackend();

Deno.test("evaluate: all examples in batches of 7 = one batch of 30; maxExamples caps", async () => {
  const model = tinyModel();
  const { params, state } = model.init(keyFromSeed(4), [4, 4, 1]);
  const source = syntheticSource(30, 9);
  try {
    const want = tf.tidy(() => {
      const ex = Array.from({ length: 30 }, (_, i) =>
        source.load(i, keyFromSeed(0)) as {
          image: Float32Array;
          label: number;
        });
      const x = tf.tensor4d(ex.flatMap((e) => [...e.image]), [30, 4, 4, 1]);
      const labels = tf.tensor1d(ex.map((e) => e.label), "int32");
      const z = model.applyInference(plain, params, state, x);
      const loss = softmaxCrossEntropy.value(z, tf.oneHot(labels, 3).toFloat()).dataSync()[0];
      const acc = tf.mean(tf.cast(tf.equal(tf.argMax(z, -1), labels), "float32")).dataSync()[0];
      return { loss, acc };
    });
    await withNoLeaks(async () => {
      const all = await evaluate(model, params, state, source, { batchSize: 7 });
      assert.equal(all.examples, 30);
      assert.ok(Math.abs(all.loss - want.loss) < 1e-5, `${all.loss} vs ${want.loss}`);
      assert.ok(Math.abs(all.accuracy - want.acc) < 1e-6);
      const some = await evaluate(model, params, state, source, { batchSize: 4, maxExamples: 10 });
      assert.equal(some.examples, 10);
    });
  } finally {
    tf.dispose(leaves(params));
  }
});
