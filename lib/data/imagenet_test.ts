import { join } from "node:path";
import { assert } from "../../tests/_util/deps.ts";
import { useTestBackend } from "../../tests/_util/backend.ts";
import { assertAllClose, withNoLeaks } from "../../tests/_util/numeric.ts";
import {
  fixtureExample,
  imagenetExample,
  type ImagenetFixtureRecord,
  randomBytes,
  testImage,
  tfRecordFile,
  withTempDir,
  writeImagenetShards,
} from "../../tests/data_fixtures.ts";
import { disposeBatch } from "./batch.ts";
import { DataError } from "./errors.ts";
import { encodeExample, int64Feature } from "./example_proto.ts";
import {
  decodeImagenetRecord,
  type ImagenetOptions,
  imagenetSource,
  preprocessImagenetEval,
  VGG_MEANS,
} from "./imagenet.ts";
import { decodeJpeg, encodeJpeg } from "./jpeg.ts";
import { batches } from "./pipeline.ts";

await useTestBackend();

const isDataError = (re: RegExp) => (e: unknown) => {
  assert.ok(e instanceof DataError, `expected a DataError, got ${e}`);
  assert.match(e.message, re);
  return true;
};

const TINY = { cropSize: 8, resizeMin: 10, resizeMax: 14, evalResize: 10 };
const TRAIN: ImagenetFixtureRecord[][] = [
  [
    { height: 12, width: 16, seed: 1, label: 1 },
    { height: 16, width: 12, seed: 2, label: 1000 },
    { height: 14, width: 14, seed: 3, label: 500 },
  ],
  [
    { height: 10, width: 20, seed: 4, label: 7 },
    { height: 13, width: 11, seed: 5, label: 8 },
    { height: 9, width: 9, seed: 6, label: 9 },
  ],
];

/** Labels and batch count of one epoch over a source, with every value range-checked. */
const epochLabels = async (options: ImagenetOptions, batchSize = 2, seed = 3) => {
  const source = await imagenetSource({ ...TINY, ...options });
  try {
    const labels: number[] = [];
    const stream = batches(source, { batchSize, seed, shuffleBuffer: 4, epochs: 1 });
    for await (const b of stream) {
      assert.deepEqual(b.x.shape, [batchSize, 8, 8, 3]);
      const x = await b.x.data();
      x.forEach((v, i) => {
        const m = VGG_MEANS[i % 3];
        assert.ok(v >= -m - 1e-6 && v <= 1 - m + 1e-6);
      });
      labels.push(...await b.y.data());
      disposeBatch(b);
    }
    return { labels, skipped: source.skipped };
  } finally {
    source.close();
  }
};

Deno.test("imagenet: TFRecord shards of real JPEGs stream through the pipeline", async () => {
  await withTempDir(async (dir) => {
    await writeImagenetShards(dir, "train", TRAIN);
    await withNoLeaks(async () => {
      const { labels } = await epochLabels({ dataDir: dir, split: "train" }, 2);
      assert.deepEqual([...labels].sort((a, b) => a - b), [1, 7, 8, 9, 500, 1000]);
      // A seed fixes shard order, shuffle and crops; another seed changes them.
      const again = await epochLabels({ dataDir: dir, split: "train" }, 2);
      assert.deepEqual(again.labels, labels);
      const orders = new Set<string>();
      for (let seed = 0; seed < 6; seed++) {
        orders.add((await epochLabels({ dataDir: dir, split: "train" }, 2, seed)).labels.join());
      }
      assert.ok(orders.size > 1);
    });
  });
});

