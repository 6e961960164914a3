import { tf } from "../_deps.ts";
import { assert } from "../../tests/_util/deps.ts";
import { useTestBackend } from "../../tests/_util/backend.ts";
import { withNoLeaks } from "../../tests/_util/numeric.ts";
import { disposeBatch, imagesToBatch } from "./batch.ts";
import { openSource } from "./dataset.ts";
import { loadMnist, readMnist } from "./mnist.ts";
import { batches } from "./pipeline.ts";

await useTestBackend();

Deno.test("mnist: the embedded data set loads with no download: 60000/10000, [N,28,28,1], labels 0..9", async () => {
  const train = await readMnist("train");
  assert.equal(train.labels.length, 60000);
  assert.deepEqual(train.shape, [28, 28, 1]);
  assert.equal(train.pixels.length, 60000 * 784);
  const counts = new Array(10).fill(0);
  for (const l of train.labels) counts[l]++;
  assert.ok(counts.every((c) => c > 5000), `every digit is common: ${counts}`);
  assert.equal(train.labels[0], 5); // the first training digit of MNIST is a 5

  const test = await loadMnist("test");
  assert.deepEqual(test.shape, [10000, 28, 28, 1]);
  assert.equal(test.labels.length, 10000);
  assert.ok(test.labels.every((l) => l >= 0 && l <= 9));
  let lo = Infinity, hi = -Infinity;
  for (const v of test.pixels) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  assert.deepEqual([lo, hi], [0, 1]);
  assert.equal(test.labels[0], 7); // and the first test digit a 7

  await withNoLeaks(() => {
    const batch = imagesToBatch(test);
    assert.deepEqual(batch.x.shape, [10000, 28, 28, 1]);
    assert.equal(batch.x.dtype, "float32");
    assert.equal(batch.y.dtype, "int32");
    const max = tf.max(batch.y);
    assert.equal(max.arraySync(), 9);
    max.dispose();
    disposeBatch(batch);
  }, "whole-set batch");
});

Deno.test("mnist: the default data set streams through the pipeline", async () => {
  const source = await openSource({ dataset: "mnist", split: "test" });
  await withNoLeaks(async () => {
    const stream = batches(source, { batchSize: 32, seed: 3, shuffleBuffer: 1000, epochs: 1 });
    const b = (await stream.next())!;
    assert.deepEqual(b.x.shape, [32, 28, 28, 1]);
    const x = await b.x.data();
    assert.ok(x.every((v) => v >= 0 && v <= 1));
    disposeBatch(b);
    await stream.close();
  });
});
