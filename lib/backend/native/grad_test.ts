/**
 * Gradients on the native backend: `tf.grads` of a small conv net (conv, bias, relu, max-pool,
 * avg-pool, dense, hand-written cross-entropy) equals the cpu backend's, with the project's gradient
 * fixes installed on both; the hooks (`hooks.ts`) equal the op compositions they replace, also in
 * second order (gradients of the hooks' outputs), and are inactive on other backends.
 * @module
 */
import { tf } from "../../_deps.ts";
import { assert, fc } from "../../../tests/_util/deps.ts";
import { assertAllClose } from "../../../tests/_util/numeric.ts";
import { conv2dFilterGrad, type Padding } from "../../../ops/_windows.ts";
import { convnetLoss, initConvnet } from "../../../tasks/bench/native.ts";
import { nativeConv2dFilterGrad, nativeMaxPoolGrad } from "./hooks.ts";
import { nativeAvailable, onBoth, randArray, randInts, runOn, testName } from "./_test_util.ts";

const ignore = !nativeAvailable;
const TOL = { rtol: 2e-4, atol: 2e-5 };

Deno.test({
  name: testName("tf.grads of a conv net equals cpu"),
  ignore,
  fn: async () => {
    for (const seed of [1, 2]) {
      const x = randArray(6 * 8 * 8 * 3, seed).map((v) => v + 0.5);
      const labels = [0, 3, 9, 1, 1, 7];
      const r = await onBoth(() => {
        const p = initConvnet(seed, 8, 4);
        const names = Object.keys(p) as Array<keyof typeof p>;
        const xs = tf.tensor4d(x, [6, 8, 8, 3]), ys = tf.tensor1d(labels, "int32");
        const g = tf.grads((...ts: tf.Tensor[]) => {
          const q = Object.fromEntries(names.map((k, i) => [k, ts[i]])) as unknown as typeof p;
          const pooled = tf.avgPool(xs, 3, 1, "same"); // exercises AvgPool and its gradient too
          return convnetLoss(q, tf.add(xs, pooled) as tf.Tensor4D, ys);
        });
        return g(names.map((k) => p[k]));
      });
      r.cpu.forEach((c, i) => assertAllClose(r.native[i], c, TOL, `grad ${i} (seed ${seed})`));
    }
  },
});

const hookCase = fc.record({
  b: fc.integer({ min: 1, max: 2 }),
  h: fc.integer({ min: 2, max: 7 }),
  w: fc.integer({ min: 2, max: 7 }),
  ci: fc.integer({ min: 1, max: 3 }),
  co: fc.integer({ min: 1, max: 3 }),
  k: fc.integer({ min: 1, max: 3 }),
  s: fc.integer({ min: 1, max: 2 }),
  pad: fc.constantFrom<Padding>("same", "valid"),
  seed: fc.integer({ min: 0, max: 1e6 }),
}).filter((c) => c.pad === "same" || (c.h >= c.k && c.w >= c.k));

Deno.test({
  name: testName("nativeConv2dFilterGrad equals the im2col composition, in first and second order"),
  ignore,
  fn: async () => {
    await fc.assert(
      fc.asyncProperty(hookCase, async (c) => {
        const xv = randArray(c.b * c.h * c.w * c.ci, c.seed);
        const fShape = [c.k, c.k, c.ci, c.co] as [number, number, number, number];
        const oh = c.pad === "same" ? Math.ceil(c.h / c.s) : Math.floor((c.h - c.k) / c.s) + 1;
        const ow = c.pad === "same" ? Math.ceil(c.w / c.s) : Math.floor((c.w - c.k) / c.s) + 1;
        const dyv = randArray(c.b * oh * ow * c.co, c.seed + 1);
        const vv = randArray(c.k * c.k * c.ci * c.co, c.seed + 2);
        const run = (useHook: boolean) => () => {
          const x = tf.tensor4d(xv, [c.b, c.h, c.w, c.ci]);
          const dy = tf.tensor4d(dyv, [c.b, oh, ow, c.co]);
          const v = tf.tensor4d(vv, fShape);
          const dw = (xx: tf.Tensor4D, d: tf.Tensor4D) => {
            const hooked = useHook
              ? nativeConv2dFilterGrad(xx, d, fShape, [c.s, c.s], c.pad)
              : null;
            if (useHook && !hooked) throw new Error("hook inactive on native");
            return hooked ?? conv2dFilterGrad(xx, d, fShape, [c.s, c.s], c.pad);
          };
          const second = tf.grads((xx: tf.Tensor, d: tf.Tensor) =>
            tf.sum(tf.mul(dw(xx as tf.Tensor4D, d as tf.Tensor4D), v))
          )([x, dy]);
          return [dw(x, dy), ...second];
        };
        const got = await runOn("native", run(true));
        const want = await runOn("cpu", run(false));
        want.forEach((w, i) => assertAllClose(got[i], w, TOL, `filter grad output ${i}`));
      }),
      { numRuns: 25 },
    );
  },
});

Deno.test({
  name: testName("nativeMaxPoolGrad equals the max-pool gradient, in first and second order"),
  ignore,
  fn: async () => {
    await fc.assert(
      fc.asyncProperty(hookCase, fc.boolean(), async (c, ints) => {
        const n = c.b * c.h * c.w * c.ci;
        const xv = ints ? randInts(n, c.seed) : randArray(n, c.seed);
        const shape = [c.b, c.h, c.w, c.ci] as [number, number, number, number];
        const oh = c.pad === "same" ? Math.ceil(c.h / c.s) : Math.floor((c.h - c.k) / c.s) + 1;
        const ow = c.pad === "same" ? Math.ceil(c.w / c.s) : Math.floor((c.w - c.k) / c.s) + 1;
        const dyv = randArray(c.b * oh * ow * c.ci, c.seed + 1);
        const gv = randArray(n, c.seed + 2);
        const run = (useHook: boolean) => () => {
          const x = tf.tensor4d(xv, shape), dy = tf.tensor4d(dyv, [c.b, oh, ow, c.ci]);
          const g = tf.tensor4d(gv, shape);
          const dx = (d: tf.Tensor4D) => {
            if (!useHook) {
              return tf.grad((xx: tf.Tensor) => tf.maxPool(xx as tf.Tensor4D, c.k, c.s, c.pad))(
                x,
                d,
              ) as tf.Tensor4D;
            }
            const hooked = nativeMaxPoolGrad(d, x, [c.k, c.k], [c.s, c.s], c.pad);
            if (!hooked) throw new Error("hook inactive on native");
            return hooked;
          };
          const second = tf.grad((d: tf.Tensor) => tf.sum(tf.mul(dx(d as tf.Tensor4D), g)))(dy);
          return [dx(dy), second];
        };
        const got = await runOn("native", run(true));
        const want = await runOn("cpu", run(false));
        want.forEach((w, i) => assertAllClose(got[i], w, TOL, `max-pool grad output ${i}`));
      }),
      { numRuns: 25 },
    );
  },
});

Deno.test({
  name: testName("the hooks are inactive on other backends"),
  ignore,
  fn: async () => {
    await runOn("cpu", () => {
      const x = tf.zeros([1, 4, 4, 1]) as tf.Tensor4D, dy = tf.zeros([1, 4, 4, 1]) as tf.Tensor4D;
      assert.equal(nativeConv2dFilterGrad(x, dy, [1, 1, 1, 1], [1, 1], "same"), null);
      assert.equal(nativeMaxPoolGrad(dy, x, [1, 1], [1, 1], "same"), null);
      return [];
    });
  },
});
