/**
 * The native `MlhfReluGrad` kernel (`kernels/elementwise.ts`, contract in `lib/kernels.ts`): bit for
 * bit the product of dy with cpu's 0/1 mask of y > 0, NaN, ±∞ and ±0 mixed into both inputs, at
 * sizes below and above the recycling threshold (twice, so recycled outputs are fully written);
 * relu's rules (`ops/elementwise.ts`) keep y and run the kernel on native and give cpu's bits; its
 * registered gradient (itself in dy, zero in y) against cpu's tape gradients of the composition; no
 * leaks.
 * @module
 */
import { tf } from "../../_deps.ts";
import { assert } from "../../../tests/_util/deps.ts";
import { withNoLeaks } from "../../../tests/_util/numeric.ts";
import { RELU_GRAD_KERNEL } from "../../kernels.ts";
import { relu } from "../../../ops/elementwise.ts";
import { nativeAvailable, randArray, runOn, testName } from "./_test_util.ts";

const SPECIAL = [NaN, Infinity, -Infinity, 0, -0, 1e-45, -1e-45];

/** Random values with specials at every 5th place (seeded). */
const values = (n: number, seed: number): Float32Array => {
  const v = randArray(n, seed);
  for (let i = seed % 5; i < n; i += 5) v[i] = SPECIAL[(i + seed) % SPECIAL.length];
  return v;
};

/** Float bits, so NaN and −0 compare exactly. */
const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

const SHAPES: number[][] = [[7], [3, 5, 4], [2, 16, 16, 33]]; // the last above 2^14 elements

const masked = (dy: tf.Tensor, y: tf.Tensor) => tf.mul(dy, tf.cast(tf.greater(y, 0), "float32"));
const kernel = (dy: tf.Tensor, y: tf.Tensor) =>
  tf.engine().runKernel(RELU_GRAD_KERNEL, { dy, y }) as tf.Tensor;

Deno.test({
  name: testName("MlhfReluGrad: dy·1[y > 0] bit for bit as cpu's masked product"),
  ignore: !nativeAvailable,
  fn: async () => {
    for (const [k, shape] of SHAPES.entries()) {
      const n = shape.reduce((a, b) => a * b, 1);
      for (const round of [0, 1]) {
        const seed = 7 * k + round;
        const make =
          () => [tf.tensor(values(n, seed), shape), tf.tensor(values(n, seed + 3), shape)];
        const [want] = await runOn("cpu", () => {
          const [dy, y] = make();
          return masked(dy, y);
        });
        const [got] = await runOn("native", () => {
          const [dy, y] = make();
          return kernel(dy, y);
        });
        assert.deepEqual(bits(got), bits(want), `shape [${shape}], round ${round}`);
      }
    }
  },
});

Deno.test({
  name: testName("relu's rules keep y and run MlhfReluGrad on native, with cpu's bits"),
  ignore: !nativeAvailable,
  fn: async () => {
    const shape = [2, 9, 9, 8], n = 2 * 9 * 9 * 8;
    const rules = (backend: string) => () => {
      const x = tf.tensor(values(n, 1), shape), t = tf.tensor(values(n, 2), shape);
      const y = relu.primal([x], {});
      const r = relu.residuals!([x], y, {});
      assert.equal(r.y !== undefined, backend === "native", `${backend}: residual kind`);
      if (r.y) assert.equal(r.y, y, "the residual is y itself");
      const jvp = relu.jvp([x], y, [t], {}, r) as tf.Tensor;
      const [vjp] = relu.transpose([x], y, t, [true], {}, r);
      return [y, jvp, vjp!];
    };
    const cpu = await runOn("cpu", rules("cpu"));
    const native = await withNoLeaks(() => runOn("native", rules("native")), "native");
    // y up to the signs of zero and NaN (cpu's Relu gives −0 and −NaN where native's keeps the
    // bits); the rules bit for bit.
    const unsigned = (a: Float32Array) =>
      bits(a.map((v) => Number.isNaN(v) ? NaN : v === 0 ? 0 : v));
    assert.deepEqual(unsigned(native[0]), unsigned(cpu[0]), "y");
    assert.deepEqual(bits(native[1]), bits(cpu[1]), "J·v");
    assert.deepEqual(bits(native[2]), bits(cpu[2]), "Jᵀ·u");
  },
});

Deno.test({
  name: testName("MlhfReluGrad's gradient: itself in dy, zero in y (cpu's tape gradients)"),
  ignore: !nativeAvailable,
  fn: async () => {
    const shape = [3, 4, 5], n = 60;
    const make = () => ({
      dy: tf.tensor(randArray(n, 4), shape),
      y: tf.tensor(randArray(n, 5), shape),
      w: tf.tensor(randArray(n, 6), shape),
    });
    // d/d dy of Σ w·(dy·1[y > 0]) is w·1[y > 0]; d/dy is 0.
    const [want] = await runOn("cpu", () => {
      const { y, w } = make();
      return masked(w, y);
    });
    const got = await runOn("native", () => {
      const { dy, y, w } = make();
      return tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(kernel(a, b), w)))([dy, y]);
    });
    assert.deepEqual(bits(got[0]), bits(want), "d/d dy");
    assert.deepEqual(Array.from(got[1]), new Array(n).fill(0), "d/dy");
  },
});
