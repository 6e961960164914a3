/**
 * `gemmMultiplyAdds` counts exactly the multiply-adds of conv and matMul kernels, forward and both
 * transposes, and nothing for other kernels (explicit small cases; counts written out by hand).
 * @module
 */
import { tf } from "../_deps.ts";
import { assert } from "../../tests/_util/deps.ts";
import { gemmMultiplyAdds, kernelMultiplyAdds } from "./gemm_count.ts";

Deno.test("gemmMultiplyAdds: conv2d, its two transposes, matMul with transposes; others are 0", async () => {
  const x = tf.zeros([2, 6, 5, 3]) as tf.Tensor4D, w = tf.zeros([3, 2, 3, 4]) as tf.Tensor4D;
  // SAME, stride 1: out [2, 6, 5, 4]; each output needs 3·2·3 multiply-adds per out channel.
  const perConv = 2 * 6 * 5 * 4 * (3 * 2 * 3);
  assert.equal(await gemmMultiplyAdds(() => tf.dispose(tf.conv2d(x, w, 1, "same"))), perConv);
  // VALID, stride 2: out [2, 2, 2, 4].
  assert.equal(
    await gemmMultiplyAdds(() => tf.dispose(tf.conv2d(x, w, 2, "valid"))),
    2 * 2 * 2 * 4 * 18,
  );
  // The gradient wrt x and w: one Conv2DBackpropInput and one Conv2DBackpropFilter, each as many
  // multiply-adds as the forward (the forward runs once more inside tf.grads).
  const grads = await gemmMultiplyAdds(() =>
    tf.dispose(
      tf.grads((a, b) => tf.sum(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, "same")))([x, w]),
    )
  );
  assert.equal(grads, 3 * perConv);
  const a = tf.zeros([7, 5]), b = tf.zeros([7, 3]);
  // aᵀ·b: [5, 7]·[7, 3] = 5·3 outputs of 7 multiply-adds.
  assert.equal(await gemmMultiplyAdds(() => tf.dispose(tf.matMul(a, b, true, false))), 5 * 3 * 7);
  const batched = tf.zeros([4, 2, 6]), c = tf.zeros([4, 3, 6]);
  assert.equal(
    await gemmMultiplyAdds(() => tf.dispose(tf.matMul(batched, c, false, true))),
    4 * 2 * 3 * 6,
  );
  assert.equal(await gemmMultiplyAdds(() => tf.dispose(tf.add(tf.relu(a), 1))), 0);
  assert.equal(kernelMultiplyAdds("MaxPool", [[1, 4, 4, 1]], [[1, 2, 2, 1]]), 0);
  tf.dispose([x, w, a, b, batched, c]);
});
