/**
 * No synchronous host read on the step path, on any backend (webgpu under Deno has none:
 * `dataSync`, `arraySync` and `bufferSync` throw there). A static scan of the modules a training or
 * meta-training step runs, against an explicit allow-list, and a dynamic check: two steps of each
 * optimizer (K-FAC included: its inversions are read in `prepare`), a CG solve, an evaluation and
 * one meta-iteration with the three methods patched to throw.
 */
import { tf } from "../lib/_deps.ts";
import { assert } from "./_util/deps.ts";
import { useTestBackend } from "./_util/backend.ts";
import { withNoLeaks } from "./_util/numeric.ts";
import { keyFromSeed, normal } from "../lib/prng.ts";
import { chain, disposeState, type GradientTransformation } from "../lib/optim/base.ts";
import { kfac } from "../lib/optim/kfac.ts";
import { addDecayedWeights } from "../lib/optim/transforms.ts";
import { adam, momentum, rmsprop, sgd } from "../lib/optim/alias.ts";
import { hessianFree } from "../lib/optim/hessian_free.ts";
import { mlhf } from "../lib/optim/mlhf/optimizer.ts";
import { initMetaWeights } from "../lib/optim/mlhf/meta_weights.ts";
import { skipNonFinite } from "../lib/optim/guard.ts";
import { trainStep } from "../lib/train/step.ts";
import { trainStepSync } from "./_util/step.ts";
import type { Batch, ModelFn } from "../lib/curvature/gauss_newton.ts";
import { softmaxCrossEntropy } from "../ops/losses.ts";
import { leaves, mapTree, type Params } from "../lib/tree.ts";
import { conjugateGradient } from "../lib/solvers/cg.ts";
import { evaluate } from "../lib/train/evaluate.ts";
import { syntheticSource, tinyModel } from "../lib/train/_testing.ts";
import {
  initMetaTrainState,
  META_TRAIN_DEFAULTS,
  metaIteration,
  type MetaTrainOptions,
  metaTrainStateTensors,
} from "../lib/meta/meta_train.ts";

await useTestBackend();

const ROOT = new URL("../", import.meta.url);

/**
 * The step path: every module a training step, a CG solve, evaluation or meta-iteration runs, and
 * the run layer around them (logs, checkpoints, meta-weights files).
 */
const SCANNED_DIRS = [
  "lib/train",
  "lib/run",
  "lib/meta",
  "lib/optim",
  "lib/solvers",
  "lib/curvature",
  "lib/meta/meta_train.ts",
  "ops",
  "models",
];

/**
 * The reads allowed, with how many times each file may contain one. K-FAC eigendecomposes its
 * Kronecker factors in float64 on the host every `invertEvery` steps: the training step reads them
 * asynchronously in `prepare` (the dynamic check below includes K-FAC over an inverting step);
 * `update` keeps a synchronous fallback (A and G) for callers that skip `prepare`.
 */
const ALLOWED: Record<string, number> = {
  "lib/optim/kfac.ts": 2, // factors A and G in update's fallback, when not prepared
  // encodeTree, the synchronous encoder (tests, host tensors); checkpoints and meta-weights files
  // are written with encodeTreeAsync.
  "lib/run/tensor_file.ts": 1,
};

