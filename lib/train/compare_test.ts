/**
 * A comparison of two tiny runs writes a report whose table has a row per run and whose plot has
 * every series in each of its four panels, with labelled axes and the weight-decay convention
 * stated; a divergent run is reported, not fatal; an existing run directory is not overwritten.
 */
import { assert } from "../../tests/_util/deps.ts";
import { useTestBackend } from "../../tests/_util/backend.ts";
import { withNoLeaks } from "../../tests/_util/numeric.ts";
import { compareOptimizers, type CompareOptions } from "./compare.ts";
import { labelSpecs } from "./optimizers.ts";
import { binSteps, runStats } from "./report.ts";
import { tempDir, tinyProblem } from "./_testing.ts";
import { exists } from "../run/files.ts";
import { checkpointDir } from "./checkpoint.ts";
import { readRunOutcome } from "./outcome.ts";
import { FlagError } from "../cli/flags.ts";
import { TooFewExamplesError } from "../data/errors.ts";

await useTestBackend();

const compareIn = (out: string, extra: Partial<CompareOptions> = {}): CompareOptions => ({
  out,
  problem: tinyProblem(),
  optimizers: labelSpecs([
    { name: "adam", settings: { lr: 0.02 } },
    { name: "hf-fixed", settings: { lr: 1, damping: 0.1, "cg-iter": 3 } },
  ]),
  seed: 3,
  batchSize: 16,
  epochs: 1,
  steps: 5,
  shuffleBuffer: 96,
  evalEvery: 2,
  command: "deno task eval --test",
  backend: "cpu (test)",
  notes: ["a test note"],
  progressSink: null,
  log: () => {},
  ...extra,
});

