import { tf } from "../../lib/_deps.ts";
import { assert } from "./deps.ts";
import { useTestBackend } from "./backend.ts";
import { assertAllClose, centralDifference, relErr, withNoLeaks } from "./numeric.ts";

await useTestBackend();

Deno.test("assertAllClose: passes within rtol/atol on tensors and trees, names the worst element otherwise", () => {
  tf.tidy(() => {
    assertAllClose({ a: tf.tensor([1, 2]), b: [tf.tensor([3])] }, {
      a: tf.tensor([1, 2.00001]),
      b: [tf.tensor([3])],
    }, {
      rtol: 1e-4,
    });
    assert.throws(
      () =>
        assertAllClose(tf.tensor([1, 2, 3]), tf.tensor([1, 2.5, 3]), { rtol: 1e-3, atol: 0 }, "x"),
      /x: leaf 0\[1\] = 2, expected 2\.5/,
    );
    assert.throws(() => assertAllClose([1, NaN], [1, 1]), /leaf 0\[1\] = NaN/);
    assert.throws(
      () => assertAllClose({ a: tf.zeros([2]) }, [tf.zeros([2]), tf.zeros([1])]),
      /1 leaves vs 2/,
    );
  });
});

Deno.test("centralDifference: exact for quadratics, O(ε²) for smooth functions", () => {
  tf.tidy(() => {
    const x = tf.tensor([0.3, -1.2, 2]);
    const v = tf.tensor([1, 0.5, -2]);
    // f(x) = x²: the directional derivative is 2x⊙v.
    const fd = centralDifference((p) => tf.square(p as tf.Tensor), x, v);
    assert.ok(relErr(fd, tf.mul(2, tf.mul(x, v)).dataSync()) < 1e-4);
    const fdSin = centralDifference((p) => tf.sin(p as tf.Tensor), x, v, 1e-2);
    assert.ok(relErr(fdSin, tf.mul(tf.cos(x), v).dataSync()) < 1e-3);
    // A wrong derivative is far off.
    assert.ok(relErr(fdSin, tf.mul(tf.sin(x), v).dataSync()) > 0.5);
  });
});

Deno.test("withNoLeaks: passes when tensors are disposed, fails naming the count otherwise", async () => {
  await withNoLeaks(() => tf.tidy(() => void tf.ones([3])));
  let leaked: tf.Tensor | null = null;
  await assert.rejects(
    () => withNoLeaks(() => void (leaked = tf.ones([2])), "block"),
    /block leaked 1 tensors/,
  );
  (leaked as tf.Tensor | null)?.dispose();
});
