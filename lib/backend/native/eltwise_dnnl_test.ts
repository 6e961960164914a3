/**
 * oneDNN's element-wise passes (`kernels/eltwise_dnnl.ts`): ReLU's cotangent from its output, and
 * the sum and product of two arrays or of an array and a scalar, give the bits of plain loops
 * written here, with NaN, ±∞, ±0 and denormals mixed
 * in; lengths are checked; and the native `Add` and `MlhfReluGrad` kernels, which take them from
 * `DNNL_ELTWISE_MIN` floats on, equal the cpu backend's results bit for bit at that size (Add,
 * Multiply by an array, by a scalar and by a vector repeated along it, as a bias). ReLU and the step
 * (1[x > 0], exact but for NaN) are the plain loops' bits too; the NaN guard (a sum) says "no NaN"
 * exactly when there is none (and no pair of infinities); the native `Relu` and `Step` kernels give
 * cpu's bits with and without NaN, record what ReLU proved (array facts), and a recycled array
 * loses its facts. Skipped
 * (reported ignored, with the reason) when the native backend or oneDNN cannot be loaded.
 * @module
 */
import { tf } from "../../_deps.ts";
import { assert } from "../../../tests/_util/deps.ts";
import { dnnlEltwise } from "./kernels/eltwise_dnnl.ts";
import { DNNL_ELTWISE_MIN, unaryValues } from "./kernels/elementwise.ts";
import { factsOf, recycleStats } from "./kernels/_util.ts";
import { RELU_GRAD_KERNEL } from "../../kernels.ts";
import { assertSameBits, dnnlTests, randArray, runOn } from "./_test_util.ts";

const { dnnl, skip, name } = dnnlTests("native oneDNN eltwise");

const SPECIALS = [NaN, Infinity, -Infinity, 0, -0, 1e-45, -1e-45, 3.5, -2];

/** Random values of either sign with the special values at scattered positions. */
const withSpecials = (n: number, seed: number): Float32Array => {
  const a = randArray(n, seed);
  for (let i = 0; i < n; i += 97) a[i] = SPECIALS[(i / 97 + seed) % SPECIALS.length];
  return a;
};

Deno.test({
  name: name("ReLU's cotangent and the sum are the plain loops' bits"),
  ignore: skip !== null,
  fn: () => {
    const e = dnnlEltwise(dnnl!);
    for (const n of [1, 17, 1000, DNNL_ELTWISE_MIN + 5]) {
      const dy = withSpecials(n, 1), y = withSpecials(n, 2);
      assert.ok(e.impl("reluGrad", n) && e.impl("add", n) && e.impl("mul", n, 1), `n = ${n}`);
      const out = () => new Float32Array(n).fill(NaN);
      const [dx, sum, prod, sumS, prodS] = [out(), out(), out(), out(), out()];
      const s = Float32Array.of(-0.37);
      assert.ok(e.reluGrad(dy, y, dx));
      assert.ok(e.binary("add", dy, y, sum) && e.binary("mul", dy, y, prod));
      assert.ok(e.binary("add", dy, s, sumS) && e.binary("mul", dy, s, prodS));
      const want = [out(), out(), out(), out(), out()];
      for (let i = 0; i < n; i++) {
        want[0][i] = dy[i] * +(y[i] > 0);
        want[1][i] = dy[i] + y[i];
        want[2][i] = dy[i] * y[i];
        want[3][i] = dy[i] + s[0];
        want[4][i] = dy[i] * s[0];
      }
      [dx, sum, prod, sumS, prodS].forEach((got, k) =>
        assertSameBits(got, want[k], `${["reluGrad", "add", "mul", "add s", "mul s"][k]}, n = ${n}`)
      );
    }
    // A vector repeated along the array (a bias over channels), at sizes either side of the
    // threshold, and a length that does not divide the array's.
    for (const [n, m] of [[12, 3], [DNNL_ELTWISE_MIN * 2, 64], [13 * 5042, 13]]) {
      const a = withSpecials(n, 3), b = withSpecials(m, 4);
      assert.ok(e.impl("add", n, m) && e.impl("mul", n, m), `n = ${n}, m = ${m}`);
      for (const op of ["add", "mul"] as const) {
        const got = new Float32Array(n).fill(NaN), want = new Float32Array(n);
        assert.ok(e.binary(op, a, b, got));
        for (let i = 0; i < n; i++) want[i] = op === "add" ? a[i] + b[i % m] : a[i] * b[i % m];
        assertSameBits(got, want, `${op} of a repeated ${m}, n = ${n}`);
      }
    }
    const [four, three] = [new Float32Array(4), new Float32Array(3)];
    assert.equal(e.impl("add", 4, 3), null);
    assert.throws(() => e.binary("add", four, three, four), RangeError);
    assert.throws(() => e.reluGrad(four, four, three), RangeError);
  },
});

