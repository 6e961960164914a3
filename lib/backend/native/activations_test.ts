/**
 * The native `Tanh` and `Softplus` kernels give the cpu kernels' very bits on values spread over
 * every magnitude from subnormal to overflow, both signs, NaN, ±∞ and ±0 (results of the shipped
 * meta-weights must not move with the backend).
 * @module
 */
import { tf } from "../../_deps.ts";
import { assert, fc } from "../../../tests/_util/deps.ts";
import { nativeAvailable, onBoth, testName } from "./_test_util.ts";

const ignore = !nativeAvailable;

/** Sign × 10^e with e uniform in [lo, hi]: every magnitude equally represented. */
const logUniform = (n: number, lo: number, hi: number, seed: number): Float32Array => {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  for (let i = 0; i < n; i++) out[i] = (next() < 0.5 ? -1 : 1) * 10 ** (lo + (hi - lo) * next());
  return out;
};

const SPECIALS = [NaN, Infinity, -Infinity, 0, -0, 1e-45, -1e-45, 3.4e38, -3.4e38];

Deno.test({
  name: testName("Tanh and Softplus give the cpu kernels' bits over all magnitudes and specials"),
  ignore,
  fn: async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 1e9 }), async (seed) => {
        const x = Float32Array.from([...logUniform(4000, -40, 2.5, seed), ...SPECIALS]);
        const r = await onBoth(() => [tf.tanh(tf.tensor(x)), tf.softplus(tf.tensor(x))]);
        ["Tanh", "Softplus"].forEach((name, k) => {
          for (let i = 0; i < x.length; i++) {
            const w = r.cpu[k][i], g = r.native[k][i];
            assert.ok(Object.is(g, w), `${name}(${x[i]}) = ${g}, cpu ${w}`);
          }
        });
      }),
      { numRuns: 10 },
    );
  },
});
