/**
 * Every optimizer lowers the loss of a small logistic regression and of a tiny MLP on a fixed
 * batch; HF reaches a convex quadratic's minimum in one step; MLHF with P ≡ 1 and fixed damping
 * equals HF step for step; state shapes are stable and nothing leaks; non-finite steps are skipped.
 */
import { tf } from "../_deps.ts";
import { useTestBackend } from "../../tests/_util/backend.ts";
import { assertAllClose, withNoLeaks } from "../../tests/_util/numeric.ts";
import { tinyNet } from "../../tests/_util/nets.ts";
import { keyFromSeed, normal } from "../prng.ts";
import { disposeState, type GradientTransformation } from "./base.ts";
import { adam, momentum, rmsprop, sgd } from "./alias.ts";
import { hessianFree } from "./hessian_free.ts";
import { mlhf } from "./mlhf/optimizer.ts";
import { kfac } from "./kfac.ts";
import { skipNonFinite } from "./guard.ts";
import { trainStepSync } from "../../tests/_util/step.ts";
import { type Batch, gaussNewtonProduct, type ModelFn } from "../curvature/gauss_newton.ts";
import { softmaxCrossEntropy, squaredError } from "../../ops/losses.ts";
import { initMetaWeights } from "./mlhf/meta_weights.ts";
import { metaWeightTensors } from "./mlhf/meta_weights.ts";
import type { ParamKind } from "../param_kinds.ts";
import { leaves, type Params, toVector } from "../tree.ts";
import { stateTensors } from "./base.ts";

await useTestBackend();

type P = Record<string, tf.Tensor>;

const logistic = (): { model: ModelFn<P>; params: P; batch: Batch; kinds: ParamKind[] } => {
  const x = tf.tensor(normal(keyFromSeed(5), 16 * 6), [16, 6]);
  const labels = tf.tensor1d(Array.from({ length: 16 }, (_, i) => i % 3), "int32");
  const y = tf.tidy(() => tf.oneHot(labels, 3).toFloat());
  labels.dispose();
  return {
    model: (nn, p, xx) => nn.dense(xx, p.w, p.b),
    params: { w: tf.tensor(normal(keyFromSeed(6), 18, 0, 0.1), [6, 3]), b: tf.zeros([3]) },
    batch: { x, y },
    kinds: ["dense/kernel", "dense/bias"],
  };
};

const meta = initMetaWeights(keyFromSeed(99), {
  dampingMode: "rnn",
  preconditioner: "rnn",
  xInit: "previous",
}, [
  "dense/kernel",
  "dense/bias",
]);

// deno-lint-ignore no-explicit-any
const OPTIMIZERS: Array<[string, (kinds: ParamKind[]) => GradientTransformation<any, P>]> = [
  ["sgd", () => sgd({ learningRate: 0.5 })],
  ["momentum", () => momentum({ learningRate: 0.1 })],
  ["adam", () => adam({ learningRate: 0.02 })],
  ["rmsprop", () => rmsprop({ learningRate: 0.05, decay: 0.99 })],
  ["hf-fixed", () => hessianFree({ learningRate: 0.5, damping: 0.05, cgIterations: 20 })],
  ["hf-lm", () => hessianFree({ learningRate: 1, damping: 1, cgIterations: 20, lmDecay: 0.99 })],
  ["mlhf", (kinds) => mlhf({ metaWeights: meta, kinds, learningRate: 1, cgIterations: 2 })],
  // Through trainStep K-FAC reads its layer taps from ctx.curvature (which it must not free).
  ["kfac", () => kfac({ seed: 3 })],
];

/** Runs `steps` steps and returns the losses before the first and after the last step. */
const lossesOver = <S>(
  opt: GradientTransformation<S, P>,
  prob: { model: ModelFn<P>; params: P; batch: Batch },
  steps: number,
) => {
  let params = Object.fromEntries(Object.entries(prob.params).map(([k, v]) => [k, v.clone()])) as P;
  let state = opt.init(params);
  let shapes0: string[] = [];
  let first = NaN;
  for (let i = 0; i < steps; i++) {
    const r = trainStepSync({
      model: prob.model,
      lossFn: softmaxCrossEntropy,
      optimizer: opt,
      params,
      state,
      batch: prob.batch,
    });
    tf.dispose(r.aux);
    if (i === 0) first = r.loss;
    params = r.params;
    state = r.state;
    // Shapes after the first step (HF-LM's state gains the previous batch there), then fixed.
    if (i === 0) shapes0 = stateTensors(state).map((t) => t.shape.join("x")).sort();
  }
  const gn = gaussNewtonProduct(prob.model, softmaxCrossEntropy, params, prob.batch);
  const last = gn.loss.dataSync()[0];
  gn.dispose();
  const shapes = stateTensors(state).map((t) => t.shape.join("x")).sort();
  disposeState(state);
  tf.dispose(leaves(params));
  return { first, last, shapes0, shapes };
};

for (const [name, make] of OPTIMIZERS) {
  Deno.test(`optimizer ${name}: lowers the loss of a logistic regression and a tiny MLP; stable state; no leaks`, async () => {
    const lr = logistic();
    const mlp = tinyNet("mlpTanh", 2, 12);
    try {
      await withNoLeaks(() => {
        for (
          const [prob, kinds] of [[lr, lr.kinds], [mlp, [
            "dense/kernel",
            "dense/bias",
            "dense/kernel",
            "dense/bias",
          ]]] as const
        ) {
          const { first, last, shapes0, shapes } = lossesOver(
            make([...kinds] as ParamKind[]),
            prob,
            10,
          );
          if (!(last < first - 0.05 * first)) {
            throw new Error(`${name}: loss ${first} → ${last} (want ≥5% lower)`);
          }
          if (shapes0.join() !== shapes.join()) {
            throw new Error(`${name}: state shapes changed: ${shapes0} → ${shapes}`);
          }
        }
      }, name);
    } finally {
      tf.dispose([lr.params, lr.batch, mlp.params, mlp.batch] as unknown as tf.TensorContainer);
    }
  });
}

