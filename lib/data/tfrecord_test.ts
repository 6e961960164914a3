import { join } from "node:path";
import { assert, fc } from "../../tests/_util/deps.ts";
import { tfRecordFile, withTempDir } from "../../tests/data_fixtures.ts";
import { crc32c, maskCrc } from "./crc32c.ts";
import { DataError } from "./errors.ts";
import { encodeTfRecord, readTfRecords, TfRecordFile } from "./tfrecord.ts";

const isDataError = (re: RegExp) => (e: unknown) => {
  assert.ok(e instanceof DataError, `expected a DataError, got ${e}`);
  assert.match(e.message, re);
  return true;
};

const collect = async (path: string) => {
  const out = [];
  for await (const r of readTfRecords(path)) out.push(r);
  return out;
};

const records = [new Uint8Array([1, 2, 3]), new Uint8Array(0), new Uint8Array(300).fill(7)];

Deno.test("tfrecord: framing is length, masked CRC of length, data, masked CRC of data", () => {
  const framed = encodeTfRecord(new TextEncoder().encode("abc"));
  assert.equal(framed.length, 8 + 4 + 3 + 4);
  assert.deepEqual([...framed.subarray(0, 8)], [3, 0, 0, 0, 0, 0, 0, 0]);
  const view = new DataView(framed.buffer);
  assert.equal(view.getUint32(8, true), maskCrc(crc32c(framed.subarray(0, 8))));
  assert.equal(view.getUint32(15, true), maskCrc(crc32c(new TextEncoder().encode("abc"))));
});

Deno.test("tfrecord: a file written with real CRCs streams back record by record", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "train-00000-of-00001");
    await Deno.writeFile(path, tfRecordFile(records));
    const got = await collect(path);
    assert.deepEqual(got.map((r) => [...r.data]), records.map((r) => [...r]));
    assert.deepEqual(got.map((r) => r.entry), [
      { index: 0, offset: 0, length: 3 },
      { index: 1, offset: 19, length: 0 },
      { index: 2, offset: 35, length: 300 },
    ]);
    // Random access to one record.
    const file = await TfRecordFile.open(path);
    try {
      assert.deepEqual([...await file.read(got[2].entry)], [...records[2]]);
      assert.deepEqual([...await file.read(got[0].entry)], [1, 2, 3]);
    } finally {
      file.close();
    }
    await Deno.writeFile(path, new Uint8Array(0));
    assert.equal((await collect(path)).length, 0);
  });
});

Deno.test("tfrecord: random records round-trip", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "r");
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 6 }),
        async (recs) => {
          await Deno.writeFile(path, tfRecordFile(recs));
          assert.deepEqual((await collect(path)).map((r) => [...r.data]), recs.map((r) => [...r]));
        },
      ),
      { numRuns: 30 },
    );
  });
});

Deno.test("tfrecord: CRC mismatches and truncation name the file, record and offset", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "shard");
    const good = tfRecordFile(records);
    const write = (edit: (b: Uint8Array) => Uint8Array) => Deno.writeFile(path, edit(good.slice()));

    await write((b) => (b[19 + 12 + 4 - 1]++, b)); // record 1's data CRC
    await assert.rejects(collect(path), (e: unknown) => {
      isDataError(
        /shard: record 1 at byte 19: TFRecord data CRC mismatch \(stored 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}\)/,
      )(e);
      assert.equal((e as DataError).record, 1);
      assert.equal((e as DataError).offset, 19);
      assert.equal((e as DataError).file, path);
      return true;
    });
    await write((b) => (b[35 + 12 + 100] ^= 1, b)); // a data byte of record 2
    await assert.rejects(
      collect(path),
      isDataError(/record 2 at byte 35: TFRecord data CRC mismatch/),
    );
    await write((b) => (b[35 + 9] ^= 0x10, b)); // record 2's length CRC
    await assert.rejects(
      collect(path),
      isDataError(/record 2 at byte 35: TFRecord length CRC mismatch/),
    );
    await write((b) => b.subarray(0, b.length - 3));
    await assert.rejects(
      collect(path),
      isDataError(
        /record 2 at byte 35: truncated TFRecord: the record's 300 data bytes end at byte 351, the file has 348/,
      ),
    );
    await write((b) => {
      const longer = new Uint8Array(b.length + 5);
      longer.set(b);
      return longer;
    });
    await assert.rejects(
      collect(path),
      isDataError(/record 3 at byte 351: truncated TFRecord header: 5 bytes left/),
    );
    await assert.rejects(collect(join(dir, "absent")), isDataError(/absent: cannot open/));
  });
});