Deno.test({
  name: name("native Add, Multiply, MlhfReluGrad (and Sub, RealDiv) at oneDNN's sizes: cpu's bits"),
  ignore: skip !== null,
  fn: async () => {
    const shape = [2, DNNL_ELTWISE_MIN / 2 + 3];
    const n = shape[0] * shape[1];
    const a = withSpecials(n, 5), b = withSpecials(n, 6);
    const ops = (reluGrad: (dy: tf.Tensor, y: tf.Tensor) => tf.Tensor) => () => {
      const ta = tf.tensor(a, shape), tb = tf.tensor(b, shape);
      // Sub and RealDiv share the loops but not oneDNN's path: their bits too at this size.
      return [
        tf.add(ta, tb),
        reluGrad(ta, tb),
        tf.mul(ta, tb),
        tf.mul(ta, -0.37),
        tf.sub(ta, tb),
        tf.div(ta, tb),
        tf.div(ta, 3),
        tf.add(ta, tb.slice([0, 0], [1, shape[1]]).reshape([shape[1]])),
        tf.mul(ta, tb.slice([1, 0], [1, shape[1]]).reshape([shape[1]])),
      ];
    };
    // cpu: the DSL's composition dy·cast(y > 0); native: the kernel that replaces it.
    const masked = (dy: tf.Tensor, y: tf.Tensor) =>
      tf.mul(dy, tf.cast(tf.greater(y, 0), "float32"));
    const kernel = (dy: tf.Tensor, y: tf.Tensor) =>
      tf.engine().runKernel(RELU_GRAD_KERNEL, { dy, y }) as tf.Tensor;
    const cpu = await runOn("cpu", ops(masked)), native = await runOn("native", ops(kernel));
    for (let o = 0; o < 9; o++) {
      assertSameBits(Float32Array.from(native[o]), Float32Array.from(cpu[o]), `output ${o}`);
    }
  },
});

Deno.test({
  name: name("ReLU and the step are the plain loops' bits; the NaN guard finds every NaN"),
  ignore: skip !== null,
  fn: () => {
    const e = dnnlEltwise(dnnl!);
    for (const n of [1, 17, 1000, DNNL_ELTWISE_MIN + 5, DNNL_ELTWISE_MIN * 2]) {
      const x = withSpecials(n, 7);
      const relu = new Float32Array(n).fill(NaN), step = new Float32Array(n).fill(NaN);
      assert.ok(e.relu(x, relu) && e.stepIgnoringNaN(x, step), `n = ${n}`);
      const wantRelu = x.map((v) => Math.max(0, v)); // NaN kept; −0 and negatives to +0
      const wantStep = x.map((v) => +(v > 0)); // NaN to +0 (the documented exception)
      assertSameBits(relu, wantRelu, `relu, n = ${n}`);
      assertSameBits(step, wantStep, `step, n = ${n}`);
      // The guard: clean random values pass; one NaN anywhere fails it; +∞ passes.
      const clean = randArray(n, 8);
      assert.equal(e.noNaN(clean), true, `clean, n = ${n}`);
      for (const at of new Set([0, n - 1, n >> 1, Math.min(63, n - 1), Math.min(64, n - 1)])) {
        const one = clean.slice();
        one[at] = NaN;
        assert.equal(e.noNaN(one), false, `a NaN at ${at}, n = ${n}`);
      }
      const inf = clean.slice();
      inf[n >> 1] = Infinity;
      assert.equal(e.noNaN(inf), true, `+∞, n = ${n}`);
    }
    assert.throws(() => e.relu(new Float32Array(4), new Float32Array(3)), RangeError);
  },
});

