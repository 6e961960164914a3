/**
 * The batch accuracy `trainStep` reports: arg-max agreement, NaN for non-[B, C] shapes; an
 * optimizer's diagnostics come back with the loss in the same host read.
 */
import { assert } from "../../tests/_util/deps.ts";
import { useTestBackend } from "../../tests/_util/backend.ts";
import { withNoLeaks } from "../../tests/_util/numeric.ts";
import { tf } from "../_deps.ts";
import { batchAccuracy, trainStep } from "./step.ts";
import { sgd } from "../optim/alias.ts";
import type { GradientTransformation } from "../optim/base.ts";
import { softmaxCrossEntropy } from "../../ops/losses.ts";
import type { ModelFn } from "../curvature/gauss_newton.ts";
import { leaves } from "../tree.ts";

await useTestBackend();

Deno.test("batchAccuracy: arg-max of the logits against arg-max of the targets", async () => {
  const z = tf.tensor2d([[2, 1, 0], [0, 3, 1], [1, 0, 5], [0, 0, 1]]);
  const y = tf.tensor2d([[1, 0, 0], [1, 0, 0], [0, 0, 1], [0, 1, 0]]);
  const flat = tf.tensor1d([1, 2, 3, 4]);
  const narrow = tf.slice(y, [0, 0], [4, 2]);
  try {
    await withNoLeaks(() => {
      const read = (a: tf.Scalar) => {
        const v = a.dataSync()[0];
        a.dispose();
        return v;
      };
      assert.equal(read(batchAccuracy(z, y)), 0.5);
      assert.equal(read(batchAccuracy(z, z)), 1);
      assert.ok(Number.isNaN(read(batchAccuracy(flat, flat))));
      assert.ok(Number.isNaN(read(batchAccuracy(z, narrow))));
    });
  } finally {
    tf.dispose([z, y, flat, narrow]);
  }
});

Deno.test("trainStep: the optimizer's diagnostics are read with the loss in one await, no sync read", async () => {
  type P = { w: tf.Tensor };
  const model: ModelFn<P> = (nn, p, x) => nn.dense(x, p.w);
  const x = tf.tensor2d([[1, 2], [3, -1]]), y = tf.tensor2d([[1, 0], [0, 1]]);
  const inner = sgd<P>({ learningRate: 0.1 });
  // SGD with a step counter as its diagnostic.
  const counted: GradientTransformation<{ n: tf.Scalar; s: unknown }, P> = {
    init: (p) => ({ n: tf.scalar(0), s: inner.init(p) }),
    update: (g, st, ctx) => {
      const [u, s] = inner.update(g, st.s as never, ctx);
      return [u, { n: tf.add(st.n, 1), s }];
    },
    diagnostics: (st) => ({ steps: st.n, twice: tf.mul(st.n, 2) as tf.Scalar }),
  };
  const plainSgd: GradientTransformation<{ n: tf.Scalar; s: unknown }, P> = {
    init: counted.init,
    update: counted.update,
  };
  const proto = tf.Tensor.prototype as unknown as {
    dataSync: (...a: unknown[]) => unknown;
    data: (...a: unknown[]) => Promise<unknown>;
  };
  const dataSync = proto.dataSync, data = proto.data;
  try {
    await withNoLeaks(async () => {
      const reads: number[] = [];
      for (
        const [opt, checkFinite] of [[plainSgd, true], [counted, true], [plainSgd, false], [
          counted,
          false,
        ]] as const
      ) {
        const params = { w: tf.tensor2d([[0.5, -1], [2, 1]]) };
        const state = opt.init(params);
        let n = 0;
        proto.dataSync = () => {
          throw new Error("trainStep read synchronously");
        };
        proto.data = function (this: tf.Tensor, ...a: unknown[]) {
          n++;
          return data.apply(this, a);
        };
        const r = await trainStep({
          model,
          lossFn: softmaxCrossEntropy,
          optimizer: opt,
          params,
          state,
          batch: { x, y },
          checkFinite,
        });
        proto.dataSync = dataSync;
        proto.data = data;
        reads.push(n);
        assert.deepEqual(r.diagnostics, opt === counted ? { steps: 1, twice: 2 } : {});
        assert.ok(r.finite);
        tf.dispose([r.aux, r.state.n, ...leaves(r.params)] as tf.Tensor[]);
      }
      // The loss, accuracy, flag and diagnostics: one asynchronous read per step.
      assert.deepEqual(reads, [1, 1, 1, 1]);
    });
  } finally {
    proto.dataSync = dataSync;
    proto.data = data;
    tf.dispose([x, y]);
  }
});
