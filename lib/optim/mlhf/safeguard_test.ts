/**
 * MLHF's safeguard (docs/algorithm.md#safeguard): a step that blows up (λ ≈ λ₀ = 1e-8 from a λ
 * network whose output is −50 before the softplus, η = 100, K = 20 on a logistic regression)
 * raises the loss with `none`, is rejected with `lm` (params and MLHF's state unchanged, μ raised)
 * and is cut to ‖ηx̃‖ = c‖θ‖ with `trust`; good steps on a quadratic lower μ; the rule's decisions
 * over a sequence of steps equal a float64 reference; the safeguard adds no host read; μ·λ is the
 * damping CG used; `none` is the original's update and state; nothing leaks.
 */
import { tf } from "../../_deps.ts";
import { assert } from "../../../tests/_util/deps.ts";
import { useTestBackend } from "../../../tests/_util/backend.ts";
import { assertAllClose, withNoLeaks } from "../../../tests/_util/numeric.ts";
import { keyFromSeed, normal } from "../../prng.ts";
import { leaves, scale, unflatten, vdot } from "../../tree.ts";
import { disposeState, type GradientTransformation } from "../base.ts";
import { trainStepSync } from "../../../tests/_util/step.ts";
import { type Batch, gaussNewtonProduct, type ModelFn } from "../../curvature/gauss_newton.ts";
import { type Loss, softmaxCrossEntropy, squaredError } from "../../../ops/losses.ts";
import type { ParamKind } from "../../param_kinds.ts";
import { plain } from "../../../ops/interpret.ts";
import { initMetaWeights, metaWeightTensors } from "./meta_weights.ts";
import { type MetaWeights, MLHF_DEFAULTS, mlhfDirection, type MlhfState } from "./direction.ts";
import { mlhf, type MlhfOptimizerState } from "./optimizer.ts";
import {
  initSafeguardState,
  SAFEGUARD_DEFAULTS,
  type SafeguardOptions,
  type SafeguardState,
  safeguardStep,
} from "./safeguard.ts";

await useTestBackend();

type P = Record<string, tf.Tensor>;
const KINDS: ParamKind[] = ["dense/kernel", "dense/bias"];

/** A logistic regression (6 → 3) on 16 examples. */
const logistic = (): { model: ModelFn<P>; params: P; batch: Batch } => {
  const x = tf.tensor(normal(keyFromSeed(5), 16 * 6), [16, 6]);
  const labels = tf.tensor1d(Array.from({ length: 16 }, (_, i) => i % 3), "int32");
  const y = tf.tidy(() => tf.oneHot(labels, 3).toFloat());
  labels.dispose();
  return {
    model: (nn, p, xx) => nn.dense(xx, p.w, p.b),
    params: { w: tf.tensor(normal(keyFromSeed(6), 18, 0, 0.1), [6, 3]), b: tf.zeros([3]) },
    batch: { x, y },
  };
};

/** Random meta-weights whose λ networks output −50 (λ = softplus(−50) + λ₀ ≈ λ₀). */
const tinyLambdaMeta = (): MetaWeights => {
  const m = initMetaWeights(keyFromSeed(99), MLHF_DEFAULTS, KINDS);
  for (const kind of KINDS) {
    const nets = m[kind]!;
    tf.dispose([nets.lambda!.head.kernel, nets.lambda!.head.bias]);
    m[kind] = {
      ...nets,
      lambda: {
        ...nets.lambda!,
        head: { kernel: tf.zeros([4, 1]), bias: tf.tensor1d([-50]) },
      },
    };
  }
  return m;
};
const BLOWUP = { cgIterations: 20, lambda0: 1e-8, learningRate: 100 };

const lossOf = (model: ModelFn<P>, lossFn: Loss, params: P, batch: Batch): number => {
  const gn = gaussNewtonProduct(model, lossFn, params, batch);
  try {
    return gn.loss.dataSync()[0];
  } finally {
    gn.dispose();
  }
};

const clone = (p: P): P => Object.fromEntries(Object.entries(p).map(([k, v]) => [k, v.clone()]));

