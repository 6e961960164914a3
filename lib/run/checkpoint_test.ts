import { join } from "node:path";
import { tf } from "../_deps.ts";
import { assert } from "../../tests/_util/deps.ts";
import { withNoLeaks } from "../../tests/_util/numeric.ts";
import { useTestBackend } from "../../tests/_util/backend.ts";
import {
  checkpointPath,
  disposeTensorsIn,
  listCheckpointSteps,
  loadCheckpoint,
  saveCheckpoint,
} from "./checkpoint.ts";
import { encodeTree, TensorFileError } from "./tensor_file.ts";

await useTestBackend();

const withTempDir = async (f: (dir: string) => Promise<void>): Promise<void> => {
  const dir = await Deno.makeTempDir({ prefix: "mlhf-ckpt-" });
  try {
    await f(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
};

Deno.test("checkpoint: save then load returns the payload, step and time", async () => {
  await withTempDir(async (root) => {
    const dir = join(root, "run", "ckpt"); // created on save
    await withNoLeaks(async () => {
      const payload = {
        params: [tf.tensor([[1, 2]]), tf.tensor([3])],
        opt: { count: tf.scalar(4, "int32"), lr: 0.5 },
        key: [1, 2],
        note: "hello",
      };
      const path = await saveCheckpoint(dir, "train", payload, { step: 40 });
      assert.equal(path, join(dir, "train.bin"));
      disposeTensorsIn(payload);
      const ck = await loadCheckpoint(dir, "train");
      assert.ok(ck);
      assert.equal(ck.step, 40);
      assert.equal(ck.file, path);
      assert.ok(Math.abs(Date.parse(ck.savedAt) - Date.now()) < 60_000);
      const p = ck.payload as typeof payload;
      assert.deepEqual([...p.params[0].dataSync()], [1, 2]);
      assert.deepEqual(p.params[0].shape, [1, 2]);
      assert.equal(p.opt.count.dtype, "int32");
      assert.equal(p.opt.lr, 0.5);
      assert.deepEqual(p.key, [1, 2]);
      assert.equal(p.note, "hello");
      disposeTensorsIn(ck.payload);
    });
  });
});

Deno.test("checkpoint: a missing checkpoint loads as null", async () => {
  await withTempDir(async (dir) => {
    assert.equal(await loadCheckpoint(dir, "train"), null);
    assert.equal(await loadCheckpoint(join(dir, "absent"), "train"), null);
    assert.deepEqual(await listCheckpointSteps(join(dir, "absent"), "train"), []);
  });
});

Deno.test("checkpoint: latest is overwritten; keepLast keeps the newest per-step files", async () => {
  await withTempDir(async (dir) => {
    for (const step of [10, 20, 30, 40]) {
      await saveCheckpoint(dir, "m", { step, w: [step] }, { step, keepLast: 2 });
    }
    await saveCheckpoint(dir, "other", { x: 1 }); // a second name does not interfere
    assert.deepEqual(await listCheckpointSteps(dir, "m"), [30, 40]);
    const names = (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
    assert.deepEqual(names, ["m-30.bin", "m-40.bin", "m.bin", "other.bin"]);
    assert.deepEqual((await loadCheckpoint(dir, "m"))?.payload, { step: 40, w: [40] });
    assert.deepEqual((await loadCheckpoint(dir, "m", { step: 30 }))?.payload, {
      step: 30,
      w: [30],
    });
    assert.equal((await loadCheckpoint(dir, "other"))?.step, null);
  });
});

Deno.test("checkpoint: corrupt, truncated or foreign files are errors naming the file", async () => {
  await withTempDir(async (dir) => {
    await withNoLeaks(async () => {
      const w = tf.ones([64]);
      const path = await saveCheckpoint(dir, "c", { w }, { step: 1 });
      w.dispose();
      const good = await Deno.readFile(path);
      const expectBad = async (bytes: Uint8Array, pattern: RegExp) => {
        await Deno.writeFile(path, bytes);
        await assert.rejects(loadCheckpoint(dir, "c"), (e: unknown) => {
          assert.ok(e instanceof TensorFileError, String(e));
          assert.ok(e.message.startsWith(`${path}: `), e.message);
          assert.match(e.message, pattern);
          return true;
        });
      };
      await expectBad(good.subarray(0, good.length - 100), /truncated: tensor "w" needs bytes/);
      await expectBad(good.subarray(0, 10), /truncated: 10 bytes/);
      await expectBad(new TextEncoder().encode("not a checkpoint at all"), /bad magic/);
      await expectBad(encodeTree("replay-buffer", {}), /kind: expected "mlhf-checkpoint"/);
      await expectBad(
        encodeTree("mlhf-checkpoint", { w: 1 }, {
          name: "c",
          step: "one",
          savedAt: "now",
        }),
        /header field meta\.step: expected number \| null, found "one"/,
      );
    });
  });
});

Deno.test("checkpoint: bad names and options are RangeErrors", async () => {
  assert.throws(() => checkpointPath("d", "../escape"), /checkpoint name "..\/escape"/);
  await assert.rejects(saveCheckpoint("d", "x", {}, { keepLast: 2 }), /keepLast needs a step/);
  await assert.rejects(saveCheckpoint("d", "x", {}, { step: -1 }), /non-negative integer/);
});
