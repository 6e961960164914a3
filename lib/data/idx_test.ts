import { join } from "node:path";
import { assert, fc } from "../../tests/_util/deps.ts";
import { gzip, withTempDir, writeMnistSplit } from "../../tests/data_fixtures.ts";
import { DataError } from "./errors.ts";
import { encodeIdx, parseIdx, readIdx } from "./idx.ts";
import { loadMnist, MNIST_FILES, readMnist } from "./mnist.ts";

const isDataError = (re: RegExp) => (e: unknown) => {
  assert.ok(e instanceof DataError, `expected a DataError, got ${e}`);
  assert.match(e.message, re);
  return true;
};

Deno.test("idx: any rank round-trips; the header is what the format says", () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 4 }),
      (dims) => {
        const n = dims.reduce((a, b) => a * b, 1);
        const data = Uint8Array.from({ length: n }, (_, i) => (i * 7) % 256);
        const bytes = encodeIdx(dims, data);
        assert.deepEqual([...bytes.subarray(0, 4)], [0, 0, 8, dims.length]);
        const parsed = parseIdx(bytes, "x.idx", dims.length);
        assert.deepEqual(parsed.dims, dims);
        assert.deepEqual([...parsed.data], [...data]);
      },
    ),
    { numRuns: 50 },
  );
  const bytes = encodeIdx([2, 3], new Uint8Array(6));
  assert.deepEqual([...bytes.subarray(4, 12)], [0, 0, 0, 2, 0, 0, 0, 3]);
});

Deno.test("idx: wrong magic, wrong rank, truncation and extra bytes name the file and offset", () => {
  const good = encodeIdx([2, 2, 2], Uint8Array.from({ length: 8 }, (_, i) => i));
  const bad = (edit: (b: Uint8Array) => void) => {
    const b = good.slice();
    edit(b);
    return b;
  };
  assert.throws(() => parseIdx(bad((b) => (b[0] = 0x1f)), "f.idx", 3), (e: unknown) => {
    isDataError(/^f\.idx: byte 0: not an IDX file: magic 0x1f000803, expected 0x00000803/)(e);
    assert.equal((e as DataError).offset, 0);
    assert.equal((e as DataError).file, "f.idx");
    return true;
  });
  assert.throws(
    () => parseIdx(bad((b) => (b[2] = 0x0d)), "f.idx", 3),
    isDataError(/byte 2: wrong IDX magic 0x00000d03: element type 0xd \(float32\)/),
  );
  assert.throws(
    () => parseIdx(good, "f.idx", 1),
    isDataError(/byte 3: wrong IDX magic 0x00000803: rank 3, expected 0x00000801/),
  );
  assert.throws(
    () => parseIdx(good.subarray(0, 3), "f.idx"),
    isDataError(/byte 3: truncated IDX file/),
  );
  assert.throws(
    () => parseIdx(good.subarray(0, 10), "f.idx"),
    isDataError(/byte 10: truncated IDX header/),
  );
  assert.throws(
    () => parseIdx(good.subarray(0, good.length - 1), "f.idx"),
    isDataError(/byte 23: truncated IDX file: dims \[2, 2, 2\] need 24 bytes, file has 23/),
  );
  const long = new Uint8Array(good.length + 2);
  long.set(good);
  assert.throws(() => parseIdx(long, "f.idx"), isDataError(/byte 24: IDX file too long/));
});

Deno.test("mnist layout: a directory of IDX files (plain or .gz) loads; errors are clear", async () => {
  await withTempDir(async (dir) => {
    const train = await writeMnistSplit(dir, "train", 5, { h: 4, w: 3, gz: true });
    const test = await writeMnistSplit(dir, "test", 3, { h: 4, w: 3, seed: 2 });
    const images = await readMnist("train", { dataDir: dir, name: "fashion-mnist" });
    assert.equal(images.name, "fashion-mnist/train");
    assert.deepEqual(images.shape, [4, 3, 1]);
    assert.deepEqual([...images.labels], [...train.labels]);
    assert.deepEqual([...images.pixels], [...train.pixels]);
    const floats = await loadMnist("test", { dataDir: dir });
    assert.deepEqual(floats.shape, [3, 4, 3, 1]);
    assert.ok(floats.pixels.every((v, i) => Math.abs(v - test.pixels[i] / 255) < 1e-7));

    // A label out of range names the file, the item and its byte offset.
    await writeMnistSplit(dir, "test", 3, { h: 4, w: 3, label: (i) => (i === 2 ? 10 : 1) });
    await assert.rejects(
      readMnist("test", { dataDir: dir }),
      isDataError(/t10k-labels-idx1-ubyte: record 2 at byte 10: label 10 out of range 0\.\.9/),
    );
    // Mismatched counts.
    await Deno.writeFile(join(dir, MNIST_FILES.test.labels), encodeIdx([2], new Uint8Array(2)));
    await assert.rejects(
      readMnist("test", { dataDir: dir }),
      isDataError(/label count 2 does not match the 3 images/),
    );
    // A truncated gzip file.
    const gz = await gzip(encodeIdx([1], new Uint8Array(1)) as Uint8Array<ArrayBuffer>);
    await Deno.writeFile(
      join(dir, `${MNIST_FILES.train.labels}.gz`),
      gz.subarray(0, gz.length - 6),
    );
    await assert.rejects(
      readIdx(join(dir, `${MNIST_FILES.train.labels}.gz`)),
      isDataError(/not a valid gzip file/),
    );
  });
});

Deno.test("mnist layout: a missing directory or file says which files and where to get them", async () => {
  await withTempDir(async (dir) => {
    const missing = join(dir, "nope");
    await assert.rejects(
      readMnist("train", { dataDir: missing }),
      isDataError(
        /MNIST-layout IDX data not found in .*nope: expected train-images-idx3-ubyte, train-labels-idx1-ubyte \(the directory does not exist\)\. .*fashion-mnist/,
      ),
    );
    await writeMnistSplit(dir, "test", 2);
    await Deno.remove(join(dir, MNIST_FILES.test.images));
    await assert.rejects(
      readMnist("test", { dataDir: dir }),
      isDataError(
        /expected t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte \(missing: t10k-images-idx3-ubyte\)/,
      ),
    );
  });
});