/** One trainStep of `opt` from fresh state; returns what the test inspects (host numbers). */
const oneStep = <S>(
  opt: GradientTransformation<S, P>,
  prob: { model: ModelFn<P>; params: P; batch: Batch },
  lossFn: Loss = softmaxCrossEntropy,
) => {
  const state = opt.init(prob.params);
  const r = trainStepSync({
    model: prob.model,
    lossFn,
    optimizer: opt,
    params: prob.params,
    state,
    batch: prob.batch,
    keepPrevious: true,
    checkFinite: true,
  });
  tf.dispose(r.aux);
  const out = {
    before: r.loss,
    after: lossOf(prob.model, lossFn, r.params, prob.batch),
    delta: leaves(r.params).map((t, i) => tf.tidy(() => tf.sub(t, leaves(prob.params)[i]))),
    diagnostics: r.diagnostics,
    state0: state,
    state: r.state,
    params: r.params,
  };
  return {
    ...out,
    dispose: () => {
      tf.dispose(out.delta);
      disposeState(r.state, state);
      disposeState(state);
      tf.dispose(leaves(r.params).filter((t) => !leaves(prob.params).includes(t)));
    },
  };
};

const normOfAll = (ts: tf.Tensor[]): number =>
  Math.sqrt(ts.reduce((s, t) => s + tf.tidy(() => tf.sum(tf.square(t)).dataSync()[0]), 0));

const arraysOf = (x: unknown): number[][] => {
  const out: number[][] = [];
  const walk = (v: unknown): void => {
    if (v instanceof tf.Tensor) out.push(Array.from(v.dataSync()));
    else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === "object") Object.values(v).forEach(walk);
  };
  walk(x);
  return out;
};

Deno.test("safeguard: a step that blows up raises the loss with none, is rejected by lm and cut by trust", async () => {
  const prob = logistic();
  const meta = tinyLambdaMeta();
  try {
    await withNoLeaks(() => {
      const make = (safeguard: "none" | "lm" | "trust" | "lm+trust") =>
        mlhf<P>({ metaWeights: meta, kinds: KINDS, ...BLOWUP, safeguard });
      // none: the original's step multiplies the loss.
      const none = oneStep(make("none"), prob);
      try {
        assert.ok(
          !(none.after < 10 * none.before),
          `none: loss ${none.before} → ${none.after}, the test wants a blow-up (≥ 10×)`,
        );
        assert.deepEqual(none.diagnostics, {});
      } finally {
        none.dispose();
      }
      // lm: rejected, μ raised by 1/ω, θ and MLHF's state unchanged.
      const lm = oneStep(make("lm"), prob);
      try {
        assert.equal(lm.diagnostics.rejected, 1);
        assert.equal(lm.diagnostics.rho, -1);
        assertAllClose(lm.diagnostics.mu, 1 / SAFEGUARD_DEFAULTS.decay, { rtol: 1e-7, atol: 0 });
        for (const d of lm.delta) assert.ok(d.dataSync().every((v) => v === 0));
        assert.equal(lm.after, lm.before);
        const { safeguard: _a, ...s0 } = lm.state0 as MlhfOptimizerState<P>;
        const { safeguard: _b, ...s1 } = lm.state as MlhfOptimizerState<P>;
        assert.deepEqual(arraysOf(s1), arraysOf(s0));
      } finally {
        lm.dispose();
      }
      // trust: ‖ηx̃‖ = c‖θ‖ (the cut is active), not rejected.
      for (const mode of ["trust", "lm+trust"] as const) {
        const tr = oneStep(make(mode), prob);
        try {
          const step = normOfAll(tr.delta), radius = normOfAll(leaves(prob.params));
          if (mode === "trust" || tr.diagnostics.rejected === 0) {
            assertAllClose(step, SAFEGUARD_DEFAULTS.trustFraction * radius, {
              rtol: 1e-6,
              atol: 0,
            }, `${mode}: ‖Δθ‖`);
          }
          assert.ok(
            tr.diagnostics.trust_scale < 1e-2,
            `${mode}: s = ${tr.diagnostics.trust_scale}`,
          );
          assert.ok(tr.after < 2 * tr.before, `${mode}: loss ${tr.before} → ${tr.after}`);
          if (mode === "trust") assert.equal(tr.diagnostics.rejected, 0);
          // The stored x_prev is the unclipped x (as meta-training's clip).
          const x = (tr.state as MlhfState<P>).xPrev;
          if (tr.diagnostics.rejected === 0) {
            assert.ok(normOfAll(leaves(x)) * BLOWUP.learningRate > 100 * step);
          }
        } finally {
          tr.dispose();
        }
      }
    });
  } finally {
    tf.dispose([prob.params, prob.batch] as unknown as tf.TensorContainer);
    tf.dispose(metaWeightTensors(meta));
  }
});

