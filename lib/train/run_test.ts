/**
 * Training runs: a run killed and resumed ends bit-identical to a straight run (parameters and
 * logged losses, across an epoch boundary, for stateful optimizers); the step loop keeps the
 * tensor count flat for every optimizer; a NaN batch or a NaN-producing learning rate stops the run
 * naming the step, with the last good checkpoint intact.
 */
import { assert } from "../../tests/_util/deps.ts";
import { useTestBackend } from "../../tests/_util/backend.ts";
import { withNoLeaks } from "../../tests/_util/numeric.ts";
import { tf } from "../_deps.ts";
import { disposeTensorsIn, loadCheckpoint } from "../run/checkpoint.ts";
import type { TreeValue } from "../run/tensor_file.ts";
import { leaves, mapTree, type Params } from "../tree.ts";
import { metaWeightTensors } from "../optim/mlhf/meta_weights.ts";
import { chain } from "../optim/base.ts";
import { scaleByLearningRate } from "../optim/transforms.ts";
import { CHECKPOINT_NAME, checkpointDir } from "./checkpoint.ts";
import { readRunLogs } from "./logs.ts";
import {
  buildOptimizer,
  type MetaWeightsSource,
  OPTIMIZER_NAMES,
  type OptimizerName,
  type Settings,
} from "./optimizers.ts";
import { resolveMetaWeights } from "./problem.ts";
import { DivergedError, type RunOptions, trainRun } from "./run.ts";
import { tempDir, tinyProblem, tinyResNet } from "./_testing.ts";

await useTestBackend();

const meta = (await resolveMetaWeights("untrained", { seed: 3, required: true }))!;

/** Small, stable settings for the tiny problem. */
const SETTINGS: Record<OptimizerName, Settings> = {
  sgd: { lr: 0.5 },
  momentum: { lr: 0.1 },
  adam: { lr: 0.02 },
  rmsprop: { lr: 0.01 },
  "hf-fixed": { lr: 1, damping: 0.1, "cg-iter": 3 },
  "hf-lm": { lr: 1, damping: 1, "cg-iter": 3 },
  kfac: { lr: 0.1, "invert-every": 2 },
  mlhf: { lr: 1, "cg-iter": 2 },
};

const options = (
  dir: string,
  name: OptimizerName,
  extra: Partial<RunOptions> = {},
  problem = tinyProblem(),
  m: MetaWeightsSource = meta,
): RunOptions => ({
  label: name,
  dir,
  model: problem.model,
  train: problem.train,
  test: problem.test,
  optimizer: ({ kinds }) =>
    buildOptimizer({ name, settings: SETTINGS[name] }, {
      kinds,
      weightDecay: problem.weightDecay,
      meta: m,
      seed: 1,
    }),
  seed: 7,
  batchSize: 16,
  epochs: 3,
  steps: 10,
  shuffleBuffer: 50,
  checkpointEvery: 4,
  evalEvery: 5,
  identity: { name, settings: SETTINGS[name] },
  examplesPerEpoch: 96,
  progressSink: null,
  ...extra,
});

/** Parameters and batch-norm statistics of a run's checkpoint as arrays (tensors disposed). */
const checkpointed = async (
  dir: string,
): Promise<{ step: number | null; params: number[][]; batchNorm: number[][] }> => {
  const ck = await loadCheckpoint(checkpointDir(dir), CHECKPOINT_NAME);
  assert.ok(ck, `no checkpoint in ${dir}`);
  const p = ck.payload as Record<string, TreeValue>;
  const arrays = (t: TreeValue) =>
    leaves(t as unknown as Params).map((x) => Array.from(x.dataSync()));
  const out = { step: ck.step, params: arrays(p.params), batchNorm: arrays(p.batchNorm) };
  disposeTensorsIn(ck.payload);
  return out;
};

const withModel = (model: "mlp" | "resnet") =>
  model === "mlp" ? tinyProblem() : { ...tinyProblem(), model: tinyResNet() };

