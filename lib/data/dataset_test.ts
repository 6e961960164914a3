import { join } from "node:path";
import { assert } from "../../tests/_util/deps.ts";
import { useTestBackend } from "../../tests/_util/backend.ts";
import { withNoLeaks } from "../../tests/_util/numeric.ts";
import { parseFlags } from "../cli/flags.ts";
import {
  withTempDir,
  writeCifar10,
  writeImagenetShards,
  writeMnistSplit,
} from "../../tests/data_fixtures.ts";
import { disposeBatch } from "./batch.ts";
import { openSource } from "./dataset.ts";
import { DataError } from "./errors.ts";
import { dataFlags } from "./flags.ts";
import { batches } from "./pipeline.ts";

await useTestBackend();

Deno.test("dataset: every data set opens by name from a data dir and yields batches", async () => {
  await withTempDir(async (dir) => {
    await writeMnistSplit(dir, "train", 4);
    await writeCifar10(dir, 2);
    await writeImagenetShards(dir, "validation", [[{ height: 9, width: 12, seed: 1, label: 3 }]]);
    const imagenet = { cropSize: 8, resizeMin: 8, resizeMax: 8, evalResize: 8 };
    const cases = [
      {
        spec: { dataset: "fashion-mnist", split: "train" },
        shape: [28, 28, 1],
        name: "fashion-mnist/train",
      },
      {
        spec: { dataset: "cifar10", split: "meta-train" },
        shape: [32, 32, 3],
        name: "cifar10/meta-train+augment",
      },
      { spec: { dataset: "cifar10", split: "test" }, shape: [32, 32, 3], name: "cifar10/test" },
      {
        spec: { dataset: "imagenet", split: "validation", imagenet },
        shape: [8, 8, 3],
        name: "imagenet/validation(crop 8, short side 8)",
      },
    ] as const;
    await withNoLeaks(async () => {
      for (const { spec, shape, name } of cases) {
        const source = await openSource({ ...spec, dataDir: dir });
        assert.equal(source.name, name);
        const stream = batches(source, { batchSize: 1, seed: 0 });
        const b = (await stream.next())!;
        assert.deepEqual(b.x.shape, [1, ...shape]);
        disposeBatch(b);
        await stream.close();
        await source.close?.();
      }
    });
  });
});

Deno.test("dataset: unknown splits and a missing data dir are clear errors", async () => {
  await assert.rejects(
    openSource({ dataset: "cifar10", split: "validation" }),
    /cifar10 has no split "validation"; its splits are meta-train, train, test/,
  );
  await assert.rejects(
    openSource({ dataset: "imagenet", split: "train" }),
    /imagenet needs a data directory/,
  );
  await withTempDir(async (dir) => {
    await assert.rejects(
      openSource({ dataset: "cifar10", split: "train", dataDir: join(dir, "x") }),
      DataError,
    );
  });
});

Deno.test("dataset: the data flags parse", () => {
  const parsed = parseFlags([
    "--dataset",
    "cifar10",
    "--data-dir",
    "/d",
    "--skip-corrupt",
    "--shuffle-buffer",
    "50000",
  ], dataFlags);
  assert.equal(parsed.kind, "config");
  if (parsed.kind === "config") {
    assert.deepEqual(parsed.config, {
      dataset: "cifar10",
      "data-dir": "/d",
      "shuffle-buffer": 50000,
      "skip-corrupt": true,
    });
  }
  assert.throws(
    () => parseFlags(["--dataset", "svhn"], dataFlags),
    /--dataset: invalid value "svhn"/,
  );
});
