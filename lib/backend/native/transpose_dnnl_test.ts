/**
 * `Transpose` by oneDNN (`kernels/transpose_dnnl.ts`, from `DNNL_TRANSPOSE_MIN` elements): the cpu
 * kernel's values bit for bit, float32 (NaN, ±∞, ±0 mixed in) and int32, over random shapes of rank
 * 2–5 and random permutations, either side of the threshold; lengths are checked. Skipped (reported
 * ignored, with the reason) when the native backend or oneDNN cannot be loaded.
 * @module
 */
import { tf } from "../../_deps.ts";
import { assert, fc } from "../../../tests/_util/deps.ts";
import { dnnlTranspose } from "./kernels/transpose_dnnl.ts";
import { DNNL_TRANSPOSE_MIN } from "./kernels/shape.ts";
import { assertSameBits, dnnlTests, randArray, runOn } from "./_test_util.ts";

const { dnnl, skip, name } = dnnlTests("native oneDNN transpose");

const SPECIALS = [NaN, Infinity, -Infinity, 0, -0];

Deno.test({
  name: name("Transpose equals cpu's bit for bit (float32 and int32, ranks 2-5, any permutation)"),
  ignore: skip !== null,
  fn: async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 2, maxLength: 5 }),
        fc.boolean(),
        fc.integer({ min: 0, max: 1e6 }),
        async (small, large, seed) => {
          // Scale the first axis so that the size lands above the threshold, or stays below it.
          const shape = [...small];
          const rest = shape.slice(1).reduce((a, b) => a * b, 1);
          if (large) shape[0] = Math.ceil(DNNL_TRANSPOSE_MIN / rest) + (seed % 3);
          const n = shape.reduce((a, b) => a * b, 1);
          const perm = shape.map((_, i) => i).sort((a, b) =>
            ((a * 7919 + seed) % 13) - ((b * 7919 + seed) % 13)
          );
          const f = randArray(n, seed).map((v, i) => (i % 89 === 3 ? SPECIALS[i % 5] : v));
          const ints = Int32Array.from(randArray(n, seed + 1), (v) => Math.round(v * 1e6));
          const run = () => [
            tf.transpose(tf.tensor(f, shape), perm),
            tf.transpose(tf.tensor(ints, shape, "int32"), perm),
          ];
          const cpu = await runOn("cpu", run), native = await runOn("native", run);
          assertSameBits(native[0], cpu[0], `float32 [${shape}] by [${perm}]`);
          assert.deepEqual(native[1], cpu[1], `int32 [${shape}] by [${perm}]`);
        },
      ),
      { numRuns: 30, seed: 17 },
    );
    const t = dnnlTranspose(dnnl!);
    assert.throws(
      () => t.transpose(new Float32Array(6), [2, 3], [1, 0], new Float32Array(5)),
      RangeError,
    );
  },
});