const RESUMED = [["adam", "mlp"], ["hf-lm", "mlp"], ["mlhf", "mlp"], [
  "momentum",
  "resnet",
]] as const;
for (const [name, model] of RESUMED) {
  Deno.test(`run ${name} (${model}): killed at step 7, resumed from step 4 = straight run, bit for bit`, async () => {
    const straight = await tempDir(), killed = await tempDir();
    const opts = (dir: string, extra: Partial<RunOptions> = {}) =>
      options(dir, name, extra, withModel(model));
    try {
      await withNoLeaks(async () => {
        const a = await trainRun(opts(straight));
        assert.equal(a.status, "finished");
        const b = await trainRun(opts(killed, { afterStep: (s) => s === 7 }));
        assert.equal(b.status, "stopped");
        assert.equal(b.checkpointStep, 4);
        const c = await trainRun(opts(killed, { resume: true }));
        assert.equal(c.status, "finished");
        assert.equal(c.steps, 10);
      });
      const [p1, p2] = [await checkpointed(straight), await checkpointed(killed)];
      assert.equal(p1.step, 10);
      assert.equal(p2.step, 10);
      assert.deepEqual(p2.params, p1.params, "final parameters differ");
      assert.deepEqual(p2.batchNorm, p1.batchNorm, "batch-norm statistics differ");
      if (model === "resnet") {
        assert.ok(p1.batchNorm.flat().some((v) => v !== 0 && v !== 1), "moving stats never moved");
      }
      const [l1, l2] = [await readRunLogs(straight), await readRunLogs(killed)];
      assert.deepEqual(l2.steps.map((s) => s.step), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      assert.deepEqual(l2.steps.map((s) => s.loss), l1.steps.map((s) => s.loss));
      // Evaluations at 0, 5, the epoch end at 6, and the end at 10, each logged once.
      assert.deepEqual(l2.evals.map((e) => e.step), [0, 5, 6, 10]);
      assert.deepEqual(l2.evals.map((e) => e.epoch_end), [false, false, true, false]);
      assert.deepEqual(l2.evals.map((e) => e.test_loss), l1.evals.map((e) => e.test_loss));
      assert.deepEqual(l2.evals.map((e) => e.train_loss), l1.evals.map((e) => e.train_loss));
    } finally {
      await Deno.remove(straight, { recursive: true });
      await Deno.remove(killed, { recursive: true });
    }
  });
}

Deno.test("run mlhf with safeguard lm+trust: its decisions are logged each step (steps.csv too); killed and resumed = straight run", async () => {
  const straight = await tempDir(), killed = await tempDir();
  const settings: Settings = { ...SETTINGS.mlhf, safeguard: "lm+trust" };
  const opts = (dir: string, extra: Partial<RunOptions> = {}) => {
    const problem = tinyProblem();
    return options(dir, "mlhf", {
      optimizer: ({ kinds }) =>
        buildOptimizer({ name: "mlhf", settings }, {
          kinds,
          weightDecay: problem.weightDecay,
          meta,
        }),
      identity: { name: "mlhf", settings },
      ...extra,
    }, problem);
  };
  try {
    await withNoLeaks(async () => {
      await trainRun(opts(straight));
      await trainRun(opts(killed, { afterStep: (s) => s === 7 }));
      await trainRun(opts(killed, { resume: true }));
    });
    const [l1, l2] = [await readRunLogs(straight), await readRunLogs(killed)];
    const columns = ["rejected", "mu", "rho", "trust_scale"];
    for (const s of l1.steps) {
      const r = s as unknown as Record<string, number>;
      for (const k of columns) assert.ok(Number.isFinite(r[k]), `step ${s.step}: ${k} = ${r[k]}`);
      assert.ok(r.rejected === 0 || r.rejected === 1);
      assert.ok(r.mu >= 1 && r.trust_scale > 0 && r.trust_scale <= 1);
    }
    assert.deepEqual(
      l2.steps,
      l1.steps.map((s, i) => ({ ...s, step_ms: l2.steps[i].step_ms, time_s: l2.steps[i].time_s })),
    );
    const header = (await Deno.readTextFile(`${straight}/steps.csv`)).split("\n")[0];
    for (const k of columns) {
      assert.ok(header.split(",").includes(k), `steps.csv header: ${header}`);
    }
    const [p1, p2] = [await checkpointed(straight), await checkpointed(killed)];
    assert.deepEqual(p2.params, p1.params, "final parameters differ");
  } finally {
    await Deno.remove(straight, { recursive: true });
    await Deno.remove(killed, { recursive: true });
  }
});

Deno.test("run: a resumed finished run is reused; a checkpoint of other settings is refused", async () => {
  const dir = await tempDir();
  try {
    await trainRun(options(dir, "sgd", { steps: 3 }));
    const again = await trainRun(options(dir, "sgd", { steps: 3, resume: true }));
    assert.equal(again.reused, true);
    await assert.rejects(
      () => trainRun(options(dir, "sgd", { resume: true, identity: { name: "sgd", lr: 9 } })),
      new RegExp(
        "^FlagError: --resume: .* is from a run with other settings: " +
          'settings: checkpoint \\{"lr":0\\.5\\}, now \\(absent\\); lr: checkpoint \\(absent\\), now 9$',
      ),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("run: the tensor count stays flat over the steps for every optimizer", async () => {
  const dir = await tempDir();
  try {
    const cases = [
      ...OPTIMIZER_NAMES.map((n) => [n, "mlp"] as const),
      ["adam", "resnet"] as const,
    ];
    for (const [name, model] of cases) {
      const counts: number[] = [];
      await withNoLeaks(() =>
        trainRun(options(`${dir}/${name}-${model}`, name, {
          steps: 9,
          afterStep: (s) => void (s >= 2 && s < 9 && counts.push(tf.memory().numTensors)),
        }, withModel(model))), name);
      assert.ok(counts.length === 7, name);
      assert.ok(counts.every((c) => c === counts[0]), `${name}: tensor counts ${counts}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Expects the run to diverge at `step` with the checkpoint of `checkpoint` intact and finite. */
const expectDivergence = async (
  opts: RunOptions,
  step: number,
  checkpoint: number,
  what: string,
) => {
  const err = await withNoLeaks(() => trainRun(opts).then(() => null, (e) => e));
  assert.ok(err instanceof DivergedError, `expected DivergedError, got ${err}`);
  assert.equal(err.step, step);
  assert.match(err.message, new RegExp(`step ${step}: ${what}`));
  assert.match(err.message, new RegExp(`last good checkpoint \\(step ${checkpoint}\\) is intact`));
  const ck = await checkpointed(opts.dir);
  assert.equal(ck.step, checkpoint);
  assert.ok(ck.params.flat().every(Number.isFinite), "the checkpoint holds non-finite values");
};

Deno.test("run: a NaN batch stops the run naming the step; the last checkpoint stays intact", async () => {
  const dir = await tempDir();
  try {
    // Storage order (buffer 1), batch 16: example 85 is in the 6th batch.
    const problem = tinyProblem({ nanAt: 85 });
    await expectDivergence(
      options(dir, "adam", { shuffleBuffer: 1, checkpointEvery: 4 }, problem),
      6,
      4,
      "the training loss is NaN",
    );
    const logs = await readRunLogs(dir);
    assert.ok(Number.isNaN(logs.steps.at(-1)!.loss));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("run: a learning rate that turns θ non-finite stops the run; the checkpoint stays good", async () => {
  const dir = await tempDir();
  try {
    // lr 0.5 for three updates, then ∞: θ is non-finite after step 4, where a checkpoint is due.
    const lr = (t: number) => (t < 3 ? 0.5 : Infinity);
    const opts = options(dir, "sgd", {
      checkpointEvery: 2,
      optimizer: () => ({
        transform: chain(scaleByLearningRate<Params>(lr)),
        settings: { lr: 0.5 },
        learningRate: 0.5,
      }),
    });
    await expectDivergence(opts, 4, 2, "params/layers/0/kernel is not finite after the update");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("run: optimizer state that turns non-finite stops the run at that step, naming it", async () => {
  const dir = await tempDir();
  try {
    // Finite updates and losses throughout; the state's second slot becomes NaN at the 3rd
    // update. The check at checkpoints only (every 4) used to stop the run at step 4.
    const sgd = scaleByLearningRate<Params>(0.5);
    const opts = options(dir, "sgd", {
      checkpointEvery: 2,
      optimizer: () => ({
        transform: {
          init: (p: Params) => ({ n: 0, slots: [tf.scalar(0), tf.scalar(1)], inner: sgd.init(p) }),
          update: (u: Params, st: { n: number; slots: tf.Scalar[]; inner: { step: number } }) => {
            const [v, inner] = sgd.update(u, st.inner, { params: u });
            const bad = st.n + 1 === 3 ? NaN : 1;
            return [v, { n: st.n + 1, slots: [tf.scalar(st.n + 1), tf.scalar(bad)], inner }];
          },
        },
        settings: { lr: 0.5 },
        learningRate: 0.5,
      }),
    });
    await expectDivergence(opts, 3, 2, "optimizer state slots/1 is not finite after the update");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("run: NaN meta-weights stop an MLHF run at step 1, naming the state they poisoned", async () => {
  const dir = await tempDir();
  const target = meta.weights["dense/kernel"]!.lambda!.layers[0].kernel;
  const poisoned = mapTree(
    meta.weights as Params,
    (t) => t === target ? tf.tidy(() => tf.fill(t.shape, NaN)) : t.clone(),
  );
  try {
    const err = await withNoLeaks(() =>
      trainRun(options(dir, "mlhf", {}, tinyProblem(), {
        ...meta,
        weights: poisoned as typeof meta.weights,
      })).then(() => null, (e) => e)
    );
    assert.ok(err instanceof DivergedError, `expected DivergedError, got ${err}`);
    assert.equal(err.step, 1);
    assert.match(
      err.message,
      // A NaN λ makes CG's x NaN in the same step (lib/solvers/cg.ts), so the parameters are the
      // first poisoned state named.
      /^mlhf: step 1: params\/layers\/0\/kernel is not finite after the update; stopped\. No checkpoint had been written\.$/,
    );
  } finally {
    tf.dispose(leaves(poisoned));
    await Deno.remove(dir, { recursive: true });
  }
});

addEventListener("unload", () => tf.dispose(metaWeightTensors(meta.weights)));
