/**
 * The optimizer registry: the `name:key=value` syntax and its errors, defaults from
 * docs/algorithm.md#presets and from the meta-weights' record, and the weight-decay convention as
 * applied: the baselines' update sees g + wd·θ (ImageNet: not for batch norm), MLHF's and HF's see
 * g alone.
 */
import { assert } from "../../tests/_util/deps.ts";
import { useTestBackend } from "../../tests/_util/backend.ts";
import { assertAllClose, withNoLeaks } from "../../tests/_util/numeric.ts";
import { tinyNet } from "../../tests/_util/nets.ts";
import { tf } from "../_deps.ts";
import { disposeState } from "../optim/base.ts";
import { hessianFree } from "../optim/hessian_free.ts";
import { mlhf } from "../optim/mlhf/optimizer.ts";
import { metaWeightTensors } from "../optim/mlhf/meta_weights.ts";
import type { ParamKind } from "../param_kinds.ts";
import { softmaxCrossEntropy } from "../../ops/losses.ts";
import type { ModelFn } from "../curvature/gauss_newton.ts";
import { add, leaves, mapTree, type Params, scale } from "../tree.ts";
import {
  buildOptimizer,
  checkSettings,
  describeSettings,
  labelSpecs,
  type OptimizerName,
  parseOptimizerList,
  resolveSettings,
} from "./optimizers.ts";
import { resolveMetaWeights } from "./problem.ts";
import { trainStepSync } from "../../tests/_util/step.ts";
import { weightDecayFor } from "./weight_decay.ts";

await useTestBackend();

const MNIST = weightDecayFor("mnist"), IMAGENET = weightDecayFor("imagenet");