const READ = /\.(dataSync|arraySync|bufferSync)\s*\(/g;

const sourceFiles = async (rel: string): Promise<string[]> => {
  const url = new URL(rel, ROOT);
  const info = await Deno.stat(url);
  if (info.isFile) return [rel];
  const out: string[] = [];
  for await (const e of Deno.readDir(url)) {
    const child = `${rel}/${e.name}`;
    if (e.isDirectory) out.push(...await sourceFiles(child));
    else if (e.name.endsWith(".ts") && !e.name.endsWith("_test.ts")) out.push(child);
  }
  return out;
};

Deno.test("no synchronous read (dataSync/arraySync/bufferSync) in the step path's source", async () => {
  const found: Record<string, number> = {};
  for (const dir of SCANNED_DIRS) {
    for (const file of await sourceFiles(dir)) {
      const n = (await Deno.readTextFile(new URL(file, ROOT))).match(READ)?.length ?? 0;
      if (n) found[file] = n;
    }
  }
  assert.deepEqual(found, ALLOWED);
});

type P = Record<string, tf.Tensor>;
const logistic = () => {
  const labels = tf.tensor1d(Array.from({ length: 12 }, (_, i) => i % 3), "int32");
  const y = tf.tidy(() => tf.oneHot(labels, 3).toFloat());
  labels.dispose();
  return {
    model: ((nn, p, xx) => nn.dense(xx, p.w, p.b)) as ModelFn<P>,
    params: { w: tf.tensor(normal(keyFromSeed(6), 15, 0, 0.1), [5, 3]), b: tf.zeros([3]) } as P,
    batch: { x: tf.tensor(normal(keyFromSeed(5), 12 * 5), [12, 5]), y } as Batch,
  };
};

const SYNC = ["dataSync", "arraySync", "bufferSync"] as const;

/** Runs `f` with the synchronous reads patched to throw, naming the method. */
const withoutSyncReads = async <T>(f: () => Promise<T>): Promise<T> => {
  const proto = tf.Tensor.prototype as unknown as Record<string, unknown>;
  const saved = SYNC.map((k) => proto[k]);
  SYNC.forEach((k) =>
    proto[k] = () => {
      throw new Error(`synchronous read: Tensor.${k}() on the step path`);
    }
  );
  try {
    return await f();
  } finally {
    SYNC.forEach((k, i) => proto[k] = saved[i]);
  }
};

const meta = initMetaWeights(keyFromSeed(99), {
  dampingMode: "rnn",
  preconditioner: "rnn",
  xInit: "previous",
}, ["dense/kernel", "dense/bias"]);

// deno-lint-ignore no-explicit-any
const OPTIMIZERS: Array<[string, () => GradientTransformation<any, P>]> = [
  ["sgd", () => sgd({ learningRate: 0.5 })],
  ["momentum", () => momentum({ learningRate: 0.1 })],
  ["adam", () => adam({ learningRate: 0.02 })],
  ["rmsprop", () => rmsprop({ learningRate: 0.05, decay: 0.99 })],
  ["hf-fixed", () => hessianFree({ learningRate: 0.5, damping: 0.05, cgIterations: 5 })],
  ["hf-lm", () => hessianFree({ learningRate: 1, damping: 1, cgIterations: 5, lmDecay: 0.99 })],
  ["mlhf", () => mlhf({ metaWeights: meta, kinds: KINDS, learningRate: 1, cgIterations: 2 })],
  [
    "mlhf+lm+trust",
    () =>
      mlhf({
        metaWeights: meta,
        kinds: KINDS,
        learningRate: 1,
        cgIterations: 2,
        safeguard: "lm+trust",
      }),
  ],
  ["guarded sgd", () => skipNonFinite(sgd({ learningRate: 0.5 }))],
  // Both steps invert (invertEvery 1): the factors are read in `prepare`, asynchronously.
  ["kfac", () => kfac({ learningRate: 0.1, damping: 1, invertEvery: 1 })],
  [
    "guarded kfac after weight decay (chain)",
    () =>
      skipNonFinite(
        chain(addDecayedWeights(1e-4), kfac({ learningRate: 0.1, damping: 1, invertEvery: 1 })),
      ),
  ],
];
const KINDS = ["dense/kernel", "dense/bias"] as const;

for (const [name, make] of OPTIMIZERS) {
  Deno.test(`${name}: two steps with every synchronous read patched to throw`, async () => {
    const prob = logistic();
    try {
      await withNoLeaks(async () => {
        const opt = make();
        let params = mapTree(prob.params, (t) => t.clone());
        let state = opt.init(params);
        const losses: number[] = [];
        await withoutSyncReads(async () => {
          for (let i = 0; i < 2; i++) { // two: LM's ρ is measured from the second step on
            const r = await trainStep({
              model: prob.model,
              lossFn: softmaxCrossEntropy,
              optimizer: opt,
              params,
              state,
              batch: prob.batch,
              key: keyFromSeed(i),
              checkFinite: true,
            });
            tf.dispose(r.aux);
            params = r.params;
            state = r.state;
            losses.push(r.loss);
            assert.ok(r.finite);
            assert.ok(r.accuracy >= 0 && r.accuracy <= 1);
          }
        });
        assert.ok(losses.every(Number.isFinite) && losses[1] < losses[0], `losses ${losses}`);
        disposeState(state);
        tf.dispose(leaves(params));
      });
    } finally {
      tf.dispose([...leaves(prob.params), prob.batch.x, prob.batch.y]);
    }
  });
}

Deno.test("CG: a solve with the synchronous reads patched to throw", async () => {
  await withNoLeaks(() =>
    withoutSyncReads(async () => {
      const b: Record<"a" | "b", tf.Tensor> = { a: tf.tensor1d([1, -2]), b: tf.tensor1d([4]) };
      const res = tf.tidy(() =>
        conjugateGradient((v: typeof b) => ({ a: v.a.mul(2), b: v.b.mul(2) }), b, {
          x0: { a: tf.zeros([2]), b: tf.zeros([1]) },
          maxIterations: 3,
        }).x
      );
      assert.deepEqual(Array.from(await res.a.data()), [0.5, -1]);
      tf.dispose([res.a, res.b, b.a, b.b]);
    })
  );
});

Deno.test("evaluation with the synchronous reads patched to throw", async () => {
  const model = tinyModel();
  const { params, state } = model.init(keyFromSeed(4), [4, 4, 1]);
  try {
    await withNoLeaks(async () => {
      const ev = await withoutSyncReads(() =>
        evaluate(model, params, state, syntheticSource(30, 9), { batchSize: 7 })
      );
      assert.equal(ev.examples, 30);
      assert.ok(Number.isFinite(ev.loss) && ev.accuracy >= 0 && ev.accuracy <= 1);
    });
  } finally {
    tf.dispose([...leaves(params), ...leaves(state)]);
  }
});

Deno.test("meta-training: one meta-iteration with the synchronous reads patched to throw", async () => {
  const prob = logistic();
  const second = { x: tf.tensor(normal(keyFromSeed(8), 12 * 5), [12, 5]), y: prob.batch.y };
  const o: MetaTrainOptions = { ...META_TRAIN_DEFAULTS, metaRollBack: 2, cgIterations: 2 };
  try {
    await withNoLeaks(async () => {
      const s = initMetaTrainState(
        { model: prob.model, lossFn: softmaxCrossEntropy, kinds: [...KINDS] },
        o,
        mapTree(prob.params, (t) => t.clone()),
        mapTree(meta as unknown as Params, (t) => t.clone()) as unknown as typeof meta,
      );
      const r = await withoutSyncReads(() =>
        metaIteration(
          { model: prob.model, lossFn: softmaxCrossEntropy, kinds: [...KINDS] },
          o,
          s,
          [prob.batch, second],
          keyFromSeed(4),
        )
      );
      assert.equal(r.nonFinite, null);
      assert.ok(Number.isFinite(r.diagnostics.metaLoss) && r.diagnostics.hessianLoss !== 0);
      tf.dispose(metaTrainStateTensors(r.state));
    });
  } finally {
    tf.dispose([...leaves(prob.params), prob.batch.x, prob.batch.y, second.x]);
  }
});

Deno.test("kfac: a prepared step equals update's synchronous fallback, bit for bit (3 steps, inverting every 2nd)", async () => {
  const prob = logistic();
  try {
    await withNoLeaks(async () => {
      const opt = kfac<P>({ learningRate: 0.1, damping: 1, invertEvery: 2, momentum: 0.9 });
      const run = async (prepared: boolean) => {
        let params = mapTree(prob.params, (t) => t.clone());
        let state = opt.init(params);
        const losses: number[] = [];
        for (let i = 0; i < 3; i++) {
          const inputs = {
            model: prob.model,
            lossFn: softmaxCrossEntropy,
            optimizer: opt,
            params,
            state,
            batch: prob.batch,
            key: keyFromSeed(i),
          };
          const r = prepared ? await trainStep(inputs) : trainStepSync(inputs);
          tf.dispose(r.aux);
          params = r.params;
          state = r.state;
          losses.push(r.loss);
        }
        const values = [];
        for (const t of leaves(params)) values.push(...await t.data());
        disposeState(state);
        tf.dispose(leaves(params));
        return { losses, values };
      };
      const a = await run(true), b = await run(false);
      assert.deepEqual(a.losses, b.losses);
      assert.deepEqual(a.values, b.values);
      assert.ok(a.losses[2] < a.losses[0], `losses ${a.losses}`);
    });
  } finally {
    tf.dispose([...leaves(prob.params), prob.batch.x, prob.batch.y]);
  }
});