Deno.test({
  name: name("native Relu and Step at oneDNN's sizes: cpu's bits, NaN or not; ReLU's facts"),
  ignore: skip !== null,
  fn: async () => {
    for (const shape of [[2, DNNL_ELTWISE_MIN / 2 + 3], [4, DNNL_ELTWISE_MIN / 2]]) {
      const n = shape[0] * shape[1];
      const withNaN = withSpecials(n, 9);
      const noNaN = withNaN.map((v) => (Number.isNaN(v) ? -0 : v)); // ±∞, ±0, denormals kept
      for (const [what, x] of [["with NaN", withNaN], ["without NaN", noNaN]] as const) {
        const f = () => {
          const t = tf.tensor(x, shape);
          return [tf.relu(t), tf.step(t)];
        };
        const cpu = await runOn("cpu", f), native = await runOn("native", f);
        assertSameBits(native[0], cpu[0], `Relu ${what}, [${shape}]`);
        assertSameBits(native[1], cpu[1], `Step ${what}, [${shape}]`);
      }
      // What ReLU records: its output has no negative number, and no NaN when its input had none
      // (then the input is known NaN-free too; the guard sum sees no NaN: no pair of infinities).
      const [xa, xb] = [withNaN.slice(), noNaN.map((v) => (Math.abs(v) === Infinity ? 7 : v))];
      const [ya, yb] = [unaryValues("Relu", xa, 0), unaryValues("Relu", xb, 0)];
      assert.deepEqual(factsOf(ya), { noNegative: true });
      assert.deepEqual(factsOf(xa), {});
      assert.deepEqual(factsOf(yb), { noNaN: true, noNegative: true });
      assert.deepEqual(factsOf(xb), { noNaN: true });
    }
  },
});

Deno.test({
  name: name("a recycled array loses its facts (max-pooling of it keeps the JS loops' bits)"),
  ignore: skip !== null,
  fn: async () => {
    // 2×2 windows over [1, 256, 256, 2]: the first window all NaN, the second with −0 and +0 only.
    const shape: [number, number, number, number] = [1, 256, 256, 2];
    const n = 256 * 256 * 2;
    const z = randArray(n, 10);
    for (const i of [0, 2, 512, 514]) z[i] = NaN;
    [z[1], z[3], z[513], z[515]] = [-0, 0, -0, 0];
    const prev = tf.getBackend();
    await tf.setBackend("native");
    try {
      const pooled = tf.tidy(() => {
        tf.relu(tf.tensor(randArray(n, 11).map(Math.abs), shape)).dispose(); // facts, then free
        const before = recycleStats().reused;
        const y = tf.mul(tf.tensor(z, shape), 1); // the freed array again, with z's values
        assert.ok(recycleStats().reused > before, "the relu's array was reused");
        return tf.maxPool(y as tf.Tensor4D, 2, 2, "same");
      });
      const got = pooled.dataSync() as Float32Array;
      pooled.dispose();
      assert.equal(got[0], -Infinity, "a window of NaN: −∞ (oneDNN would give −3.4e38)");
      assert.ok(Object.is(got[1], 0), "−0 and +0: +0 (the JS keys)");
    } finally {
      await tf.setBackend(prev);
    }
  },
});
