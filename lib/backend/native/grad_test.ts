/**
 * Gradients on the native backend: `tf.grads` of a small conv net (conv, bias, relu, max-pool,
 * avg-pool, dense, hand-written cross-entropy) equals the cpu backend's, with the project's gradient
 * fixes installed on both; the project's window-gradient kernels (`ops/window_kernels.ts`) equal
 * the op compositions they replace, also in second order (gradients of their outputs); the DSL's
 * rules and the gradient fixes run them on native and not on cpu.
 * @module
 */
import { tf } from "../../_deps.ts";
import { assert, fc } from "../../../tests/_util/deps.ts";
import { assertAllClose } from "../../../tests/_util/numeric.ts";
import { conv2dFilterGrad, maxPoolInputGrad, type Padding } from "../../../ops/windows.ts";
import { conv2dFilterGradKernel, maxPoolGradKernel } from "../../../ops/window_kernels.ts";
import { CONV2D_FILTER_GRAD_KERNEL, MAX_POOL_GRAD_KERNEL } from "../../kernels.ts";
import { installGradientFixes } from "../gradient_fixes.ts";
import { convnetLoss, initConvnet } from "../../../tasks/bench/native.ts";
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
  name: testName(
    "the filter-gradient kernel equals the im2col composition, in first and second order",
  ),
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
          const dw = (xx: tf.Tensor4D, d: tf.Tensor4D) =>
            (useHook ? conv2dFilterGradKernel : conv2dFilterGrad)(
              xx,
              d,
              fShape,
              [c.s, c.s],
              c.pad,
            );
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
  name: testName(
    "the max-pool gradient kernel equals the max-pool gradient, in first and second order",
  ),
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
            return maxPoolGradKernel(d, x, [c.k, c.k], [c.s, c.s], c.pad);
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

/** The kernels `f` runs on `backend` (its tensors disposed; the previous backend restored). */
const kernelsRun = async (backend: string, f: () => tf.Tensor | tf.Tensor[]): Promise<string[]> => {
  const prev = tf.getBackend();
  await tf.setBackend(backend);
  installGradientFixes();
  try {
    const info = await tf.profile(() => tf.tidy(f));
    tf.dispose(info.result as tf.TensorContainer);
    return info.kernelNames;
  } finally {
    await tf.setBackend(prev);
  }
};

Deno.test({
  name: testName("the conv and max-pool gradients run the project's kernels on native only"),
  ignore,
  fn: async () => {
    const x = () => tf.tensor4d(randArray(2 * 6 * 6 * 3, 5), [2, 6, 6, 3]);
    const w = () => tf.tensor4d(randArray(3 * 3 * 3 * 4, 6), [3, 3, 3, 4]);
    const cases: Array<[string, string, () => tf.Tensor | tf.Tensor[]]> = [
      // TF.js's tape through the gradient fixes (lib/backend/gradient_fixes.ts).
      [CONV2D_FILTER_GRAD_KERNEL, "tf.grad of conv2d", () => {
        const xs = x();
        return tf.grad((ww: tf.Tensor) => tf.sum(tf.conv2d(xs, ww as tf.Tensor4D, 2, "same")))(w());
      }],
      [
        MAX_POOL_GRAD_KERNEL,
        "tf.grad of maxPool",
        () =>
          tf.grad((xx: tf.Tensor) =>
            tf.sum(tf.square(tf.maxPool(xx as tf.Tensor4D, 2, 2, "same")))
          )(
            x(),
          ),
      ],
      // The DSL's rules (ops/windows.ts).
      [
        CONV2D_FILTER_GRAD_KERNEL,
        "conv2dFilterGrad",
        () => conv2dFilterGrad(x(), tf.ones([2, 3, 3, 4]), [3, 3, 3, 4], [2, 2], "same"),
      ],
      [
        MAX_POOL_GRAD_KERNEL,
        "maxPoolInputGrad",
        () => maxPoolInputGrad(tf.ones([2, 3, 3, 3]), x(), [2, 2], [2, 2], "same"),
      ],
    ];
    for (const [kernel, what, f] of cases) {
      const native = await kernelsRun("native", f);
      const cpu = await kernelsRun("cpu", f);
      assert.ok(native.includes(kernel), `${what} on native ran ${native}, not ${kernel}`);
      assert.ok(!cpu.some((k) => k.startsWith("Mlhf")), `${what} on cpu ran ${cpu}`);
    }
  },
});