Deno.test("compare: report.md has the table, setup and convention; report.svg every series", async () => {
  const out = await tempDir();
  try {
    const r = await withNoLeaks(() => compareOptimizers(compareIn(out)));
    const md = await Deno.readTextFile(r.reportPath);
    const header = md.split("\n").find((l) => l.startsWith("| optimizer"));
    assert.ok(header, "no table header");
    for (
      const col of ["final train loss", "best train loss", "final test acc", "best test acc"]
    ) assert.ok(header.includes(col), col);
    assert.match(header, /median time\/step/);
    const rows = md.split("\n").filter((l) => /^\| (adam|hf-fixed) /.test(l));
    assert.equal(rows.length, 2);
    assert.match(rows[0], /^\| adam +\| lr=0\.02 .*weight-decay=0\.0002 +\| +5 \|/);
    assert.match(rows[1], /^\| hf-fixed +\| lr=1 cg-iter=3 damping=0\.1 weight-decay=0 +\| +5 \|/);
    assert.match(rows[0], /finished +\|$/);
    assert.match(
      md,
      /CE \+ 0\.0002·Σ½‖w‖² over all variables; MLHF, HF\(fixed\) and HF\(LM\) minimize the cross-entropy only/,
    );
    assert.match(md, /Command: `deno task eval --test`/);
    assert.match(md, /Backend: cpu \(test\)/);
    assert.match(md, /Seed 3: every run starts from the same initialization/);
    assert.match(md, /Note: a test note/);

    const svg = await Deno.readTextFile(r.plotPath);
    for (const name of ["adam", "hf-fixed"]) {
      assert.equal(svg.split(`data-series="${name}"`).length - 1, 4, `${name}: 4 panels`);
    }
    for (
      const label of ["step", "training time (s)", "training loss (CE)", "test accuracy"]
    ) assert.ok(svg.includes(`>${label}`), `axis label ${label}`);
    for (const t of ["Training loss vs steps", "Test accuracy vs time"]) assert.ok(svg.includes(t));

    // Same seed: both runs start from the same initialization (same step-0 evaluation).
    const [a, h] = r.runs;
    assert.equal(a.evals[0].step, 0);
    assert.equal(a.evals[0].test_loss, h.evals[0].test_loss);
    assert.deepEqual(a.evals.map((e) => e.step), [0, 2, 4, 5]);
    assert.ok(r.table.includes("| adam"));
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("compare: a diverging run is reported and the others still run; no overwrite", async () => {
  const out = await tempDir();
  try {
    const opts = compareIn(out, {
      optimizers: labelSpecs([
        { name: "sgd", settings: { lr: 0.5 } },
        { name: "adam", settings: { lr: 0.02 } },
      ]),
      problem: tinyProblem({ nanAt: 40 }),
      shuffleBuffer: 1,
      checkpointEvery: 2,
    });
    const r = await compareOptimizers(opts);
    assert.equal(r.diverged.length, 2);
    assert.deepEqual(r.runs.map((x) => x.status), ["diverged at step 3", "diverged at step 3"]);
    const md = await Deno.readTextFile(r.reportPath);
    assert.match(md, /\| diverged at step 3 +\|/);
    await assert.rejects(() => compareOptimizers(opts), /already holds a run: pass --resume/);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("compare: the report covers every run in the folder, also an earlier command's", async () => {
  const out = await tempDir();
  try {
    const adam = labelSpecs([{ name: "adam", settings: { lr: 0.02 } }]);
    await compareOptimizers(compareIn(out, { optimizers: adam }));
    const sgd = labelSpecs([{ name: "sgd", settings: { lr: 0.5 } }]);
    const r = await withNoLeaks(() => compareOptimizers(compareIn(out, { optimizers: sgd })));
    assert.deepEqual(r.runs.map((x) => [x.label, x.status, x.steps.length]), [
      ["sgd", "finished", 5],
      ["adam", "finished", 5],
    ]);
    const md = await Deno.readTextFile(r.reportPath);
    assert.match(md, /^\| sgd +\| lr=0\.5 .*\| +5 \|.*finished +\|$/m);
    assert.match(md, /^\| adam +\| lr=0\.02 .*\| +5 \|.*finished +\|$/m);
    assert.match(md, /Also in this folder from earlier commands .*: adam\./);
    assert.equal((await Deno.readTextFile(r.plotPath)).split(`data-series="adam"`).length - 1, 4);
    // A run of another comparison (other batch size) in the folder is refused before anything runs.
    const rms = labelSpecs([{ name: "rmsprop", settings: { lr: 0.01 } }]);
    await assert.rejects(
      () => compareOptimizers(compareIn(out, { optimizers: rms, batchSize: 8 })),
      Error,
      `${out}/adam holds a run of another comparison (batchSize: 16 there, 8 now); the report of ` +
        `${out} covers all its runs, so choose another --out`,
    );
    assert.equal(await exists(`${out}/rmsprop`), false);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("compare: an ended run is reused from its outcome and logs once its checkpoint is gone", async () => {
  const out = await tempDir();
  try {
    const first = await compareOptimizers(compareIn(out));
    const outcome = await readRunOutcome(`${out}/adam`);
    assert.equal(outcome?.status, "finished");
    assert.equal(outcome?.step, 5);
    assert.equal(outcome?.identity.optimizer, "adam");
    assert.deepEqual(outcome?.identity.settings, first.runs[0].settings);
    const logsBefore = await Deno.readTextFile(`${out}/adam/log.jsonl`);
    for (const label of ["adam", "hf-fixed"]) {
      await Deno.remove(checkpointDir(`${out}/${label}`), { recursive: true });
    }
    // Without --resume the folder is still refused; with it, nothing trains again.
    await assert.rejects(() => compareOptimizers(compareIn(out)), /already holds a run/);
    const lines: string[] = [];
    const again = await withNoLeaks(() =>
      compareOptimizers(compareIn(out, { resume: true, log: (l) => lines.push(l) }))
    );
    assert.deepEqual(again.runs.map((r) => [r.label, r.status, r.steps.length]), [
      ["adam", "finished", 5],
      ["hf-fixed", "finished", 5],
    ]);
    assert.deepEqual(again.runs[0].steps, first.runs[0].steps);
    assert.deepEqual(lines, [
      "adam: already finished at step 5; reusing its logs",
      "hf-fixed: already finished at step 5; reusing its logs",
    ]);
    assert.equal(await Deno.readTextFile(`${out}/adam/log.jsonl`), logsBefore);
    assert.equal(await exists(checkpointDir(`${out}/adam`)), false);
    // A longer cap trains the run again (its checkpoint is gone, so from the start; one epoch of
    // 96 examples in batches of 16 is 6 steps).
    const adam = labelSpecs([{ name: "adam", settings: { lr: 0.02 } }]);
    const longer = await compareOptimizers(
      compareIn(out, { optimizers: adam, steps: 6, resume: true }),
    );
    assert.equal(longer.runs[0].steps.length, 6);
    const losses = (r: { steps: readonly { loss: number }[] }) => r.steps.map((x) => x.loss);
    assert.deepEqual(losses(longer.runs[0]).slice(0, 5), losses(first.runs[0]));
    assert.equal((await readRunOutcome(`${out}/adam`))?.step, 6);
    // An outcome of other settings is refused, naming the field.
    const other = labelSpecs([{ name: "adam", settings: { lr: 0.03 } }]);
    await assert.rejects(
      () => compareOptimizers(compareIn(out, { optimizers: other, resume: true })),
      FlagError,
      `--resume: ${out}/adam/outcome.json is from a run with other settings: settings.lr: ` +
        "recorded 0.02, now 0.03",
    );
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("compare: a diverged run is not trained again on resume; its message is kept", async () => {
  const out = await tempDir();
  try {
    const opts = compareIn(out, {
      optimizers: labelSpecs([{ name: "sgd", settings: { lr: 0.5 } }]),
      problem: tinyProblem({ nanAt: 40 }),
      shuffleBuffer: 1,
      checkpointEvery: 2,
    });
    const first = await compareOptimizers(opts);
    assert.equal(first.diverged.length, 1);
    const outcome = await readRunOutcome(`${out}/sgd`);
    assert.equal(outcome?.status, "diverged");
    assert.equal(outcome?.step, 3);
    assert.equal(outcome?.message, first.diverged[0].message);
    await Deno.remove(checkpointDir(`${out}/sgd`), { recursive: true });
    const lines: string[] = [];
    const again = await compareOptimizers({ ...opts, resume: true, log: (l) => lines.push(l) });
    assert.deepEqual(lines, ["sgd: diverged at step 3 before; reusing its logs"]);
    assert.deepEqual(again.runs.map((r) => r.status), ["diverged at step 3"]);
    assert.equal(again.diverged[0].message, first.diverged[0].message);
    assert.deepEqual(again.runs[0].steps, first.runs[0].steps);
    assert.equal(await exists(checkpointDir(`${out}/sgd`)), false);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("compare: an earlier command's diverged run is reported diverged, checkpoint or not", async () => {
  const out = await tempDir();
  try {
    const base = { problem: tinyProblem({ nanAt: 40 }), shuffleBuffer: 1, checkpointEvery: 2 };
    const sgd = labelSpecs([{ name: "sgd", settings: { lr: 0.5 } }]);
    await compareOptimizers(compareIn(out, { ...base, optimizers: sgd }));
    // Its checkpoint from before the divergence is still there: the outcome says how it ended.
    assert.equal(await exists(checkpointDir(`${out}/sgd`)), true);
    const adam = compareIn(out, {
      ...base,
      optimizers: labelSpecs([{ name: "adam", settings: { lr: 0.02 } }]),
    });
    const r = await compareOptimizers(adam);
    assert.equal(r.runs.find((x) => x.label === "sgd")?.status, "diverged at step 3");
    await Deno.remove(checkpointDir(`${out}/sgd`), { recursive: true });
    const again = await compareOptimizers({ ...adam, resume: true });
    assert.equal(again.runs.find((x) => x.label === "sgd")?.status, "diverged at step 3");
    assert.match(
      await Deno.readTextFile(again.reportPath),
      /^\| sgd .*\| diverged at step 3 +\|$/m,
    );
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("compare: --resume into a missing folder is an error naming --out", async () => {
  const out = await tempDir();
  try {
    await assert.rejects(
      () => compareOptimizers(compareIn(`${out}/none`, { resume: true })),
      FlagError,
      `--resume: --out ${out}/none does not exist (no runs to resume there)`,
    );
    assert.equal(await exists(`${out}/none`), false);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("compare: a batch larger than the training split stops before any run, naming it", async () => {
  const out = await tempDir();
  try {
    const split = { dataset: "mnist" as const, split: "eval-train" };
    const message = "--batch-size 128 exceeds the eval-train split of mnist (96 images, images " +
      "30000–60000 of train-images-idx3-ubyte): pass --batch-size 96 or less";
    // Counted up front: nothing is created.
    await assert.rejects(
      () =>
        compareOptimizers(compareIn(`${out}/a`, {
          batchSize: 128,
          problem: { ...tinyProblem(), trainSplit: split },
        })),
      FlagError,
      message,
    );
    assert.equal(await exists(`${out}/a`), false);
    // Not counted (ImageNet): the stream finds it; a source without a split names the source.
    await withNoLeaks(() =>
      assert.rejects(
        () =>
          compareOptimizers(compareIn(`${out}/b`, {
            batchSize: 128,
            problem: { ...tinyProblem(), examplesPerEpoch: undefined, trainSplit: split },
          })),
        FlagError,
        message,
      )
    );
    await assert.rejects(
      () => compareOptimizers(compareIn(`${out}/c`, { batchSize: 128 })),
      TooFewExamplesError,
      "train-96-1: 96 example(s) per epoch, fewer than one batch of 128: no batch can be made",
    );
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("report: statistics and step binning", () => {
  const steps = Array.from({ length: 10 }, (_, i) => ({
    step: i + 1,
    epoch: 0,
    loss: 10 - i,
    accuracy: 0.5,
    lr: 1,
    step_ms: i === 9 ? 100 : 2,
    time_s: (i + 1) / 10,
  }));
  const ev = (step: number, train: number | null, acc: number) => ({
    step,
    epoch: 0,
    epoch_end: false,
    train_loss: train,
    train_accuracy: train === null ? null : 0.5,
    test_loss: 1,
    test_accuracy: acc,
    test_examples: 10,
    time_s: step / 10,
    eval_ms: 1,
  });
  const s = runStats({
    label: "x",
    settings: {},
    status: "finished",
    steps,
    evals: [ev(0, null, 0.1), ev(5, 2, 0.9), ev(10, 3, 0.8)],
  });
  assert.deepEqual(
    [s.steps, s.finalTrainLoss, s.bestTrainLoss, s.finalTestAccuracy, s.bestTestAccuracy],
    [10, 3, 2, 0.8, 0.9],
  );
  assert.equal(s.medianStepMs, 2);
  assert.equal(s.trainTimeS, 1);
  const bins = binSteps(steps, 4);
  assert.deepEqual(bins.map((b) => b.step), [3, 6, 9, 10]);
  assert.deepEqual(bins.map((b) => b.loss), [9, 6, 3, 1]);
});
