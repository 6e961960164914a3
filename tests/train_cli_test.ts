/**
 * `tasks/train.ts` as a subprocess: contradictory flags, an unwritable --out and a resume under
 * other settings exit 2 with one line naming the flag (and each differing setting with both
 * values); --epochs caps the run. A batch larger than the meta-training split (the embedded MNIST's
 * 30 000 images, or a small CIFAR-10 folder) exits 2 at once naming the split, its size and the
 * batch size, and leaves no --out directory (it used to spin at 100 % CPU, silently). A bad
 * --meta-loss is named; the chosen one is in the weights file's header and a resume may not change it.
 */
import { assert } from "./_util/deps.ts";
import { errorLine, runTask } from "./_util/cli.ts";
import { join } from "node:path";
import { writeCifar10 } from "./data_fixtures.ts";
import { loadMetaWeights } from "../lib/meta/meta_weights_file.ts";

const TINY = ["--backend", "cpu", "--mlp-hidden", "2", "--meta-roll-back", "1"];

const run = (...args: string[]) => runTask("train", args);

const inTempDir = async (f: (dir: string) => Promise<void>) => {
  const dir = await Deno.makeTempDir({ prefix: "mlhf-train-cli-" });
  try {
    await f(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
};

Deno.test("train CLI: --mlp-hidden with another --problem exits 2 naming both", async () => {
  const r = await run("--backend", "cpu", "--problem", "convnet", "--mlp-hidden", "8");
  assert.equal(r.code, 2, r.stderr);
  assert.equal(
    errorLine(r.stderr),
    "error: --mlp-hidden contradicts --problem convnet: the hidden width is the MLP's only",
  );
});

Deno.test("train CLI: --tasks flags contradict --problem, need --tasks, and name a bad entry", async () => {
  const cases: [string[], string][] = [
    [
      ["--tasks", "default", "--batch-size", "64"],
      "error: --batch-size contradicts --tasks: each task of the mix sets its own model and batch size",
    ],
    [
      ["--replay-pool", "3"],
      "error: --replay-pool needs --tasks (it sets how the task mix is drawn)",
    ],
    [
      ["--tasks", "mlp-20-gelu"],
      "error: --tasks: 'mlp-20-gelu' is not a task family: expected mlp-<widths>-<relu|sigmoid|tanh> " +
      "(e.g. mlp-64x32-relu), convnet-<f1>x<f2>-<u1>x<u2> (e.g. convnet-8x16-32x16) or default",
    ],
    [
      ["--tasks", "default", "--reparam-scale", "10:1"],
      "error: --reparam-scale: expected lo:hi with 0 < lo ≤ hi (e.g. 0.001:1000), got '10:1'",
    ],
  ];
  for (const [args, line] of cases) {
    const r = await run("--backend", "cpu", ...args);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(errorLine(r.stderr), line);
  }
});

Deno.test("train CLI: --epochs takes an integer", async () => {
  const r = await run("--backend", "cpu", "--epochs", "1.5");
  assert.equal(r.code, 2, r.stderr);
  assert.equal(
    errorLine(r.stderr),
    'error: --epochs: invalid value "1.5": expected a non-negative integer',
  );
});

Deno.test("train CLI: --meta-loss names a bad value, is recorded in the weights and fixed on --resume", async () => {
  const bad = await run("--backend", "cpu", "--meta-loss", "log");
  assert.equal(bad.code, 2, bad.stderr);
  assert.equal(
    errorLine(bad.stderr),
    'error: --meta-loss: invalid value "log": expected a raw | relative',
  );
  await inTempDir(async (dir) => {
    const out = join(dir, "run");
    const args = [...TINY, "--batch-size", "16", "--iterations", "1", "--out", out];
    const first = await run(...args, "--meta-loss", "relative");
    assert.equal(first.code, 0, first.stderr);
    const file = await loadMetaWeights(join(out, "meta-weights.mlhf"));
    assert.equal(file.header.training?.metaLoss, "relative");
    const r = await run(...args, "--resume");
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      errorLine(r.stderr),
      /other settings: options\.metaLoss: checkpoint "relative", now \(absent\)$/,
    );
  });
});

Deno.test("train CLI: an --out that cannot be written exits 2 naming --out, the path and why", async () => {
  await inTempDir(async (dir) => {
    const file = join(dir, "file");
    await Deno.writeTextFile(file, "");
    const out = join(file, "run");
    const r = await run(...TINY, "--iterations", "1", "--out", out);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(
      errorLine(r.stderr),
      `error: --out: cannot write to ${JSON.stringify(out)}: Not a directory (os error 20)`,
    );
  });
});

Deno.test("train CLI: --resume under other settings exits 2 naming each differing field", async () => {
  await inTempDir(async (dir) => {
    const out = join(dir, "run");
    const args = [...TINY, "--batch-size", "16", "--iterations", "1", "--out", out];
    const first = await run(...args, "--seed", "3");
    assert.equal(first.code, 0, first.stderr);
    const r = await run(...args, "--seed", "4", "--lr", "0.5", "--resume");
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      errorLine(r.stderr),
      new RegExp(
        `^error: --resume: the checkpoint in ${out} was made with other settings: ` +
          "seed: checkpoint 3, now 4; options\\.lr: checkpoint [\\d.e-]+, now 0\\.5$",
      ),
    );
  });
});

Deno.test("train CLI: --epochs 1 ends the run after one pass over the meta-training split", async () => {
  await inTempDir(async (dir) => {
    // 30 000 meta-training images in batches of 15 000, one per window: 2 windows per epoch.
    const r = await run(
      ...["--backend", "wasm", "--mlp-hidden", "2", "--meta-roll-back", "1"],
      ...["--batch-size", "15000", "--iterations", "3", "--epochs", "1", "--out", join(dir, "run")],
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^meta-trained 2 iterations in /m);
  });
});

const exists = async (path: string) => await Deno.stat(path).then(() => true, () => false);

Deno.test("train CLI: a batch larger than the meta-train split exits 2 naming it; no --out", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mlhf-train-cli-" });
  try {
    const out = join(dir, "run");
    const mnist = await run(
      "--backend",
      "cpu",
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
      "--backend",
      "cpu",
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
