import { join } from "node:path";
import { assert } from "../../tests/_util/deps.ts";
import { writeAll, writeFileAtomic, writeFileAtomicSync } from "./atomic.ts";

const withTempDir = async (f: (dir: string) => Promise<void>): Promise<void> => {
  const dir = await Deno.makeTempDir({ prefix: "mlhf-atomic-" });
  try {
    await f(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
};

const names = async (dir: string): Promise<string[]> =>
  (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();

Deno.test("writeFileAtomic: creates, then replaces, a file; no temporary file remains", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "a.bin");
    await writeFileAtomic(path, Uint8Array.of(1, 2, 3));
    assert.deepEqual([...await Deno.readFile(path)], [1, 2, 3]);
    await writeFileAtomic(path, "héllo");
    assert.equal(await Deno.readTextFile(path), "héllo");
    writeFileAtomicSync(path, "sync");
    assert.equal(await Deno.readTextFile(path), "sync");
    assert.deepEqual(await names(dir), ["a.bin"]);
  });
});

Deno.test("writeFileAtomic: a failure mid-write leaves the old file intact and cleans up", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "state.json");
    await writeFileAtomic(path, "old contents");
    const failingWriter = async (file: Deno.FsFile, bytes: Uint8Array) => {
      await writeAll(file, bytes.subarray(0, 3)); // part of the new data reaches the disk…
      throw new Error("disk full"); // …then the write fails
    };
    await assert.rejects(
      writeFileAtomic(path, "new contents that never land", { write: failingWriter }),
      (e: Error) => e.message.includes(path) && e.message.includes("disk full"),
    );
    assert.equal(await Deno.readTextFile(path), "old contents");
    assert.deepEqual(await names(dir), ["state.json"]);
  });
});

Deno.test("writeFileAtomic: a missing directory is an error naming the path", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "nope", "x.bin");
    await assert.rejects(writeFileAtomic(path, "x"), (e: Error) => e.message.includes(path));
    assert.throws(() => writeFileAtomicSync(path, "x"), (e: Error) => e.message.includes(path));
  });
});
