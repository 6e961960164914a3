/**
 * `tasks/eval.ts` as a subprocess: bad or contradictory flags and an unwritable --out exit 2 with
 * one line naming the flag; a short comparison on the embedded MNIST (cpu backend) exits 0, prints
 * the table and the report path and writes the report; rerunning into the same directory needs
 * --resume, which reuses the finished runs and names each setting that differs; a comparison with
 * a diverged run finishes the others, writes the report and exits 1.
 * Bad input found once the data is open (a batch larger than the training split), a preset's
 * meta-weights that are not shipped, and --resume into a missing folder stop at once, naming it.
 * MLHF on a convnet with the MLP's weights takes the default transfer and says so in one line.
 */
import { assert } from "./_util/deps.ts";
import { errorLine, runTask } from "./_util/cli.ts";
import { join } from "node:path";
import { writeMnistSplit } from "./data_fixtures.ts";

const run = (...args: string[]) => runTask("eval", args);

for (
  const [argv, message] of [
    [["--epochs", "x"], /^error: --epochs: invalid value "x"/],
    [["--compare", "adam,lion"], /^error: --compare: .*entry "lion": unknown optimizer "lion"/],
    [["--optimizer", "adam", "--cg-iter", "4"], /^error: --cg-iter/],
    [["--resume"], /^error: --resume/],
    [["--model", "vgg"], /^error: --model/],
    [["--warp-speed", "9"], /^error: --warp-speed: unknown flag/],
    [
      ["--lr", "-1"],
      /^error: --lr: invalid value "-1": expected a non-negative number, or preset \(/,
    ],
    [["--steps", "--out", "X"], /^error: --steps needs a value: .*got the flag --out$/],
    [["--steps", "0x10"], /^error: --steps: invalid value "0x10": .*no 0x, 0b or 0o\)$/],
    [["--steps", "1e3"], /^error: --steps: invalid value "1e3": .*no exponent or decimal point\)$/],
    [
      ["--optimizer", "sgd", "--compare", "adam"],
      /^error: --optimizer sgd contradicts --compare adam/,
    ],
    [
      ["--compare", "adam,sgd:beta1=0.5"],
      /^error: --compare: .*entry "sgd:beta1=0.5": sgd has no setting "beta1" \(sgd takes lr, weight-decay\)$/,
    ],
  ] as const
) {
  Deno.test(`eval CLI: ${argv.join(" ")} exits 2 with one line naming the flag`, async () => {
    const r = await run(...argv, "--backend", "cpu");
    assert.equal(r.code, 2, r.stderr);
    assert.match(errorLine(r.stderr), message);
    assert.match(r.stderr, /^\(run 'deno task eval --help' for usage\)$/m);
    assert.equal(r.stdout, "");
  });
}

