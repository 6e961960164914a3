import { assert, fc } from "../tests/_util/deps.ts";
import {
  foldIn,
  keyFromSeed,
  normal,
  permutation,
  split,
  truncatedNormal,
  uniform,
} from "./prng.ts";

Deno.test("prng: a seed fixes every draw; different seeds and split keys differ", () => {
  const k = keyFromSeed(42);
  assert.deepEqual(uniform(k, 16), uniform(keyFromSeed(42), 16));
  assert.notDeepEqual(uniform(k, 16), uniform(keyFromSeed(43), 16));
  const [a, b] = split(k);
  assert.notDeepEqual(uniform(a, 8), uniform(b, 8));
  assert.notDeepEqual(foldIn(k, 1), foldIn(k, 2));
});

Deno.test("prng: uniform and normal moments are within sampling error", () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 2 ** 31 }), (seed) => {
      const n = 20000;
      const u = uniform(keyFromSeed(seed), n, -1, 3);
      const z = normal(keyFromSeed(seed), n, 2, 0.5);
      const mean = (x: Float32Array) => x.reduce((s, v) => s + v, 0) / x.length;
      const std = (x: Float32Array) => {
        const m = mean(x);
        return Math.sqrt(x.reduce((s, v) => s + (v - m) ** 2, 0) / x.length);
      };
      // 5 standard errors: fails with probability ~1e-6 for a correct generator.
      assert.ok(Math.abs(mean(u) - 1) < 5 * (4 / Math.sqrt(12)) / Math.sqrt(n));
      assert.ok(u.every((v) => v >= -1 && v < 3));
      assert.ok(Math.abs(mean(z) - 2) < 5 * 0.5 / Math.sqrt(n));
      assert.ok(Math.abs(std(z) - 0.5) < 5 * 0.5 / Math.sqrt(2 * n));
    }),
    { numRuns: 10 },
  );
});

Deno.test("prng: truncated normal stays within 2 std; permutation is a permutation", () => {
  const t = truncatedNormal(keyFromSeed(1), 5000, 0, 3);
  assert.ok(t.every((v) => Math.abs(v) <= 6 + 1e-6));
  const p = permutation(keyFromSeed(7), 100);
  assert.deepEqual([...p].sort((a, b) => a - b), Array.from({ length: 100 }, (_, i) => i));
  assert.notDeepEqual([...p], Array.from({ length: 100 }, (_, i) => i));
});