Deno.test("safeguard lm: ten blow-up steps never raise the loss; none's run diverges", async () => {
  const prob = logistic();
  const meta = tinyLambdaMeta();
  try {
    await withNoLeaks(() => {
      for (const safeguard of ["none", "lm", "lm+trust"] as const) {
        const opt = mlhf<P>({ metaWeights: meta, kinds: KINDS, ...BLOWUP, safeguard });
        let params = clone(prob.params), state = opt.init(params);
        const first = lossOf(prob.model, softmaxCrossEntropy, params, prob.batch);
        let worst = first, rejected = 0;
        for (let i = 0; i < 10; i++) {
          const r = trainStepSync({
            model: prob.model,
            lossFn: softmaxCrossEntropy,
            optimizer: opt,
            params,
            state,
            batch: prob.batch,
          });
          tf.dispose(r.aux);
          params = r.params;
          state = r.state;
          rejected += r.diagnostics.rejected ?? 0;
          const now = lossOf(prob.model, softmaxCrossEntropy, params, prob.batch);
          worst = Number.isFinite(now) ? Math.max(worst, now) : Infinity;
        }
        disposeState(state);
        tf.dispose(leaves(params));
        if (safeguard === "none") {
          assert.ok(!(worst < 10 * first), `none: worst loss ${worst} (first ${first})`);
        } else {
          assert.ok(worst <= first, `${safeguard}: worst loss ${worst} > first ${first}`);
          if (safeguard === "lm") assert.ok(rejected >= 1, `lm: ${rejected} rejected`);
        }
      }
    });
  } finally {
    tf.dispose([prob.params, prob.batch] as unknown as tf.TensorContainer);
    tf.dispose(metaWeightTensors(meta));
  }
});

Deno.test("safeguard lm: a good step on a quadratic (ρ ≈ 1) lowers μ by ω; μ·λ is the damping CG used", async () => {
  // z = x·w + b with squared error: the loss is the quadratic model, so ρ = 1 up to rounding.
  const x = tf.tensor(normal(keyFromSeed(1), 10 * 4), [10, 4]);
  const y = tf.tensor(normal(keyFromSeed(2), 10 * 2), [10, 2]);
  const params: P = { w: tf.tensor(normal(keyFromSeed(3), 8, 0, 0.1), [4, 2]), b: tf.zeros([2]) };
  const model: ModelFn<P> = (nn, p, xx) => nn.dense(xx, p.w, p.b);
  const meta = initMetaWeights(keyFromSeed(98), MLHF_DEFAULTS, KINDS);
  try {
    await withNoLeaks(() => {
      const opt = mlhf<P>({
        metaWeights: meta,
        kinds: KINDS,
        learningRate: 1,
        cgIterations: 3,
        safeguard: "lm",
        safeguardOptions: { muMin: 0.1 },
      });
      const r = oneStep(opt, { model, params, batch: { x, y } }, squaredError);
      try {
        assert.equal(r.diagnostics.rejected, 0);
        assertAllClose(r.diagnostics.rho, 1, { rtol: 0, atol: 1e-3 }, "ρ");
        assertAllClose(r.diagnostics.mu, SAFEGUARD_DEFAULTS.decay, { rtol: 1e-7, atol: 0 }, "μ");
        assert.ok(r.after < r.before);
      } finally {
        r.dispose();
      }
      // The direction with μ = 3: its λ is 3× the plain one, and ⟨x, g − r⟩ − ⟨x, λ ⊙ x⟩ is
      // ⟨x, G x⟩ (the identity the predicted reduction uses).
      tf.tidy(() => {
        const gn = gaussNewtonProduct(model, squaredError, params, { x, y });
        try {
          const s0 = opt.init(params);
          const plainD = mlhfDirection(meta, s0, gn.gradient, gn.product, KINDS, MLHF_DEFAULTS);
          const mu = tf.scalar(3);
          const d = mlhfDirection(
            meta,
            s0,
            gn.gradient,
            gn.product,
            KINDS,
            MLHF_DEFAULTS,
            undefined,
            mu,
          );
          assertAllClose(d.lambda as P, scale(plainD.lambda as P, 3), { rtol: 1e-6 }, "μ·λ");
          const lx = leaves(d.lambda as P);
          const xGx = vdot(d.x, gn.product(d.x)).dataSync()[0];
          const viaCg = tf.sub(
            vdot(d.x, unflatten(d.x, leaves(gn.gradient).map((g, i) => tf.sub(g, leaves(d.r)[i])))),
            tf.addN(leaves(d.x).map((t, i) => tf.sum(tf.mul(tf.mul(t, t), lx[i])))),
          ).dataSync()[0];
          assertAllClose(viaCg, xGx, { rtol: 1e-4, atol: 1e-7 }, "⟨x, G x⟩ from CG's by-products");
          disposeState(s0);
        } finally {
          gn.dispose();
        }
      });
    });
  } finally {
    tf.dispose([x, y, params.w, params.b]);
    tf.dispose(metaWeightTensors(meta));
  }
});