Deno.test("imagenet: evaluation is the deterministic resize + central crop of the decoded JPEG", async () => {
  await withTempDir(async (dir) => {
    const records = TRAIN[0];
    await writeImagenetShards(dir, "validation", [records]);
    const source = await imagenetSource({ ...TINY, dataDir: dir, split: "validation" });
    try {
      assert.equal(source.name, "imagenet/validation(crop 8, short side 10)");
      assert.deepEqual(source.shape, [8, 8, 3]);
      assert.equal(source.numClasses, 1001);
      await withNoLeaks(async () => {
        const stream = batches(source, { batchSize: 3, seed: 1, epochs: 1 });
        const b = (await stream.next())!;
        assert.deepEqual([...await b.y.data()], [1, 1000, 500]);
        const x = await b.x.data();
        records.forEach((r, i) => {
          const jpegBytes = encodeJpeg(testImage(r.height, r.width, r.seed), 95);
          const expected = preprocessImagenetEval(decodeJpeg(jpegBytes), {
            ...TINY,
            means: VGG_MEANS,
          });
          assertAllClose(x.subarray(i * 192, (i + 1) * 192), expected, { atol: 1e-6 });
        });
        disposeBatch(b);
        await stream.close();
      });
    } finally {
      source.close();
    }
  });
});

Deno.test("imagenet: JPEGs written with jpeg-js decode back close to the original", () => {
  const img = testImage(12, 17, 3);
  const back = decodeJpeg(encodeJpeg(img, 95));
  assert.deepEqual([back.height, back.width], [12, 17]);
  let worst = 0;
  back.data.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - img.data[i]))));
  assert.ok(worst < 24, `max abs error ${worst}`);
});

Deno.test("imagenet: bad labels, bad JPEGs and malformed records name the file and record", () => {
  const where = { file: "train-00003-of-01024", record: 4, offset: 1234 };
  const jpegBytes = encodeJpeg(testImage(9, 9, 1));
  for (const label of [0, 1001, -3]) {
    assert.throws(
      () => decodeImagenetRecord(imagenetExample(jpegBytes, label), where),
      isDataError(
        new RegExp(
          `^train-00003-of-01024: record 4 at byte 1234: label ${label} out of range 1\\.\\.1000`,
        ),
      ),
    );
  }
  assert.equal(decodeImagenetRecord(imagenetExample(jpegBytes, 1000), where).label, 1000);
  assert.throws(
    () => decodeImagenetRecord(imagenetExample(randomBytes(1, 200), 5), where),
    isDataError(/record 4 at byte 1234: undecodable JPEG \(200 bytes\)/),
  );
  assert.throws(
    () => decodeImagenetRecord(imagenetExample(jpegBytes.subarray(0, 2), 5), where),
    isDataError(/undecodable JPEG/),
  );
  assert.throws(
    () => decodeImagenetRecord(Uint8Array.of(0x0a, 0x09, 1), where),
    isDataError(/record 4 at byte 1234: malformed tf\.Example: length 9 runs past the end/),
  );
  assert.throws(
    () => decodeImagenetRecord(encodeExample([["image/class/label", int64Feature(3)]]), where),
    isDataError(/no bytes feature image\/encoded/),
  );
});

Deno.test("imagenet: a corrupt record fails with its location, or is skipped and counted on request", async () => {
  await withTempDir(async (dir) => {
    const [shard0] = await writeImagenetShards(dir, "train", TRAIN);
    // Corrupt one byte inside record 1's data (its JPEG) of shard 0.
    const bytes = await Deno.readFile(shard0);
    const record0 = 12 + fixtureExample(TRAIN[0][0]).length + 4;
    bytes[record0 + 12 + 40] ^= 0xff;
    await Deno.writeFile(shard0, bytes);
    await withNoLeaks(async () => {
      await assert.rejects(
        epochLabels({ dataDir: dir, split: "train" }),
        (e: unknown) => {
          isDataError(/train-00000-of-00002: record 1 at byte \d+: TFRecord data CRC mismatch/)(e);
          assert.equal((e as DataError).offset, record0);
          return true;
        },
      );
      const warnings: string[] = [];
      const { labels, skipped } = await epochLabels(
        { dataDir: dir, split: "train", skipCorrupt: true, onWarning: (m) => warnings.push(m) },
        1,
      );
      assert.equal(skipped, 1);
      assert.deepEqual([...labels].sort((a, b) => a - b), [1, 7, 8, 9, 500]);
      assert.equal(warnings.length, 1);
      assert.match(
        warnings[0],
        /skipping a corrupt record \(1 skipped so far\): .*record 1 at byte/,
      );
    });
    // A truncated shard: its tail is lost (one count), the other shard is read in full.
    await Deno.writeFile(shard0, bytes.subarray(0, record0 + 20));
    await assert.rejects(
      epochLabels({ dataDir: dir, split: "train" }),
      isDataError(/train-00000-of-00002: record 1 at byte \d+: truncated TFRecord/),
    );
    const cut = await epochLabels({
      dataDir: dir,
      split: "train",
      skipCorrupt: true,
      onWarning: () => {},
    }, 1);
    assert.deepEqual({ ...cut, labels: cut.labels.sort((a, b) => a - b) }, {
      labels: [1, 7, 8, 9],
      skipped: 1,
    });
  });
});

