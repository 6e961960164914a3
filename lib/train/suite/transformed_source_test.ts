/** The suite's pixel transforms on explicit images. */
import { assert } from "../../../tests/_util/deps.ts";
import { transformedSource, transformPixels } from "./transformed_source.ts";
import type { Source } from "../../data/source.ts";

Deno.test("pixel transforms: a quarter turn counter-clockwise, and 1 − x", () => {
  // 3×3, one channel, rows [1 2 3] [4 5 6] [7 8 9] → [3 6 9] [2 5 8] [1 4 7].
  const img = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.deepEqual([...transformPixels("rotate90", img, [3, 3, 1])], [3, 6, 9, 2, 5, 8, 1, 4, 7]);
  // Two channels stay together.
  const two = Float32Array.from([1, -1, 2, -2, 3, -3, 4, -4]);
  assert.deepEqual([...transformPixels("rotate90", two, [2, 2, 2])], [2, -2, 4, -4, 1, -1, 3, -3]);
  assert.deepEqual([...transformPixels("invert", Float32Array.from([0, 0.25, 1]), [1, 3, 1])], [
    1,
    0.75,
    0,
  ]);
  assert.throws(() => transformPixels("rotate90", img, [1, 9, 1]), /must be square, got 1×9/);
});

Deno.test("pixel transforms: a transformed source keeps ids and labels and names the transform", async () => {
  const src: Source<number> = {
    name: "toy",
    shape: [2, 2, 1],
    numClasses: 3,
    ids: () => [0, 1],
    load: (i) => ({ image: Float32Array.from([i, 0, 0, 0]), label: i + 1 }),
  };
  const t = transformedSource(src, "rotate90");
  assert.equal(t.name, "toy (rotate90)");
  assert.deepEqual([...t.ids(0, [0, 0] as never) as Iterable<number>], [0, 1]);
  const e = (await t.load(1, [0, 0] as never))!;
  assert.equal(e.label, 2);
  assert.deepEqual([...e.image], [0, 0, 1, 0]);
  assert.equal(transformedSource(src, "none"), src);
});
