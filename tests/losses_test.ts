/**
 * Each loss's gradient against TF.js's first-order gradient of its value, and each H_L·u against
 * an explicit Hessian matrix built column by column by central differences of that gradient.
 * @module
 */
import { tf } from "../lib/_deps.ts";
import { fc } from "./_util/deps.ts";
import { useTestBackend } from "./_util/backend.ts";
import { relErr, withNoLeaks } from "./_util/numeric.ts";
import { keyFromSeed, normal, uniform } from "../lib/prng.ts";
import { type Loss, LOSSES } from "../ops/losses.ts";
import { tidyValue } from "../lib/scope.ts";

await useTestBackend();

const targets = (loss: Loss, seed: number, b: number, c: number): tf.Tensor => {
  if (loss.name === "softmaxCrossEntropy") {
    const u = uniform(keyFromSeed(seed), b);
    return tf.oneHot(tf.tensor1d(Array.from(u, (v) => Math.floor(v * c)), "int32"), c).toFloat();
  }
  if (loss.name === "sigmoidCrossEntropy") {
    return tf.tensor(uniform(keyFromSeed(seed), b * c), [b, c]);
  }
  return tf.tensor(normal(keyFromSeed(seed), b * c), [b, c]);
};

/** Explicit Hessian (n×n, n = B·C) of the loss value by central differences of TF.js's gradient. */
const explicitHessian = (loss: Loss, z: tf.Tensor, y: tf.Tensor): Float64Array =>
  tidyValue(() => {
    const n = z.size;
    const grad = tf.grad((zz: tf.Tensor) => loss.value(zz, y));
    const zs = z.dataSync();
    const H = new Float64Array(n * n);
    const eps = 2 ** -7; // a power of two: z ± eps is exact for |z| < 2^16
    for (let j = 0; j < n; j++) {
      const plus = Float32Array.from(zs), minus = Float32Array.from(zs);
      plus[j] += eps;
      minus[j] -= eps;
      const gp = grad(tf.tensor(plus, z.shape)).dataSync();
      const gm = grad(tf.tensor(minus, z.shape)).dataSync();
      for (let i = 0; i < n; i++) H[i * n + j] = (gp[i] - gm[i]) / (2 * eps);
    }
    return H;
  });

for (const loss of Object.values(LOSSES)) {
  Deno.test(`loss ${loss.name}: gradient and H_L·u match the explicit derivatives`, async () => {
    await withNoLeaks(() =>
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 4 }),
          fc.integer({ min: 2, max: 5 }),
          fc.integer({ min: 0, max: 2 ** 30 }),
          (b, c, seed) =>
            tf.tidy(() => {
              const z = tf.tensor(normal(keyFromSeed(seed), b * c, 0, 2), [b, c]);
              const y = targets(loss, seed + 1, b, c);
              const u = tf.tensor(normal(keyFromSeed(seed + 2), b * c), [b, c]);
              const g = loss.gradient(z, y).dataSync();
              const gTape = tf.grad((zz: tf.Tensor) => loss.value(zz, y))(z).dataSync();
              const eg = relErr(g, gTape);
              if (!(eg < 1e-4)) throw new Error(`gradient rel. error ${eg}`);
              const H = explicitHessian(loss, z, y);
              const n = b * c, us = u.dataSync();
              const Hu = new Float64Array(n);
              for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) Hu[i] += H[i * n + j] * us[j];
              const mine = loss.hessianProduct(z, y, u).dataSync();
              const eh = relErr(mine, Hu);
              if (!(eh < 1e-2)) throw new Error(`H_L·u rel. error ${eh}`);
            }),
        ),
        { numRuns: 15 },
      )
    );
  });
}

Deno.test("loss softmaxCrossEntropy: value is the mean cross-entropy", () => {
  tf.tidy(() => {
    const z = tf.tensor([[1, 2, 3], [0, 0, 0]]);
    const y = tf.tensor([[0, 0, 1], [1, 0, 0]]);
    const expected = ((-3 + Math.log(Math.exp(1) + Math.exp(2) + Math.exp(3))) + Math.log(3)) / 2;
    const got = LOSSES.softmaxCrossEntropy.value(z, y).dataSync()[0];
    if (Math.abs(got - expected) > 1e-6) throw new Error(`${got} vs ${expected}`);
  });
});

/**
 * Saturated rows (p ≈ e_k, 1 − p_k down to 1e-7): H_L·u against the closed form in float64, entry
 * by entry. Computed as p ⊙ (u − ⟨p, u⟩) in float32 the block is rounding noise here
 * (docs/algorithm.md#saturated-outputs); centred on the top class it keeps float32 accuracy.
 */
Deno.test("loss softmaxCrossEntropy: H_L·u keeps its accuracy on saturated rows", () => {
  tf.tidy(() => {
    const rows = [[12, -3, 1, 0.5], [0, 16, -2, 2], [-4, 1, 2, 18], [3, 3.5, -1, 0]];
    const us = [[1, -2, 0.5, 3], [-1, 2, 2, -0.25], [0.3, 0.7, -1.1, 1.9], [2, -1, 0, 1]];
    const [b, c] = [rows.length, rows[0].length];
    const got = LOSSES.softmaxCrossEntropy
      .hessianProduct(tf.tensor(rows), tf.oneHot([0, 1, 2, 3], c).toFloat(), tf.tensor(us))
      .dataSync();
    for (let r = 0; r < b; r++) {
      // float64: p from the float32-rounded logits, (Hu)_i = p_i Σ_j p_j (u_i − u_j) / B.
      const z = Float32Array.from(rows[r]), u = Float32Array.from(us[r]);
      const m = Math.max(...z);
      const e = Array.from(z, (v) => Math.exp(v - m));
      const s = e.reduce((a, v) => a + v, 0);
      const p = e.map((v) => v / s);
      for (let i = 0; i < c; i++) {
        let want = 0;
        for (let j = 0; j < c; j++) want += p[i] * p[j] * (u[i] - u[j]);
        want /= b;
        const have = got[r * c + i];
        if (!(Math.abs(have - want) <= 1e-4 * Math.abs(want) + 1e-30)) {
          throw new Error(`row ${r} class ${i}: H_L·u = ${have}, float64 ${want}`);
        }
      }
    }
  });
});

Deno.test("loss sigmoidCrossEntropy: H_L·u keeps its accuracy where σ(z) ≈ 1", () => {
  tf.tidy(() => {
    const z = [9, 14, 17, -15, 0.5];
    const got = LOSSES.sigmoidCrossEntropy
      .hessianProduct(tf.tensor([z]), tf.zeros([1, z.length]), tf.ones([1, z.length]))
      .dataSync();
    z.forEach((v, i) => {
      const zf = Math.fround(v);
      const want = 1 / ((1 + Math.exp(-zf)) * (1 + Math.exp(zf)));
      if (!(Math.abs(got[i] - want) <= 1e-5 * want)) {
        throw new Error(`z = ${v}: H_L·u = ${got[i]}, float64 ${want}`);
      }
    });
  });
});