/** The rule in plain float64 (docs/algorithm.md#safeguard). */
const refRule = (
  o: SafeguardOptions,
  mu: number,
  c: {
    theta: number[];
    g: number[];
    x: number[];
    r: number[];
    lambda: number[];
    loss: number;
    lossAt: (t: number[]) => number;
  },
  eta: number,
) => {
  const dot = (a: number[], b: number[]) => a.reduce((s, v, i) => s + v * b[i], 0);
  const trust = o.mode === "trust" || o.mode === "lm+trust";
  const lmOn = o.mode === "lm" || o.mode === "lm+trust";
  let s = 1, accept = true;
  if (trust) {
    const step = eta * Math.sqrt(dot(c.x, c.x)),
      radius = o.trustFraction * Math.sqrt(dot(c.theta, c.theta));
    s = step > radius ? radius / step : 1;
    accept = Number.isFinite(step);
  }
  let rho = 0;
  if (lmOn) {
    const xGx = dot(c.x, c.g.map((g, i) => g - c.r[i])) -
      dot(c.x, c.x.map((v, i) => v * c.lambda[i]));
    const predicted = eta * s * dot(c.g, c.x) - 0.5 * eta * eta * s * s * xGx;
    const actual = c.loss - c.lossAt(c.theta.map((t, i) => t - eta * s * c.x[i]));
    const raw = predicted > 0 ? actual / predicted : actual > 0 ? 0 : -1;
    rho = Number.isFinite(raw) ? raw : -1;
    mu = rho < 0.25
      ? Math.min(mu / o.decay, o.muMax)
      : rho > 0.75
      ? Math.max(mu * o.decay, o.muMin)
      : mu;
    accept = accept && rho >= 0;
  }
  return {
    mu,
    rho,
    s,
    accept,
    update: c.x.map((v) => (accept ? -eta * s * v : 0)),
  };
};

