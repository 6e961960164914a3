/**
 * Meta-training on a task mix (tiny MLPs and a tiny convnet on the embedded MNIST's meta-train
 * split): a 2-window run writes meta-weights for every kind of the mix, conv kinds included, and
 * trains the networks of the kinds its tasks have; a run killed after 2 windows and resumed ends
 * with the same meta-weights and log as one that was not, the replayed trajectory (pooled before
 * the kill) continuing where it stopped; the feature norms travel in the checkpoint too.
 */
import { tf } from "../_deps.ts";
import { assert } from "../../tests/_util/deps.ts";
import { useTestBackend } from "../../tests/_util/backend.ts";
import { assertAllClose } from "../../tests/_util/numeric.ts";
import { join } from "node:path";
import { foldIn, keyFromSeed } from "../prng.ts";
import { META_TRAIN_DEFAULTS } from "../meta/meta_train.ts";
import { loadMetaWeights } from "../meta/meta_weights_file.ts";
import { parseTaskMix } from "../meta/task_mix.ts";
import { initMetaWeights, metaWeightTensors } from "../optim/mlhf/meta_weights.ts";
import { type TaskDiagnostics, type TaskRunConfig, taskTrainRun } from "./task_run.ts";
import { tempDir } from "./_testing.ts";

await useTestBackend();

const config = (out: string, extra: Partial<TaskRunConfig> = {}): TaskRunConfig => ({
  mix: parseTaskMix("mlp-4-relu,mlp-3x3-sigmoid,convnet-2x2-4x4"),
  augmentation: {
    scaleRange: [1e-2, 1e2],
    permuteLabels: 0.5,
    permutePixels: 0.5,
    batchSizes: [8, 12],
  },
  replayPool: 4,
  replayProb: 1,
  dataset: "mnist",
  shuffleBuffer: 100,
  iterations: 2,
  seed: 1,
  out,
  checkpointEvery: 1,
  resume: false,
  options: { ...META_TRAIN_DEFAULTS, metaRollBack: 2, keepProb: 0 },
  command: "test",
  quiet: true,
  ...extra,
});

const readLog = async (path: string): Promise<Record<string, unknown>[]> =>
  (await Deno.readTextFile(path)).trim().split("\n").map((l) => {
    const { wallSeconds: _w, windowBytes: _b, ...rest } = JSON.parse(l);
    return rest;
  });

Deno.test("task run: 2 windows write meta-weights for every kind of the mix and train the conv kinds", async () => {
  const dir = await tempDir();
  try {
    const out = join(dir, "run");
    const seen: TaskDiagnostics[] = [];
    // Seed 2 draws the convnet first, then an MLP.
    const r = await taskTrainRun(config(out, { seed: 2, onIteration: (d) => seen.push(d) }));
    assert.equal(r.iterations, 2);
    assert.deepEqual(seen.map((d) => d.family), ["convnet-2x2-4x4", "mlp-4-relu"]);
    assert.deepEqual(seen.map((d) => d.next), ["new", "replay"]);
    const file = await loadMetaWeights(r.weightsPath);
    const init = initMetaWeights(foldIn(keyFromSeed(2), 2), META_TRAIN_DEFAULTS, [
      "conv2d/kernel",
      "conv2d/bias",
      "dense/kernel",
      "dense/bias",
    ]);
    try {
      assert.deepEqual(file.header.kinds, [
        "conv2d/kernel",
        "conv2d/bias",
        "dense/kernel",
        "dense/bias",
      ]);
      assert.deepEqual(file.header.training?.tasks, [
        "mlp-4-relu",
        "mlp-3x3-sigmoid",
        "convnet-2x2-4x4",
      ]);
      // Both windows trained: every kind's networks moved from their initialization.
      for (const kind of ["conv2d/kernel", "conv2d/bias", "dense/kernel", "dense/bias"] as const) {
        for (const role of ["lambda", "precond"] as const) {
          const a = file.weights[kind]![role]!.layers[0].kernel.dataSync();
          const b = init[kind]![role]!.layers[0].kernel.dataSync();
          assert(a.some((v, i) => v !== b[i]), `${kind} ${role}: not trained`);
        }
      }
    } finally {
      tf.dispose([...metaWeightTensors(file.weights), ...metaWeightTensors(init)]);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("task run: killed after 2 windows and resumed, it ends as an uninterrupted run (replay included)", async () => {
  const dir = await tempDir();
  try {
    const options = {
      ...META_TRAIN_DEFAULTS,
      metaRollBack: 2,
      keepProb: 0,
      featureNorm: "rms" as const,
    };
    const a = join(dir, "a"), b = join(dir, "b");
    const memory = tf.memory().numTensors;
    await taskTrainRun(config(a, { iterations: 4, options }));
    await taskTrainRun(config(b, { iterations: 4, options, stopAfter: 2 }));
    assert.equal((await readLog(join(b, "meta_train.jsonl"))).length, 2);
    await taskTrainRun(config(b, { iterations: 4, options, resume: true }));
    assert.equal(tf.memory().numTensors, memory, "the runs leaked tensors");
    const logA = await readLog(join(a, "meta_train.jsonl"));
    const logB = await readLog(join(b, "meta_train.jsonl"));
    assert.deepEqual(logB, logA);
    // Window 2 (after the resume) replays task 0, pooled before the kill, from its 2T-th step.
    assert.deepEqual(
      logA.map((d) => [d.task, d.trajectorySteps, d.next]),
      [[0, 2, "new"], [1, 2, "replay"], [0, 4, "replay"], [1, 4, "replay"]],
    );
    const [fa, fb] = await Promise.all(
      [a, b].map((d) => loadMetaWeights(join(d, "meta-weights.mlhf"))),
    );
    try {
      assertAllClose(metaWeightTensors(fb.weights), metaWeightTensors(fa.weights), {
        rtol: 0,
        atol: 0,
      });
      assert.equal(fa.header.options.featureNorm, "rms");
    } finally {
      tf.dispose([...metaWeightTensors(fa.weights), ...metaWeightTensors(fb.weights)]);
    }
    // Other settings are refused by name.
    await assert.rejects(
      () => taskTrainRun(config(b, { iterations: 5, options, resume: true, replayProb: 0.5 })),
      Error,
      "replayProb",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("task run: a trajectory that stops being finite is dropped and logged; the run goes on", async () => {
  const dir = await tempDir();
  try {
    const out = join(dir, "run");
    // s = 1e30 on every tensor: the curvature S·G·S overflows, φ's trajectory stops being finite
    // in every window; the meta-gradient is then not finite and is skipped, so the meta-weights
    // stay finite and only the trajectories are dropped.
    const augmentation = {
      scaleRange: [1e30, 1e30] as const,
      permuteLabels: 0,
      permutePixels: 0,
      batchSizes: [8],
    };
    const options = { ...META_TRAIN_DEFAULTS, metaRollBack: 1, keepProb: 1 };
    const memory = tf.memory().numTensors;
    const r = await taskTrainRun(config(out, { options, augmentation, iterations: 2 }));
    assert.equal(tf.memory().numTensors, memory, "the run leaked tensors");
    assert.equal(r.iterations, 2);
    const log = await readLog(r.logPath);
    assert.deepEqual(log.map((d) => [d.task, d.next, d.skipped]), [[0, "new", true], [
      1,
      "new",
      true,
    ]]);
    for (const d of log) {
      assert.match(String(d.diverged), /^(params\/|inner state )/);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
