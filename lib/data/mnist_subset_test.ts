import { assert } from "../../tests/_util/deps.ts";
import { decodeMnistSubset, encodeMnistSubset, type MnistSubset } from "./mnist_subset.ts";

const sample = (): MnistSubset => ({
  height: 2,
  width: 3,
  train: { pixels: Uint8Array.from({ length: 12 }, (_, i) => i * 7), labels: Uint8Array.of(3, 9) },
  test: { pixels: Uint8Array.from({ length: 6 }, (_, i) => 255 - i), labels: Uint8Array.of(0) },
});

/** Asserts that `f` throws a RangeError whose message contains `text`. */
const throwsWith = (f: () => unknown, text: string): void =>
  assert.throws(f, (e: unknown) => e instanceof RangeError && e.message.includes(text));

Deno.test("mnist subset: encode then decode gives the same pixels, labels and sizes", () => {
  const bytes = encodeMnistSubset(sample());
  assert.equal(bytes.length, 24 + 3 * 7);
  const back = decodeMnistSubset(bytes, "x.bin");
  assert.deepEqual([back.height, back.width], [2, 3]);
  assert.deepEqual([...back.train.pixels], [...sample().train.pixels]);
  assert.deepEqual([...back.train.labels], [3, 9]);
  assert.deepEqual([...back.test.pixels], [255, 254, 253, 252, 251, 250]);
  assert.deepEqual([...back.test.labels], [0]);
});

Deno.test("mnist subset: wrong magic, truncation and bad labels are errors naming the file", () => {
  const bytes = encodeMnistSubset(sample());
  const wrong = bytes.slice();
  wrong[0] = 0x58;
  throwsWith(() => decodeMnistSubset(wrong, "a.bin"), 'a.bin: magic "XLHFMNS1"');
  throwsWith(() => decodeMnistSubset(bytes.slice(0, -1), "b.bin"), "b.bin: 44 bytes, expected 45");
  const label = bytes.slice();
  label[24 + 12] = 10;
  throwsWith(() => decodeMnistSubset(label, "c.bin"), "c.bin: train label 0 is 10");
  throwsWith(
    () => encodeMnistSubset({ ...sample(), width: 4 }),
    "train has 12 pixel bytes, expected 2·2·4 = 16",
  );
});
