/**
 * `tasks/train.ts` as a subprocess: a batch larger than the meta-training split (the embedded
 * MNIST's 30 000 images, or a small CIFAR-10 folder) exits 2 at once naming the split, its size
 * and the batch size, and leaves no --out directory (it used to spin at 100 % CPU, silently).
 */
import { assert } from "./_util/deps.ts";
import { join } from "node:path";
import { writeCifar10 } from "./data_fixtures.ts";

const TRAIN = new URL("../tasks/train.ts", import.meta.url).pathname;

const run = async (...args: string[]) => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--frozen", TRAIN, "--backend", "cpu", ...args],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(120_000), // a run that spins fails the test instead of hanging it
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
};

const exists = async (path: string) => await Deno.stat(path).then(() => true, () => false);

Deno.test("train CLI: a batch larger than the meta-train split exits 2 naming it; no --out", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mlhf-train-cli-" });
  try {
    const out = join(dir, "run");
    const mnist = await run(
      "--batch-size",
      "40000",
      "--iterations",
      "1",
      "--meta-roll-back",
      "1",
      "--out",
      out,
    );
    assert.equal(mnist.code, 2, mnist.stderr);
    assert.match(
      mnist.stderr,
      /^error: --batch-size 40000 exceeds the meta-train split of mnist \(30000 images, images 0–30000 of train-images-idx3-ubyte\): pass --batch-size 30000 or less$/m,
    );
    assert.equal(await exists(out), false);
    // 20 images per CIFAR-10 file: 60 in the meta-train split (data_batch_1..3), batch 128.
    const data = join(dir, "cifar");
    await Deno.mkdir(data);
    await writeCifar10(data, 20);
    const cifar = await run(
      "--problem",
      "convnet-small",
      "--dataset",
      "cifar10",
      "--data-dir",
      data,
      "--out",
      out,
    );
    assert.equal(cifar.code, 2, cifar.stderr);
    assert.match(
      cifar.stderr,
      /^error: --batch-size 128 exceeds the meta-train split of cifar10 \(60 images, data_batch_1\.bin, data_batch_2\.bin, data_batch_3\.bin\): pass --batch-size 60 or less$/m,
    );
    assert.equal(await exists(out), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("train CLI: --epochs caps the run (it used to be accepted and ignored)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mlhf-train-cli-" });
  try {
    const out = join(dir, "run");
    // 30 000 images at batch 10 000: 3 batches an epoch, so one epoch holds one window of T = 2.
    const r = await run(
      ...["--batch-size", "10000", "--meta-roll-back", "2", "--mlp-hidden", "4"],
      ...["--iterations", "50", "--epochs", "1", "--out", out],
    );
    assert.equal(r.code, 0, r.stderr);
    const lines = (await Deno.readTextFile(join(out, "meta_train.jsonl"))).trim().split("\n");
    assert.equal(lines.length, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
