import { tf } from "./_deps.ts";
import { assert } from "../tests/_util/deps.ts";
import { assertAllClose, withNoLeaks } from "../tests/_util/numeric.ts";
import { useTestBackend } from "../tests/_util/backend.ts";
import * as T from "./tree.ts";

await useTestBackend();

Deno.test("tree: vector round trip, global inner product, algebra", async () => {
  await withNoLeaks(() =>
    tf.tidy(() => {
      const p = { a: tf.tensor([[1, 2], [3, 4]]), b: [tf.tensor([5]), { c: tf.tensor([6, 7]) }] };
      const q = T.mapTree(p, (x) => tf.mul(x, 2));
      assert.equal(T.size(p), 7);
      assertAllClose(T.toVector(p), [1, 2, 3, 4, 5, 6, 7]);
      assertAllClose(T.fromVector(p, T.toVector(q)), q);
      assert.equal(T.vdot(p, q).dataSync()[0], 2 * (1 + 4 + 9 + 16 + 25 + 36 + 49));
      assertAllClose(T.addScaled(p, 3, q), T.scale(p, 7));
      assertAllClose(T.sub(T.add(p, q), q), p);
      assertAllClose(T.norm(p), Math.sqrt(140));
    })
  );
});

Deno.test("tree: mismatched structures and shapes are clear errors", () => {
  tf.tidy(() => {
    const p = { a: tf.zeros([2]) };
    assert.throws(() => T.add(p, { a: tf.zeros([3]) }), /leaf 0: shape \[2\] vs \[3\]/);
    assert.throws(() => T.vdot(p, [tf.zeros([2]), tf.zeros([1])]), /structures differ/);
  });
});
