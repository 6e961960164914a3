/**
 * A meta-training run loses nothing: a directory that holds a run is refused without `resume` (its
 * files untouched); bad input (missing data, a batch larger than the meta-training split) stops
 * the run before `out` is created; `resume` into a directory without a checkpoint creates nothing.
 */
import { assert } from "../../tests/_util/deps.ts";
import { useTestBackend } from "../../tests/_util/backend.ts";
import { withNoLeaks } from "../../tests/_util/numeric.ts";
import { join } from "node:path";
import { FlagError } from "../cli/flags.ts";
import { META_TRAIN_DEFAULTS } from "../meta/meta_train.ts";
import { mlp } from "../../models/mlp.ts";
import type { Model } from "../../models/types.ts";
import type { Params } from "../tree.ts";
import { type MetaRunConfig, metaTrainRun } from "./meta_run.ts";
import { exists } from "../run/files.ts";
import { tempDir } from "./_testing.ts";

await useTestBackend();

const config = (out: string, extra: Partial<MetaRunConfig> = {}): MetaRunConfig => ({
  model: mlp({ numClasses: 10, hidden: [4] }) as unknown as Model<Params, Params>,
  modelName: "mlp-4",
  dataset: "mnist",
  batchSize: 16,
  shuffleBuffer: 100,
  iterations: 2,
  seed: 1,
  out,
  checkpointEvery: 1,
  resume: false,
  options: { ...META_TRAIN_DEFAULTS, metaRollBack: 1 },
  command: "test",
  quiet: true,
  ...extra,
});

/** Every file of a directory with its bytes. */
const snapshot = async (dir: string): Promise<Map<string, Uint8Array>> => {
  const out = new Map<string, Uint8Array>();
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile) out.set(e.name, await Deno.readFile(join(dir, e.name)));
  }
  return out;
};

Deno.test("meta-run: a directory holding a run is refused without resume, its files untouched", async () => {
  const dir = await tempDir();
  try {
    const out = join(dir, "run");
    await metaTrainRun(config(out));
    const before = await snapshot(out);
    assert.deepEqual([...before.keys()].sort(), [
      "meta-train.bin",
      "meta-weights.mlhf",
      "meta_train.jsonl",
    ]);
    await withNoLeaks(() =>
      assert.rejects(
        () => metaTrainRun(config(out, { iterations: 3 })),
        Error,
        `${out} already holds a run (${join(out, "meta-train.bin")}): pass --resume to ` +
          "continue it, or choose another --out",
      )
    );
    assert.deepEqual(await snapshot(out), before);
    // A directory holding only a log (a run killed before its first checkpoint) is a run too.
    await Deno.remove(join(out, "meta-train.bin"));
    await Deno.remove(join(out, "meta-weights.mlhf"));
    await assert.rejects(() => metaTrainRun(config(out)), /already holds a run/);
    assert.equal((await Deno.readTextFile(join(out, "meta_train.jsonl"))).split("\n").length, 3);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("meta-run: missing data, a batch larger than the split, or nothing to resume create no --out", async () => {
  const dir = await tempDir();
  try {
    const out = join(dir, "run");
    await assert.rejects(
      () => metaTrainRun(config(out, { dataset: "cifar10", dataDir: join(dir, "nowhere") })),
      /CIFAR-10 \(binary version\) not found/,
    );
    assert.equal(await exists(out), false, "a data error left --out behind");
    await assert.rejects(
      () => metaTrainRun(config(out, { batchSize: 40_000 })),
      FlagError,
      "--batch-size 40000 exceeds the meta-train split of mnist (30000 images, images 0–30000 " +
        "of train-images-idx3-ubyte): pass --batch-size 30000 or less",
    );
    assert.equal(await exists(out), false, "a batch error left --out behind");
    await assert.rejects(
      () => metaTrainRun(config(out, { resume: true })),
      /--resume: no checkpoint meta-train\.bin in /,
    );
    assert.equal(await exists(out), false, "--resume left --out behind");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("meta-run: a non-finite θ stops the run at the iteration where it appears", async () => {
  const dir = await tempDir();
  try {
    const out = join(dir, "run");
    // η = ∞ makes θ NaN in the first window (keepProb 1: no reset replaces it); its losses
    // before the update stay finite, so only the carried state shows it.
    const options = { ...META_TRAIN_DEFAULTS, metaRollBack: 1, keepProb: 1, lr: Infinity };
    await withNoLeaks(() =>
      assert.rejects(
        () => metaTrainRun(config(out, { options, iterations: 3 })),
        Error,
        "iteration 0: params/layers/0/kernel is not finite after the update; stopped. " +
          "No checkpoint had been written.",
      )
    );
    assert.deepEqual([...(await snapshot(out)).keys()], ["meta_train.jsonl"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
