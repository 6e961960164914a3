import { tf } from "../_deps.ts";
import { useTestBackend } from "../../tests/_util/backend.ts";
import { assertAllClose, withNoLeaks } from "../../tests/_util/numeric.ts";
import { keyFromSeed, normal } from "../prng.ts";
import { applyUpdates, disposeState, type GradientTransformation } from "./base.ts";
import { adam, momentum, rmsprop, sgd } from "./alias.ts";
import { tidyTree } from "../tree.ts";

await useTestBackend();

type P = { w: tf.Tensor; b: tf.Tensor };

/** A fixed logistic-regression problem: mean softmax CE of x·w + b. */
const problem = () => {
  const x = tf.tensor(normal(keyFromSeed(1), 8 * 5), [8, 5]);
  const y = tf.oneHot(tf.tensor1d([0, 1, 2, 0, 1, 2, 0, 1], "int32"), 3).toFloat();
  const init: P = {
    w: tf.tensor(normal(keyFromSeed(2), 15, 0, 0.3), [5, 3]),
    b: tf.tensor(normal(keyFromSeed(3), 3, 0, 0.1), [3]),
  };
  const loss = (w: tf.Tensor, b: tf.Tensor) =>
    tf.losses.softmaxCrossEntropy(y, tf.add(tf.matMul(x, w), b)) as tf.Scalar;
  return { x, y, init, loss, dispose: () => tf.dispose([x, y, init.w, init.b]) };
};

/** Runs our transformation for n steps. */
const runOurs = (
  opt: GradientTransformation<unknown[], P>,
  pr: ReturnType<typeof problem>,
  n: number,
): P => {
  let params: P = { w: pr.init.w.clone(), b: pr.init.b.clone() };
  let state = opt.init(params);
  for (let i = 0; i < n; i++) {
    const [next, s2] = tf.tidy(() => {
      const g = tf.grads((w: tf.Tensor, b: tf.Tensor) => pr.loss(w, b))([params.w, params.b]);
      const [u, s] = opt.update({ w: g[0], b: g[1] }, state, { params });
      return [applyUpdates(params, u), s] as unknown as tf.TensorContainer;
    }) as unknown as [P, unknown[]];
    disposeState(state, s2);
    tf.dispose([params.w, params.b]);
    params = next;
    state = s2;
  }
  disposeState(state);
  return params;
};

/** Runs a tf.train optimizer for n steps. */
const runTf = (opt: tf.Optimizer, pr: ReturnType<typeof problem>, n: number): P => {
  const w = tf.variable(pr.init.w.clone()), b = tf.variable(pr.init.b.clone());
  for (let i = 0; i < n; i++) opt.minimize(() => pr.loss(w, b));
  const out = { w: w.clone(), b: b.clone() };
  tf.dispose([w, b]);
  opt.dispose();
  return out;
};

const CASES: Array<[string, () => GradientTransformation<unknown[], P>, () => tf.Optimizer]> = [
  ["sgd", () => sgd({ learningRate: 0.5 }), () => tf.train.sgd(0.5)],
  [
    "momentum",
    () => momentum({ learningRate: 0.1, momentum: 0.9 }),
    () => tf.train.momentum(0.1, 0.9),
  ],
  [
    "adam",
    () => adam({ learningRate: 0.05, beta1: 0.9, beta2: 0.999, epsilon: 1e-7 }),
    () => tf.train.adam(0.05, 0.9, 0.999, 1e-7),
  ],
  [
    "rmsprop",
    () =>
      rmsprop({
        learningRate: 0.01,
        decay: 0.9,
        momentum: 0.5,
        epsilon: 1e-7,
        initialMeanSquare: 0,
      }),
    () => tf.train.rmsprop(0.01, 0.9, 0.5, 1e-7),
  ],
];

for (const [name, ours, theirs] of CASES) {
  Deno.test(`optimizer ${name}: trajectory matches tf.train.${name} over 20 steps`, async () => {
    const pr = problem();
    try {
      // Our optimizer must not leak; tf.train's optimizers keep a few internal scalars alive.
      let a!: P;
      await withNoLeaks(() => {
        a = runOurs(ours(), pr, 20);
        tf.dispose([a.w, a.b]);
      }, name);
      a = runOurs(ours(), pr, 20);
      const b = runTf(theirs(), pr, 20);
      try {
        assertAllClose(a, b, { rtol: 1e-4, atol: 1e-5 }, name);
        // The run must have moved: a trajectory equal to the start would also "match".
        const moved = tf.tidy(() => tf.max(tf.abs(tf.sub(a.w, pr.init.w))).dataSync()[0]);
        if (!(moved > 1e-2)) throw new Error(`${name} did not move the parameters`);
      } finally {
        tf.dispose([a.w, a.b, b.w, b.b]);
      }
    } finally {
      pr.dispose();
    }
  });
}

Deno.test("weight decay adds wd·θ to the gradient (docs/algorithm.md#weight-decay)", () => {
  tf.tidy(() => {
    const params = { w: tf.tensor([1, -2]) };
    const opt = sgd<typeof params>({ learningRate: 1, weightDecay: 0.5 });
    const [u] = opt.update({ w: tf.tensor([0.1, 0.1]) }, opt.init(params), { params });
    assertAllClose(tidyTree(() => u), { w: tf.tensor([-0.6, 0.9]) }, { rtol: 1e-6 });
  });
});