Deno.test("safeguard: the rule's decisions over a sequence of steps equal a float64 reference", async () => {
  const n = 5;
  const rand = (seed: number, std = 1) => Array.from(normal(keyFromSeed(seed), n, 0, std));
  const theta = rand(1);
  const target = rand(2, 0.5);
  // L(θ′) = Σ w_i (θ′_i − t_i)² + ε Σ (θ′_i − t_i)⁴: the quartic term makes the model imperfect.
  const weights = rand(3).map((v) => 0.5 + Math.abs(v));
  const lossRef = (t: number[]) =>
    t.reduce((s, v, i) => s + weights[i] * (v - target[i]) ** 2 + 0.3 * (v - target[i]) ** 4, 0);
  const lossTf = (t: tf.Tensor) =>
    tf.tidy(() => {
      const d = tf.sub(t, tf.tensor1d(target));
      return tf.sum(tf.add(tf.mul(tf.tensor1d(weights), tf.square(d)), tf.mul(0.3, tf.pow(d, 4))));
    }) as tf.Scalar;
  const f32 = (a: number[]) => Array.from(Float32Array.from(a));
  const g = f32(theta.map((v, i) => 2 * weights[i] * (v - target[i])));
  const newton = g.map((v, i) => v / (2 * weights[i]));
  const dot = (u: number[], v: number[]) => u.reduce((t, x, i) => t + x * v[i], 0);
  /**
   * A step whose residual r = g − βx makes the quadratic model predict actual/ρ (with s = 1), so ρ
   * lands in the chosen branch; `rho: null` keeps r small (the model of the loss's own curvature).
   */
  const at = (
    x: number[],
    eta: number,
    rho: number | null,
    lossShift = 0,
  ): { x: number[]; r: number[]; lambda: number[]; eta: number; lossShift: number } => {
    const lambda = x.map((_, i) => 1e-3 * (i + 1));
    const xx = dot(x, x), xlx = dot(x, x.map((v, i) => v * lambda[i]));
    const actual = lossRef(theta) - lossRef(theta.map((t, i) => t - eta * x[i]));
    const predicted = rho === null ? NaN : actual / rho;
    const xGx = rho === null ? 2 * dot(x, x) : (2 * (eta * dot(g, x) - predicted)) / (eta * eta);
    const beta = (xGx + xlx) / xx;
    return {
      x: f32(x),
      r: f32(g.map((v, i) => v - beta * x[i])),
      lambda: f32(lambda),
      eta,
      lossShift,
    };
  };
  // Steps: good (μ down), fair (μ kept), poor but taken (μ up), bad (rejected), a non-finite loss,
  // a NaN direction, a model that predicts a rise where the loss falls (ρ := 0), an overshoot.
  const cases = [
    at(newton, 1, 2),
    at(newton.map((v) => 0.5 * v), 1, 0.5),
    at(newton.map((v) => 0.7 * v), 1, 0.1),
    at(newton.map((v) => 3 * v), 1, 0.5),
    at(newton, 1, 1, NaN),
    at(newton.map((v, i) => (i === 2 ? NaN : v)), 1, null),
    at(newton.map((v) => 0.3 * v), 1, -2),
    at(newton, 4, null),
  ];
  for (const mode of ["lm", "trust", "lm+trust"] as const) {
    const o: SafeguardOptions = { ...SAFEGUARD_DEFAULTS, mode, muMin: 0.5, muMax: 1.5 };
    await withNoLeaks(() => {
      let state: SafeguardState = initSafeguardState(o);
      let mu = 1;
      const decisions: string[] = [], expected: string[] = [], branches: string[] = [];
      try {
        for (const [k, c] of cases.entries()) {
          const thetaT = tf.tensor1d(theta), gT = tf.tensor1d(g);
          const lossNow = lossRef(f32(theta));
          const lossAt = (p: { v: tf.Tensor }) =>
            tf.tidy(() => tf.add(lossTf(p.v), c.lossShift ?? 0)) as tf.Scalar;
          const ref = refRule(o, mu, {
            theta: f32(theta),
            g,
            x: c.x,
            r: c.r,
            lambda: c.lambda,
            loss: Math.fround(lossNow),
            lossAt: (t) => lossRef(t) + (c.lossShift ?? 0),
          }, c.eta);
          const out = tf.tidy(() => {
            const r = safeguardStep(o, state, {
              params: { v: thetaT },
              gradient: { v: gT },
              x: { v: tf.tensor1d(c.x) },
              r: { v: tf.tensor1d(c.r) },
              lambda: { v: tf.tensor1d(c.lambda) },
              learningRate: c.eta,
              loss: tf.scalar(lossNow),
              lossAt,
            });
            return { update: r.update.v, next: r.next } as unknown as tf.TensorContainer;
          }) as unknown as { update: tf.Tensor; next: SafeguardState };
          tf.dispose([thetaT, gT]);
          disposeState(state);
          state = out.next;
          const at = `${mode}, step ${k}`;
          decisions.push(`${out.next.rejected.dataSync()[0] === 0}`);
          expected.push(`${ref.accept}`);
          assertAllClose(out.next.mu.dataSync()[0], ref.mu, { rtol: 1e-6, atol: 0 }, `${at}: μ`);
          assertAllClose(
            out.next.rho.dataSync()[0],
            ref.rho,
            { rtol: 1e-4, atol: 1e-5 },
            `${at}: ρ`,
          );
          assertAllClose(
            out.next.trustScale.dataSync()[0],
            ref.s,
            { rtol: 1e-6, atol: 0 },
            `${at}: s`,
          );
          assertAllClose(out.update, ref.update, { rtol: 1e-5, atol: 1e-7 }, `${at}: update`);
          out.update.dispose();
          branches.push(ref.mu < mu ? "down" : ref.mu > mu ? "up" : "kept");
          mu = ref.mu;
        }
        assert.deepEqual(decisions, expected, mode);
      } finally {
        disposeState(state);
      }
      // With lm alone the sequence visits every branch: μ down, kept and up (clipped to μ_max = 1.5
      // at the seventh step, so the eighth keeps it); taken and rejected.
      if (mode === "lm") {
        assert.deepEqual(branches, ["down", "kept", "up", "up", "up", "up", "up", "kept"]);
        assert.deepEqual(expected, [
          "true",
          "true",
          "true",
          "false",
          "false",
          "false",
          "true",
          "false",
        ]);
      }
    });
  }
});

