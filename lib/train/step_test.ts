/** The batch accuracy `trainStep` reports: arg-max agreement, NaN for non-[B, C] shapes. */
import { assert } from "../../tests/_util/deps.ts";
import { useTestBackend } from "../../tests/_util/backend.ts";
import { withNoLeaks } from "../../tests/_util/numeric.ts";
import { tf } from "../_deps.ts";
import { batchAccuracy } from "./step.ts";

await useTestBackend();

Deno.test("batchAccuracy: arg-max of the logits against arg-max of the targets", async () => {
  const z = tf.tensor2d([[2, 1, 0], [0, 3, 1], [1, 0, 5], [0, 0, 1]]);
  const y = tf.tensor2d([[1, 0, 0], [1, 0, 0], [0, 0, 1], [0, 1, 0]]);
  const flat = tf.tensor1d([1, 2, 3, 4]);
  const narrow = tf.slice(y, [0, 0], [4, 2]);
  try {
    await withNoLeaks(() => {
      assert.equal(batchAccuracy(z, y), 0.5);
      assert.equal(batchAccuracy(z, z), 1);
      assert.ok(Number.isNaN(batchAccuracy(flat, flat)));
      assert.ok(Number.isNaN(batchAccuracy(z, narrow)));
    });
  } finally {
    tf.dispose([z, y, flat, narrow]);
  }
});
