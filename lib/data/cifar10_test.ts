import { join } from "node:path";
import { assert } from "../../tests/_util/deps.ts";
import { withTempDir, writeCifar10 } from "../../tests/data_fixtures.ts";
import { cifar10Source, encodeCifar10, parseCifar10, readCifar10 } from "./cifar10.ts";
import { DataError } from "./errors.ts";
import { keyFromSeed } from "../prng.ts";

const isDataError = (re: RegExp) => (e: unknown) => {
  assert.ok(e instanceof DataError, `expected a DataError, got ${e}`);
  assert.match(e.message, re);
  return true;
};

Deno.test("cifar10: records convert from CHW planes to HWC", () => {
  // One record: label 7, R plane = p mod 256, G plane = 1, B plane = 2.
  const bytes = new Uint8Array(3073);
  bytes[0] = 7;
  for (let p = 0; p < 1024; p++) {
    bytes[1 + p] = p % 256;
    bytes[1 + 1024 + p] = 1;
    bytes[1 + 2048 + p] = 2;
  }
  const { pixels, labels } = parseCifar10(bytes, "one.bin");
  assert.deepEqual([...labels], [7]);
  // Pixel (row 1, col 3) is plane index 35: HWC offset 3·35.
  assert.deepEqual([...pixels.subarray(3 * 35, 3 * 35 + 3)], [35, 1, 2]);
  assert.deepEqual([...encodeCifar10(pixels, labels)], [...bytes]);
});

Deno.test("cifar10: the original's splits read from the binary batches (dir or its parent)", async () => {
  await withTempDir(async (parent) => {
    const dir = join(parent, "cifar-10-batches-bin");
    await Deno.mkdir(dir);
    const written = await writeCifar10(dir, 2);
    const meta = await readCifar10("meta-train", parent);
    assert.equal(meta.labels.length, 6);
    assert.deepEqual(meta.shape, [32, 32, 3]);
    assert.equal(meta.name, "cifar10/meta-train");
    const train = await readCifar10("train", dir);
    assert.equal(train.labels.length, 4);
    const b4 = written.get("data_batch_4.bin")!, b5 = written.get("data_batch_5.bin")!;
    assert.deepEqual([...train.labels], [...b4.labels, ...b5.labels]);
    assert.deepEqual([...train.pixels.subarray(2 * 3072, 3 * 3072)], [
      ...b5.pixels.subarray(0, 3072),
    ]);
    const test = await readCifar10("test", dir);
    assert.deepEqual([...test.labels], written.get("test_batch.bin")!.labels);
    // Test preprocessing has no randomness; training's does.
    const s = cifar10Source(test), a = cifar10Source(train);
    assert.equal(s.name, "cifar10/test");
    assert.equal(a.name, "cifar10/train+augment");
    const t1 = s.load(0, keyFromSeed(1)), t2 = s.load(0, keyFromSeed(2));
    assert.deepEqual(t1, t2);
    assert.notDeepEqual(a.load(0, keyFromSeed(1)), a.load(0, keyFromSeed(2)));
  });
});

Deno.test("cifar10: wrong size, bad label and missing files are clear errors", async () => {
  await withTempDir(async (dir) => {
    await assert.rejects(
      readCifar10("meta-train", join(dir, "none")),
      isDataError(
        /CIFAR-10 \(binary version\) not found in .*none: expected data_batch_1\.bin, data_batch_2\.bin, data_batch_3\.bin \(the directory does not exist\)\. Download https:\/\/www\.cs\.toronto\.edu\/~kriz\/cifar-10-binary\.tar\.gz/,
      ),
    );
    await writeCifar10(dir, 2);
    await Deno.remove(join(dir, "data_batch_5.bin"));
    await assert.rejects(readCifar10("train", dir), isDataError(/\(missing: data_batch_5\.bin\)/));

    const path = join(dir, "test_batch.bin");
    const good = await Deno.readFile(path);
    await Deno.writeFile(path, good.subarray(0, 3073 + 100));
    await assert.rejects(readCifar10("test", dir), (e: unknown) => {
      isDataError(
        /test_batch\.bin: record 1 at byte 3073: file size 3173 is not a positive multiple of 3073/,
      )(e);
      assert.equal((e as DataError).record, 1);
      assert.equal((e as DataError).offset, 3073);
      return true;
    });
    const bad = good.slice();
    bad[3073] = 10;
    await Deno.writeFile(path, bad);
    await assert.rejects(
      readCifar10("test", dir),
      isDataError(/test_batch\.bin: record 1 at byte 3073: label 10 out of range 0\.\.9/),
    );
    assert.throws(
      () => parseCifar10(new Uint8Array(0), "empty.bin"),
      isDataError(/empty\.bin: record 0 at byte 0: file size 0/),
    );
  });
});