Deno.test("eval CLI: an --out that cannot be written exits 2 naming --out, the path and why", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mlhf-eval-cli-" });
  try {
    const file = join(dir, "file");
    await Deno.writeTextFile(file, "");
    const out = join(file, "run");
    const r = await run("--backend", "cpu", "--optimizer", "adam", "--steps", "1", "--out", out);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(
      errorLine(r.stderr),
      `error: --out: cannot write to ${JSON.stringify(out)}: Not a directory (os error 20)`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("eval CLI: a comparison with a diverged run finishes the others, reports, exits 1", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mlhf-eval-cli-" });
  const out = join(dir, "cmp");
  try {
    const r = await run(
      ...["--backend", "cpu", "--compare", "adam,sgd:lr=1e38", "--steps", "3"],
      ...["--eval-examples", "100", "--out", out],
    );
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stdout, /^\| adam +\| .*\| +3 \| .*\| finished +\|$/m);
    assert.match(r.stdout, /^\| sgd +\| .*\| diverged at step \d +\|$/m);
    assert.match(
      errorLine(r.stderr),
      /^error: 1 of 2 runs diverged \(the report covers all of them\): sgd: step \d: /,
    );
    assert.match(await Deno.readTextFile(join(out, "report.md")), /\| diverged at step \d +\|/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("eval CLI: a 3-step comparison on MNIST writes the report; rerun needs --resume", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mlhf-eval-cli-" });
  const out = join(dir, "cmp");
  const args = [
    "--backend",
    "cpu",
    "--compare",
    "adam,hf-fixed:cg-iter=2",
    "--steps",
    "3",
    "--eval-examples",
    "200",
    "--out",
    out,
  ];
  try {
    const r = await run(...args);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^\| adam +\| lr=0\.001 .*\| +3 \|/m);
    assert.match(
      r.stdout,
      /^\| hf-fixed +\| lr=0\.01 cg-iter=2 damping=0\.005 weight-decay=0 +\| +3 \|/m,
    );
    assert.ok(r.stdout.includes(`report: ${join(out, "report.md")}`));
    const md = await Deno.readTextFile(join(out, "report.md"));
    assert.match(md, /Command: `deno task eval --backend cpu --compare adam,hf-fixed:cg-iter=2 /);
    assert.match(md, /Backend: cpu/);
    assert.ok((await Deno.stat(join(out, "report.svg"))).isFile);
    for (const f of ["log.jsonl", "steps.csv", "evals.csv", "checkpoint/train.bin"]) {
      assert.ok((await Deno.stat(join(out, "adam", f))).isFile, f);
    }
    const again = await run(...args);
    assert.equal(again.code, 2);
    assert.match(errorLine(again.stderr), /--out: .* already holds a run: pass --resume/);
    const resumed = await run(...args, "--resume");
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stderr, /adam: already finished at step 3/);
    const other = await run(...args, "--resume", "--seed", "2", "--lr", "0.5");
    assert.equal(other.code, 2, other.stderr);
    assert.equal(
      errorLine(other.stderr),
      `error: --resume: ${join(out, "adam", "checkpoint", "train.bin")} is from a run with ` +
        "other settings: seed: checkpoint 1, now 2; settings.lr: checkpoint 0.001, now 0.5",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const exists = async (path: string) => await Deno.stat(path).then(() => true, () => false);

Deno.test("eval CLI: a batch larger than the eval-train split exits 2 naming it; no --out", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mlhf-eval-cli-" });
  try {
    const r = await run(
      "--backend",
      "cpu",
      "--optimizer",
      "sgd",
      "--batch-size",
      "40000",
      "--steps",
      "5",
      "--out",
      join(dir, "a"),
    );
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      r.stderr,
      /^error: --batch-size 40000 exceeds the eval-train split of mnist \(30000 images, images 30000–60000 of train-images-idx3-ubyte\): pass --batch-size 30000 or less$/m,
    );
    assert.equal(await exists(join(dir, "a")), false);
    // An IDX set of 100 training images has an empty eval-train split (images 30000–60000).
    await writeMnistSplit(dir, "train", 100);
    await writeMnistSplit(dir, "test", 20);
    const small = await run(
      "--backend",
      "cpu",
      "--optimizer",
      "sgd",
      "--steps",
      "5",
      "--data-dir",
      dir,
      "--out",
      join(dir, "b"),
    );
    assert.equal(small.code, 2, small.stderr);
    assert.match(
      small.stderr,
      /^error: --batch-size 128 exceeds the eval-train split of mnist \(0 images, images 30000–60000 of train-images-idx3-ubyte\): the split is empty$/m,
    );
    assert.equal(await exists(join(dir, "b")), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("eval CLI: a preset's unshipped meta-weights: says so and gives the command that makes them", async () => {
  const r = await run("--backend", "cpu", "--preset", "cifar-b128", "--data-dir", "/data/cifar");
  assert.equal(r.code, 1, r.stderr);
  assert.match(
    r.stderr,
    /^error: weights\/mlhf-convnet\.mlhf: MLHF's meta-weights for preset cifar-b128 do not exist: they are not shipped with the repository\. Make them by meta-training, `deno task train --problem convnet --dataset cifar10 --data-dir \/data\/cifar --batch-size 64 --keep-prob 0\.3 --meta-roll-back 3 --out runs\/mt-convnet`, then copy runs\/mt-convnet\/meta-weights\.mlhf to weights\/mlhf-convnet\.mlhf; or pass --meta-weights FILE \(or untrained\), or leave mlhf out with --compare\.$/m,
  );
  const missing = await run("--backend", "cpu", "--compare", "mlhf", "--meta-weights", "/no.mlhf");
  assert.equal(missing.code, 1, missing.stderr);
  assert.match(missing.stderr, /^error: --meta-weights \/no\.mlhf: no such file$/m);
});

Deno.test("eval CLI: --resume into a missing --out exits 2 naming it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mlhf-eval-cli-" });
  try {
    const out = join(dir, "nonexistent");
    const r = await run("--backend", "cpu", "--optimizer", "sgd", "--resume", "--out", out);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`^error: --resume: --out ${out} does not exist`, "m"));
    assert.equal(await exists(out), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("eval CLI: MLHF on a convnet with the MLP's shipped weights and no --meta-kind-map: the default transfer, printed once", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mlhf-eval-cli-" });
  try {
    const r = await run(
      ...["--backend", "cpu", "--model", "convnet-small", "--compare", "mlhf", "--steps", "1"],
      ...["--eval-examples", "20", "--batch-size", "8", "--out", join(dir, "out")],
    );
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stderr.split("\n").filter((l) => l.includes("default transfer"));
    assert.deepEqual(lines, [
      "MLHF: the meta-weights have no networks for conv2d/kernel, conv2d/bias; default transfer: " +
      "conv2d/kernel←dense/kernel, conv2d/bias←dense/bias (--meta-kind-map overrides)",
    ]);
    assert.match(await Deno.readTextFile(join(dir, "out", "report.md")), /default transfer/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