Deno.test("safeguard: no host read inside the safeguard; the optimizer's update reads the host as often as without it", async () => {
  const prob = logistic();
  const meta = tinyLambdaMeta();
  const proto = tf.Tensor.prototype as unknown as Record<string, unknown>;
  const names = ["dataSync", "arraySync", "data", "array", "bufferSync", "buffer"];
  const saved = names.map((k) => proto[k]);
  let reads = 0, forbid = false;
  const patch = () =>
    names.forEach((k, i) => {
      proto[k] = function (this: tf.Tensor, ...a: unknown[]) {
        if (forbid) throw new Error(`host read (${k}) inside the safeguard`);
        reads++;
        return (saved[i] as (...a: unknown[]) => unknown).apply(this, a);
      };
    });
  const unpatch = () => names.forEach((k, i) => (proto[k] = saved[i]));
  try {
    await withNoLeaks(() => {
      const gn = gaussNewtonProduct(prob.model, softmaxCrossEntropy, prob.params, prob.batch);
      try {
        // The safeguard alone, with the model's loss on the batch as lossAt: no read at all.
        tf.tidy(() => {
          const o: SafeguardOptions = { ...SAFEGUARD_DEFAULTS, mode: "lm+trust" };
          const s0 = initSafeguardState(o);
          patch();
          forbid = true;
          try {
            safeguardStep(o, s0, {
              params: prob.params,
              gradient: gn.gradient,
              x: gn.gradient,
              r: scale(gn.gradient, 0.1),
              lambda: 1e-3,
              learningRate: 1,
              loss: gn.loss,
              lossAt: (p) =>
                softmaxCrossEntropy.value(
                  prob.model(plain, p, prob.batch.x) as tf.Tensor,
                  prob.batch.y,
                ),
            });
          } finally {
            forbid = false;
            unpatch();
          }
          disposeState(s0);
        });
        // The whole update (CG's stopping test reads ‖r‖ each iteration): the same count of reads
        // with and without the safeguard.
        const counts = (["none", "lm+trust"] as const).map((safeguard) => {
          const opt = mlhf<P>({ metaWeights: meta, kinds: KINDS, ...BLOWUP, safeguard });
          const state = opt.init(prob.params);
          reads = 0;
          patch();
          try {
            tf.tidy(() => {
              opt.update(gn.gradient, state, {
                params: prob.params,
                batch: prob.batch,
                loss: gn.loss,
                curvature: gn,
                model: prob.model,
                lossFn: softmaxCrossEntropy,
              });
            });
          } finally {
            unpatch();
          }
          disposeState(state);
          return reads;
        });
        assert.equal(counts[1], counts[0], `host reads: none ${counts[0]}, lm+trust ${counts[1]}`);
      } finally {
        gn.dispose();
      }
    });
  } finally {
    unpatch();
    tf.dispose([prob.params, prob.batch] as unknown as tf.TensorContainer);
    tf.dispose(metaWeightTensors(meta));
  }
});

Deno.test("safeguard none: the original's update and state, no diagnostics", async () => {
  const prob = logistic();
  const meta = initMetaWeights(keyFromSeed(97), MLHF_DEFAULTS, KINDS);
  try {
    await withNoLeaks(() => {
      const gn = gaussNewtonProduct(prob.model, softmaxCrossEntropy, prob.params, prob.batch);
      try {
        for (
          const opt of [
            mlhf<P>({ metaWeights: meta, kinds: KINDS, learningRate: 2, cgIterations: 3 }),
            mlhf<P>({
              metaWeights: meta,
              kinds: KINDS,
              learningRate: 2,
              cgIterations: 3,
              safeguard: "none",
            }),
          ]
        ) {
          assert.equal(opt.diagnostics, undefined);
          tf.tidy(() => {
            const s0 = opt.init(prob.params);
            const [u, s1] = opt.update(gn.gradient, s0, {
              params: prob.params,
              curvature: gn,
              loss: gn.loss,
            });
            const d = mlhfDirection(meta, s0, gn.gradient, gn.product, KINDS, {
              ...MLHF_DEFAULTS,
              cgIterations: 3,
            });
            assert.deepEqual(Object.keys(s1).sort(), ["rPrev", "rnn", "xPrev"]);
            assert.deepEqual(arraysOf(u), arraysOf(scale(d.x, -2)));
            assert.deepEqual(arraysOf(s1), arraysOf(d.next));
            disposeState(s0);
          });
        }
      } finally {
        gn.dispose();
      }
    });
  } finally {
    tf.dispose([prob.params, prob.batch] as unknown as tf.TensorContainer);
    tf.dispose(metaWeightTensors(meta));
  }
});