Deno.test("optimizer list: names, settings, labels and errors", () => {
  assert.deepEqual(parseOptimizerList("adam, mlhf:lr=2:cg-iter=4,adam:lr=1e-2"), [
    { name: "adam", settings: {} },
    { name: "mlhf", settings: { lr: 2, "cg-iter": 4 } },
    { name: "adam", settings: { lr: 0.01 } },
  ]);
  assert.deepEqual(
    labelSpecs(parseOptimizerList("adam,mlhf,adam")).map((s) => s.label),
    ["adam", "mlhf", "adam-2"],
  );
  assert.throws(() => parseOptimizerList("adamw"), /unknown optimizer "adamw" \(one of mlhf, sgd/);
  assert.throws(
    () => parseOptimizerList("adam:cg-iter=3"),
    /: entry "adam:cg-iter=3": adam has no setting "cg-iter" \(adam takes lr, beta1, beta2, epsilon, weight-decay\)$/,
  );
  assert.throws(
    () => parseOptimizerList("sgd:lr=fast"),
    /: entry "sgd:lr=fast": lr: expected a non-negative number, got "fast"$/,
  );
  assert.throws(
    () => parseOptimizerList("sgd:lr=-1"),
    /: entry "sgd:lr=-1": lr: expected a non-negative number, got "-1"$/,
  );
  assert.throws(
    () => parseOptimizerList("sgd:lr"),
    /: entry "sgd:lr": expected key=value, got "lr" \(sgd takes lr, weight-decay\)$/,
  );
  assert.throws(
    () => parseOptimizerList("sgd:lr=1:lr=2"),
    /: entry "sgd:lr=1:lr=2": lr given twice$/,
  );
  for (const v of ["1.5", "1e1", "0", "0x10"]) {
    assert.throws(
      () => parseOptimizerList(`kfac:invert-every=${v}`),
      new RegExp(`invert-every: expected a positive integer, got "${v}"$`),
    );
  }
  assert.throws(
    () => parseOptimizerList("adam:lr=0x10"),
    /lr: expected a non-negative number, got "0x10"$/,
  );
  assert.throws(() => parseOptimizerList(" , "), /at least one optimizer/);
});

Deno.test("optimizer list: MLHF's safeguard is a word setting; absent, no safeguard key anywhere", () => {
  assert.deepEqual(parseOptimizerList("mlhf:safeguard=lm+trust:lr=2"), [
    { name: "mlhf", settings: { safeguard: "lm+trust", lr: 2 } },
  ]);
  assert.throws(
    () => parseOptimizerList("mlhf:safeguard=always"),
    /: entry "mlhf:safeguard=always": safeguard: expected one of none, lm, trust, lm\+trust, got "always"$/,
  );
  assert.throws(
    () => parseOptimizerList("adam:safeguard=lm"),
    /: entry "adam:safeguard=lm": adam has no setting "safeguard"/,
  );
  assert.throws(
    () => checkSettings("mlhf", { safeguard: "on" as never }),
    /^RangeError: mlhf: safeguard must be one of none, lm, trust, lm\+trust, got on$/,
  );
  assert.equal(describeSettings({ lr: 2, safeguard: "lm" }), "lr=2 safeguard=lm");
  const r = resolveSettings({ name: "mlhf", settings: {} }, { weightDecay: MNIST });
  assert.ok(!("safeguard" in r), "the default (none) adds no key to settings or identities");
});

Deno.test("settings: the original's defaults, the convention's weight decay, MLHF from its record", () => {
  const r = (name: OptimizerName, settings = {}) =>
    resolveSettings({ name, settings }, {
      weightDecay: MNIST,
    });
  assert.deepEqual(r("hf-lm"), {
    lr: 1e-3,
    damping: 1,
    "lm-decay": 0.99,
    "cg-iter": 20,
    "weight-decay": 0,
  });
  assert.deepEqual(r("hf-fixed"), { lr: 1e-2, damping: 5e-3, "cg-iter": 20, "weight-decay": 0 });
  assert.deepEqual(r("rmsprop"), { lr: 1e-3, decay: 0.99, epsilon: 1e-10, "weight-decay": 2e-4 });
  assert.equal(r("kfac")["weight-decay"], 2e-4);
  assert.equal(r("mlhf")["weight-decay"], 0);
  assert.equal(r("adam", { "weight-decay": 0 })["weight-decay"], 0);
  const meta = {
    weights: {},
    options: { cgIterations: 4, lambda0: 1e-4 },
    trainedLearningRate: 0.5,
    description: "test",
  };
  const m = (settings = {}) =>
    resolveSettings({ name: "mlhf", settings }, { weightDecay: IMAGENET, meta });
  assert.deepEqual(m(), { lr: 0.5, "cg-iter": 4, damping: 1e-4, "weight-decay": 0 });
  assert.equal(m({ lr: 2 }).lr, 2);
});

const P = (): Params => ({
  k: tf.tensor([[1, -2], [3, 4]]),
  g: tf.tensor([2, 3]),
  b: tf.tensor([-1, 5]),
});
const KINDS: ParamKind[] = ["dense/kernel", "batch/gamma", "dense/bias"];

Deno.test("weight decay: the baselines' gradient gains wd·θ (ImageNet: not for batch norm)", async () => {
  // Everything happens in one tidy: the transformations' intermediates are freed with it.
  await withNoLeaks(() =>
    tf.tidy(() => {
      const params = P();
      const grad = tf.tidy(() => scale(P(), 0.5));
      for (const [wd, bnDecayed] of [[MNIST, true], [IMAGENET, false]] as const) {
        const opt = buildOptimizer({ name: "sgd", settings: { lr: 1 } }, {
          kinds: KINDS,
          weightDecay: wd,
        });
        const state = opt.transform.init(params);
        const [u, s] = opt.transform.update(grad, state, { params });
        const ps = leaves(params), gs = leaves(grad), us = leaves(u);
        us.forEach((x, i) => {
          const decayed = i !== 1 || bnDecayed;
          const want = tf.tidy(() =>
            tf.neg(decayed ? tf.add(gs[i], tf.mul(ps[i], wd.value)) : gs[i])
          );
          assertAllClose(x, want, { rtol: 1e-6, atol: 0 }, `${wd.value} leaf ${i}`);
          want.dispose();
        });
        tf.dispose(leaves(u));
        disposeState(s);
        disposeState(state);
      }
      // RMSprop with the convention = RMSprop without weight decay fed g + wd·θ by hand.
      const wd = MNIST.value;
      const a = buildOptimizer({ name: "rmsprop", settings: {} }, {
        kinds: KINDS,
        weightDecay: MNIST,
      });
      const b = buildOptimizer({ name: "rmsprop", settings: { "weight-decay": 0 } }, {
        kinds: KINDS,
        weightDecay: MNIST,
      });
      const sa = a.transform.init(params), sb = b.transform.init(params);
      const decayed = tf.tidy(() => add(grad, scale(params, wd)));
      const [ua, na] = a.transform.update(grad, sa, { params });
      const [ub, nb] = b.transform.update(decayed, sb, { params });
      const [uc, nc] = b.transform.update(grad, sb, { params });
      assertAllClose(ua, ub, { rtol: 1e-6, atol: 0 }, "rmsprop with the convention");
      assert.throws(() => assertAllClose(ua, uc, { rtol: 1e-6, atol: 0 }), /leaf/);
      tf.dispose([...leaves(params), ...leaves(grad), ...leaves(decayed)]);
      tf.dispose([...leaves(ua), ...leaves(ub), ...leaves(uc)]);
      [sa, sb, na, nb, nc].forEach((s) => disposeState(s));
    })
  );
});

Deno.test("weight decay: MLHF and HF steps see the cross-entropy gradient only", async () => {
  const meta = (await resolveMetaWeights("untrained", { seed: 5, required: true }))!;
  const net = tinyNet("mlpTanh", 4, 8);
  const kinds: ParamKind[] = ["dense/kernel", "dense/bias", "dense/kernel", "dense/bias"];
  try {
    await withNoLeaks(() => {
      const step = (t: ReturnType<typeof buildOptimizer>["transform"]) => {
        let params: Params = mapTree(net.params, (x) => x.clone());
        let state: unknown = t.init(params);
        for (let i = 0; i < 2; i++) {
          const r: { params: Params; state: unknown; aux: tf.TensorContainer } = trainStepSync({
            model: net.model as unknown as ModelFn<Params>,
            lossFn: softmaxCrossEntropy,
            optimizer: t,
            params,
            state,
            batch: net.batch,
          });
          tf.dispose(r.aux);
          params = r.params;
          state = r.state;
        }
        disposeState(state);
        return params;
      };
      const cases = [
        [
          { name: "mlhf", settings: { lr: 1, "cg-iter": 2 } },
          mlhf({ metaWeights: meta.weights, kinds, learningRate: 1, cgIterations: 2 }),
        ],
        [
          { name: "hf-fixed", settings: { lr: 1, damping: 0.1, "cg-iter": 3 } },
          hessianFree({ learningRate: 1, damping: 0.1, cgIterations: 3 }),
        ],
        [
          { name: "hf-lm", settings: { lr: 1, damping: 1, "cg-iter": 3 } },
          hessianFree({ learningRate: 1, damping: 1, cgIterations: 3, lmDecay: 0.99 }),
        ],
      ] as const;
      for (const [spec, direct] of cases) {
        const built = buildOptimizer(spec, { kinds, weightDecay: MNIST, meta });
        assert.equal(built.settings["weight-decay"], 0);
        const a = step(built.transform), b = step(direct);
        assertAllClose(a, b, { rtol: 0, atol: 0 }, spec.name);
        // …whereas giving it weight decay changes the trajectory (the test can tell).
        const decayed = buildOptimizer({
          ...spec,
          settings: { ...spec.settings, "weight-decay": 0.1 },
        }, {
          kinds,
          weightDecay: MNIST,
          meta,
        });
        const c = step(decayed.transform);
        assert.throws(() => assertAllClose(c, b, { rtol: 1e-6, atol: 0 }), /leaf/);
        tf.dispose([...leaves(a), ...leaves(b), ...leaves(c)]);
      }
    });
  } finally {
    tf.dispose([...leaves(net.params), net.batch.x, net.batch.y]);
    tf.dispose(metaWeightTensors(meta.weights));
  }
});