Deno.test("HF with large K and small damping reaches the minimum of a convex quadratic in one step", async () => {
  await withNoLeaks(() => {
    // z = x·w + b with squared error: G is the exact Hessian of a convex quadratic.
    const x = tf.tensor(normal(keyFromSeed(1), 10 * 4), [10, 4]);
    const y = tf.tensor(normal(keyFromSeed(2), 10 * 2), [10, 2]);
    const params: P = { w: tf.zeros([4, 2]), b: tf.zeros([2]) };
    const model: ModelFn<P> = (nn, p, xx) => nn.dense(xx, p.w, p.b);
    const opt = hessianFree<P>({ learningRate: 1, damping: 1e-6, cgIterations: 30 });
    const state = opt.init(params);
    const r = trainStepSync({
      model,
      lossFn: squaredError,
      optimizer: opt,
      params,
      state,
      batch: { x, y },
    });
    tf.dispose(r.aux);
    const gn = gaussNewtonProduct(model, squaredError, r.params, { x, y });
    const gNorm = tf.tidy(() => tf.norm(toVector(gn.gradient)).dataSync()[0]);
    gn.dispose();
    disposeState(r.state);
    tf.dispose([x, y, ...leaves(r.params)]);
    if (!(gNorm < 1e-4)) throw new Error(`gradient norm after one HF step: ${gNorm}`);
  });
});

Deno.test("MLHF with P ≡ 1 and fixed damping equals HF step for step", async () => {
  const net = tinyNet("mlpSigmoid", 4, 6);
  const kinds: ParamKind[] = ["dense/kernel", "dense/bias", "dense/kernel", "dense/bias"];
  try {
    await withNoLeaks(() => {
      const a = mlhf<P>({
        metaWeights: {},
        kinds,
        learningRate: 0.7,
        cgIterations: 3,
        dampingMode: "fixed",
        preconditioner: "none",
        lambda0: 1e-2,
      });
      const b = hessianFree<P>({ learningRate: 0.7, damping: 1e-2, cgIterations: 3 });
      let pa = net.params, pb = net.params, sa = a.init(pa), sb = b.init(pb);
      for (let i = 0; i < 5; i++) {
        const ra = trainStepSync({
          model: net.model,
          lossFn: softmaxCrossEntropy,
          optimizer: a,
          params: pa,
          state: sa,
          batch: net.batch,
          keepPrevious: i === 0,
        });
        const rb = trainStepSync({
          model: net.model,
          lossFn: softmaxCrossEntropy,
          optimizer: b,
          params: pb,
          state: sb,
          batch: net.batch,
          keepPrevious: i === 0,
        });
        tf.dispose([ra.aux, rb.aux]);
        if (i === 0) {
          disposeState(sa);
          disposeState(sb);
        }
        pa = ra.params, pb = rb.params, sa = ra.state, sb = rb.state;
        assertAllClose(pa, pb, { rtol: 1e-5, atol: 1e-6 }, `step ${i}`);
      }
      disposeState(sa);
      disposeState(sb);
      tf.dispose([...leaves(pa), ...leaves(pb)]);
    });
  } finally {
    tf.dispose([net.params, net.batch] as unknown as tf.TensorContainer);
  }
});

Deno.test("MLHF: a parameter kind without a meta-network is a clear error", () => {
  const opt = mlhf<P>({ metaWeights: meta, kinds: ["conv2d/kernel"], learningRate: 1 });
  const p = { k: tf.zeros([3, 3, 1, 1]) };
  try {
    opt.init(p);
    throw new Error("no error");
  } catch (e) {
    if (
      !/no λ \(damping\) meta-network for parameter kind 'conv2d\/kernel'/.test(
        (e as Error).message,
      )
    ) {
      throw e;
    }
  } finally {
    p.k.dispose();
  }
});

Deno.test("a NaN or infinite loss never reaches the parameters: the step is skipped and counted", async () => {
  const lr = logistic();
  try {
    await withNoLeaks(() => {
      const opt = skipNonFinite(sgd<P>({ learningRate: 0.5 }));
      const bad: Batch = { x: tf.fill(lr.batch.x.shape, NaN), y: lr.batch.y };
      const state = opt.init(lr.params);
      const r = trainStepSync({
        model: lr.model,
        lossFn: softmaxCrossEntropy,
        optimizer: opt,
        params: lr.params,
        state,
        batch: bad,
        keepPrevious: true,
      });
      tf.dispose(r.aux);
      assertAllClose(r.params, lr.params, { rtol: 0, atol: 0 });
      const skipped = r.state.skipped.dataSync()[0];
      if (skipped !== 1) throw new Error(`skipped = ${skipped}`);
      disposeState(r.state);
      disposeState(state);
      tf.dispose([bad.x, ...leaves(r.params)]);
    });
  } finally {
    tf.dispose([lr.params, lr.batch] as unknown as tf.TensorContainer);
  }
});

Deno.test("meta-weights: 277 scalars per network (docs/algorithm.md#lstm-meta-networks)", () => {
  const n = metaWeightTensors(meta).reduce((s, t) => s + t.size, 0);
  if (n !== 2 * 2 * 277) throw new Error(`2 kinds × 2 roles × 277 expected, got ${n}`);
  void (null as unknown as Params);
});