Deno.test("imagenet: a record with a bad label or an undecodable JPEG inside a shard is located", async () => {
  await withTempDir(async (dir) => {
    const good = fixtureExample(TRAIN[0][0]);
    const path = join(dir, "validation-00000-of-00001");
    await Deno.writeFile(path, tfRecordFile([good, imagenetExample(randomBytes(3, 50), 3)]));
    await assert.rejects(
      epochLabels({ dataDir: dir, split: "validation" }, 1),
      isDataError(
        new RegExp(
          `validation-00000-of-00001: record 1 at byte ${good.length + 16}: undecodable JPEG`,
        ),
      ),
    );
    await Deno.writeFile(
      path,
      tfRecordFile([good, fixtureExample({ ...TRAIN[0][0], label: 1001 })]),
    );
    await assert.rejects(
      epochLabels({ dataDir: dir, split: "validation" }, 1),
      isDataError(/validation-00000-of-00001: record 1 at byte \d+: label 1001 out of range/),
    );
  });
});

Deno.test("imagenet: a missing directory or incomplete shard set says what is expected", async () => {
  await withTempDir(async (dir) => {
    await assert.rejects(
      imagenetSource({ dataDir: join(dir, "imagenet"), split: "train" }),
      isDataError(
        /ImageNet \(TFRecord shards\) not found in .*imagenet: expected train-00000-of-01024, train-00001-of-01024, .*train-01023-of-01024 \(the directory does not exist\)\. .*build_imagenet_data\.py/,
      ),
    );
    await assert.rejects(
      imagenetSource({ dataDir: dir, split: "validation" }),
      isDataError(/expected validation-00000-of-00128, .* \(none of them is there\)/),
    );
    const paths = await writeImagenetShards(dir, "train", [TRAIN[0], TRAIN[1], TRAIN[0]]);
    await Deno.remove(paths[1]);
    await assert.rejects(
      imagenetSource({ dataDir: dir, split: "train" }),
      isDataError(/\(missing: train-00001-of-00003\)/),
    );
    const partial = await imagenetSource({
      ...TINY,
      dataDir: dir,
      split: "train",
      allowMissingShards: true,
    });
    assert.equal(partial.shards.length, 2);
    partial.close();
    await assert.rejects(
      imagenetSource({ ...TINY, cropSize: 11, dataDir: dir, split: "train" }),
      RangeError,
    );
  });
});

Deno.test({
  name: "imagenet: closing a stream mid-shard closes the shard it was scanning",
  ignore: Deno.build.os !== "linux", // counts /proc/self/fd
}, async () => {
  await withTempDir(async (dir) => {
    await writeImagenetShards(dir, "train", TRAIN);
    const openFiles = () => [...Deno.readDirSync("/proc/self/fd")].length;
    const before = openFiles();
    const source = await imagenetSource({ ...TINY, dataDir: dir, split: "train" });
    await withNoLeaks(async () => {
      const stream = batches(source, { batchSize: 1, seed: 2 });
      disposeBatch((await stream.next())!);
      assert.ok(openFiles() > before, "a shard is open while the stream runs");
      await stream.close();
    });
    source.close();
    assert.equal(openFiles(), before);
  });
});
