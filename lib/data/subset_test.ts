import { assert } from "../../tests/_util/deps.ts";
import { keyFromSeed } from "../prng.ts";
import { subsetSource } from "./subset.ts";
import type { Source } from "./source.ts";
import { IDX_HALF, openSource } from "./dataset.ts";

const numbers = (n: number): Source<number> => ({
  name: "n",
  shape: [1, 1, 1],
  numClasses: 2,
  ids: function* () {
    for (let i = 0; i < n; i++) yield i;
  },
  load: (i) => ({ image: Float32Array.of(i), label: i % 2 }),
});

const idsOf = async (s: Source<number>) => {
  const out: number[] = [];
  for await (const id of s.ids(0, keyFromSeed(1))) out.push(id);
  return out;
};

Deno.test("subsetSource: yields exactly the storage indices [start, end)", async () => {
  assert.deepEqual(await idsOf(subsetSource(numbers(10), 3, 7)), [3, 4, 5, 6]);
  assert.deepEqual(await idsOf(subsetSource(numbers(5), 2, 99)), [2, 3, 4]);
  assert.throws(() => subsetSource(numbers(5), 4, 4), /empty or not a range/);
});

Deno.test("mnist meta-train and eval-train are disjoint halves of the training set", async () => {
  const a = await idsOf(
    await openSource({ dataset: "mnist", split: "meta-train" }) as Source<number>,
  );
  const b = await idsOf(
    await openSource({ dataset: "mnist", split: "eval-train" }) as Source<number>,
  );
  assert.equal(a.length, IDX_HALF);
  assert.equal(b.length, IDX_HALF);
  assert.equal(a[a.length - 1] + 1, b[0]);
  assert.equal(new Set([...a, ...b]).size, 2 * IDX_HALF);
});
