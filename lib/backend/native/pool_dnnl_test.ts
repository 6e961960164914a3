/**
 * Max pooling by oneDNN (`kernels/pool_dnnl.ts`) gives the JS loops' bits (`maxPoolValues`,
 * `maxPoolGradValues`) on inputs with no NaN and no negative number (ties of zeros, +∞, denormals),
 * for the gradient where windows do not overlap; and the native `MaxPool` and `MlhfMaxPoolGrad`
 * kernels take it only where that holds: a ReLU output with no NaN (array facts), else the JS loops,
 * whose bits they keep (a window of NaN gives −∞; overlapping windows add in the loops' order).
 * Skipped (reported ignored, with the reason) when the native backend or oneDNN cannot be loaded.
 * @module
 */
import { tf } from "../../_deps.ts";
import { assert } from "../../../tests/_util/deps.ts";
import { argMaxFromWorkspace, dnnlMaxPool } from "./kernels/pool_dnnl.ts";
import {
  DNNL_POOL_MIN,
  maxPoolArgMaxValues,
  maxPoolGradValues,
  maxPoolValues,
  maxPoolWithArgMaxValues,
  scatterAddFlatValues,
} from "./kernels/pool.ts";
import { maxPoolWithArgMax, scatterAddFlat } from "../../../ops/window_kernels.ts";
import { assertSameBits, dnnlTests, randArray, runOn } from "./_test_util.ts";

const { dnnl, skip, name } = dnnlTests("native oneDNN max-pool");

type Shape = [number, number, number, number];

/** Cotangents that must keep the loops' bits too: 0 + (−0) = +0, NaN, ±∞. */
const SPECIALS = [-0, NaN, Infinity, -Infinity];

/** Non-negative values with many ties of +0 and of small integers, a few +∞ and denormals. */
const clean = (n: number, seed: number): Float32Array =>
  randArray(n, seed).map((v, i) =>
    i % 101 === 7 ? Infinity : i % 103 === 5 ? 1e-45 : Math.max(0, Math.round(v * 3))
  );

const info = (shape: Shape, k: number | [number, number], s: number, pad: "same" | "valid") =>
  tf.backend_util.computePool2DInfo(shape, k, s, 1, pad);

Deno.test({
  name: name("forward and gradient are the JS loops' bits on inputs without NaN or negatives"),
  ignore: skip !== null,
  fn: () => {
    const pool = dnnlMaxPool(dnnl!);
    const cases: [Shape, number | [number, number], number, "same" | "valid"][] = [
      [[2, 6, 6, 16], 2, 2, "same"],
      [[3, 9, 9, 5], 2, 2, "same"], // odd: one more row and column of padding
      [[2, 7, 5, 8], 3, 2, "valid"], // overlapping windows (forward only)
      [[2, 7, 7, 16], 3, 2, "same"],
      [[1, 12, 13, 3], 3, 3, "same"],
      [[2, 8, 8, 4], [1, 2], 2, "valid"], // windows apart, elements skipped
      [[4, 32, 32, 64], 2, 2, "same"], // the CUDA-convnet's first pool
    ];
    cases.forEach(([shape, k, s, pad], c) => {
      const g = info(shape, k, s, pad);
      const what = `[${shape}] ${k}/${s} ${pad}`;
      const x = clean(shape.reduce((a, b) => a * b), c + 1);
      const ny = g.batchSize * g.outHeight * g.outWidth * g.inChannels;
      const y = new Float32Array(ny).fill(NaN), ws = new Uint8Array(ny).fill(255);
      assert.ok(pool.forward(x, g, y, ws), `${what}: ${pool.impl(g)}`);
      assertSameBits(y, maxPoolValues(x, g), `y ${what}`);
      const idx = new Int32Array(ny).fill(-1);
      argMaxFromWorkspace(ws, g, idx);
      assert.deepEqual(idx, maxPoolArgMaxValues(x, g), `arg-max ${what}`);
      if (g.strideHeight < g.filterHeight || g.strideWidth < g.filterWidth) return;
      const dy = randArray(ny, c + 20).map((v, i) => i % 7 === 3 ? SPECIALS[i % 4] : v);
      const dx = new Float32Array(x.length).fill(NaN);
      assert.ok(pool.grad(dy, x, g, dx), what);
      assertSameBits(dx, maxPoolGradValues(dy, x, g), `dx ${what}`);
      dx.fill(NaN);
      assert.ok(pool.backward(dy, ws, g, dx), what);
      assertSameBits(dx, scatterAddFlatValues(dy, idx, x.length), `dx from the workspace ${what}`);
    });
    const g = info([1, 4, 4, 1], 2, 2, "valid");
    assert.throws(() => pool.forward(new Float32Array(15), g, new Float32Array(4)), RangeError);
    assert.throws(
      () => pool.grad(new Float32Array(4), new Float32Array(16), g, new Float32Array(4)),
      RangeError,
    );
  },
});

Deno.test({
  name: name("native MaxPool and its gradient after a ReLU: the JS loops' bits, NaN or overlap"),
  ignore: skip !== null,
  fn: async () => {
    const shape: Shape = [4, 64, 64, 8]; // 131 072 floats
    const n = shape.reduce((a, b) => a * b);
    assert.ok(n >= DNNL_POOL_MIN);
    const z = randArray(n, 30);
    const zNaN = z.slice();
    for (const i of [0, 8, 64 * 8, 64 * 8 + 8]) zNaN[i] = NaN; // the first 2×2 window, channel 0
    for (const [what, zv] of [["no NaN", z], ["a window of NaN", zNaN]] as const) {
      for (const [k, s] of [[2, 2], [3, 2]]) {
        const g = info(shape, k, s, "same");
        const dy = randArray(g.batchSize * g.outHeight * g.outWidth * g.inChannels, 31);
        const [rv, y, dx, yArg, idx, scattered] = await runOn("native", () => {
          const r = tf.relu(tf.tensor(zv, shape)) as tf.Tensor4D;
          const pool = (t: tf.Tensor) => tf.maxPool(t as tf.Tensor4D, k, s, "same");
          const [yArg, idx] = maxPoolWithArgMax(r, [k, k], [s, s], "same");
          const scattered = scatterAddFlat(tf.tensor(dy, g.outShape), idx, shape);
          return [r, pool(r), tf.grad(pool)(r, tf.tensor(dy, g.outShape)), yArg, idx, scattered];
        });
        const case_ = `${what}, ${k}/${s}`;
        assertSameBits(y, maxPoolValues(rv, g), `y, ${case_}`);
        assertSameBits(dx, maxPoolGradValues(dy, rv, g), `dx, ${case_}`);
        const [wantY, wantIdx] = maxPoolWithArgMaxValues(rv, g);
        assertSameBits(yArg, wantY, `MlhfMaxPoolWithArgMax's y, ${case_}`);
        assert.deepEqual(
          Int32Array.from(idx),
          wantIdx,
          `MlhfMaxPoolWithArgMax's indices, ${case_}`,
        );
        assertSameBits(scattered, scatterAddFlatValues(dy, wantIdx, n), `scatter, ${case_}`);
        if (what !== "no NaN" && k === 2) assert.equal(y[0], -Infinity, case_);
      }
    }
  },
});
