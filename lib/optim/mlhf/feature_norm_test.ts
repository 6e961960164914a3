/**
 * Scale-free features: over any sequence of steps, a per-tensor scale of the gradient-type
 * features (g, r) and of the x-type ones leaves the normalized features unchanged (property
 * test); in `mlhfDirection` with `featureNorm: "rms"`, λ and P of a first step do not change when
 * each gradient tensor is scaled, while with the original's raw features they do; the default
 * state carries no feature norms.
 */
import { tf } from "../../_deps.ts";
import { assert, fc } from "../../../tests/_util/deps.ts";
import { useTestBackend } from "../../../tests/_util/backend.ts";
import { assertAllClose, withNoLeaks } from "../../../tests/_util/numeric.ts";
import { keyFromSeed, normal } from "../../prng.ts";
import { leaves, mapTree, type Params } from "../../tree.ts";
import type { ParamKind } from "../../param_kinds.ts";
import { type FeatureNormState, featureNormStep, initFeatureNorm } from "./feature_norm.ts";
import { stopGradient } from "./stop_gradient.ts";
import { initMlhfState, MLHF_DEFAULTS, mlhfDirection, type MlhfOptions } from "./direction.ts";
import { initMetaWeights, metaWeightTensors } from "./meta_weights.ts";

await useTestBackend();

/** Runs the feature norm over `steps` of (g, x) leaf values; returns every normalized feature. */
const features = (steps: { g: Float32Array[]; x: Float32Array[] }[]): number[][] =>
  tf.tidy(() => {
    let s = initFeatureNorm(steps[0].g.length);
    const out: number[][] = [];
    for (const { g, x } of steps) {
      const gt = g.map((v) => tf.tensor1d(v)), xt = x.map((v) => tf.tensor1d(v));
      const f = featureNormStep(s, gt, xt);
      gt.forEach((t, i) => out.push(Array.from(f.normalize(t, i, "g").dataSync())));
      xt.forEach((t, i) => out.push(Array.from(f.normalize(t, i, "x").dataSync())));
      s = f.next;
    }
    return out;
  });

Deno.test("feature norm: normalized features are invariant to a per-tensor scale of g and of x", () => {
  const leaf = fc.integer({ min: 1, max: 6 });
  const scale = fc.double({ min: -3, max: 3, noNaN: true }).map((e) => 10 ** e);
  fc.assert(
    fc.property(
      fc.array(leaf, { minLength: 1, maxLength: 3 }),
      fc.integer({ min: 1, max: 4 }),
      fc.integer({ min: 1, max: 2 ** 30 }),
      fc.array(scale, { minLength: 6, maxLength: 6 }),
      (sizes, T, seed, cs) => {
        const steps = Array.from({ length: T }, (_, t) => ({
          g: sizes.map((n, i) => normal(keyFromSeed(seed + 100 * t + i), n, 0, 1e-2)),
          // x_prev is 0 at the first step, as in MLHF.
          x: sizes.map((n, i) =>
            t === 0 ? new Float32Array(n) : normal(keyFromSeed(seed + 100 * t + 50 + i), n, 0, 3)
          ),
        }));
        const scaled = steps.map(({ g, x }) => ({
          g: g.map((v, i) => v.map((e) => e * cs[i % 3])),
          x: x.map((v, i) => v.map((e) => e * cs[3 + (i % 3)])),
        }));
        const a = features(steps), b = features(scaled);
        a.forEach((v, i) => assertAllClose(b[i], v, { rtol: 1e-5, atol: 1e-6 }, `feature ${i}`));
        // Normalized: the g features of the first step have RMS 1 per tensor.
        sizes.forEach((n, i) => {
          const rms = Math.sqrt(a[i].reduce((s, e) => s + e * e, 0) / n);
          assert(Math.abs(rms - 1) < 1e-5, `leaf ${i}: RMS ${rms}`);
        });
      },
    ),
    { numRuns: 60 },
  );
});

type P = Record<string, tf.Tensor>;
const KINDS: ParamKind[] = ["dense/kernel", "dense/bias", "dense/kernel"];
const SHAPES: Record<string, number[]> = { w1: [2, 2], b1: [2], w2: [3] };

/** λ and P of a first MLHF step for gradient c_k·g_k per leaf k. */
const firstStep = (o: MlhfOptions, cs: readonly number[]) =>
  tf.tidy(() => {
    const meta = initMetaWeights(keyFromSeed(3), o, ["dense/kernel", "dense/bias"]);
    const params: P = Object.fromEntries(
      Object.entries(SHAPES).map(([k, shape]) => [k, tf.zeros(shape)]),
    );
    const g: P = Object.fromEntries(
      Object.entries(SHAPES).map(([k, shape], i) => [
        k,
        tf.mul(
          tf.tensor(normal(keyFromSeed(20 + i), shape.reduce((a, b) => a * b), 0, 1e-2), shape),
          cs[i],
        ),
      ]),
    );
    const state = initMlhfState(params, KINDS, o);
    const d = mlhfDirection(meta, state, g, (v: P) => mapTree(v, (t) => tf.mul(t, 0.5)), KINDS, o);
    const out = {
      lambda: leaves(d.lambda as Params).flatMap((t) => Array.from(t.dataSync())),
      precond: leaves(d.precond!).flatMap((t) => Array.from(t.dataSync())),
      features: d.next.features,
    };
    tf.dispose(metaWeightTensors(meta));
    return { lambda: out.lambda, precond: out.precond, hasFeatures: out.features !== undefined };
  });

Deno.test("feature norm: with rms, a first step's λ and P ignore per-tensor gradient scales; raw ones do not", () =>
  withNoLeaks(() => {
    const rms: MlhfOptions = { ...MLHF_DEFAULTS, featureNorm: "rms" };
    const cs = [1e-3, 40, 7];
    const a = firstStep(rms, [1, 1, 1]), b = firstStep(rms, cs);
    assert(a.hasFeatures && b.hasFeatures, "the rms state carries its feature norms");
    assertAllClose(b.lambda, a.lambda, { rtol: 1e-5, atol: 0 }, "λ");
    assertAllClose(b.precond, a.precond, { rtol: 1e-5, atol: 0 }, "P");
    const r1 = firstStep(MLHF_DEFAULTS, [1, 1, 1]), r2 = firstStep(MLHF_DEFAULTS, cs);
    assert.equal(r1.hasFeatures, false, "the default state has no feature norms");
    const most = Math.max(...r1.lambda.map((v, i) => Math.abs(v - r2.lambda[i]) / v));
    assert(most > 1e-4, `raw features: λ moved by at most ${most} (relative)`);
  }));

Deno.test("feature norm: sits on an autodiff tape over several steps (as in a meta-training window)", () =>
  withNoLeaks(() => {
    const a = tf.tensor1d([0.3, -0.2, 0.5]);
    // x_prev of step t is a stop-gradient of a taped value; the loss reads the normalized features.
    let feature!: tf.Tensor;
    const [grad] = tf.grads((w: tf.Tensor) => {
      let s: FeatureNormState = initFeatureNorm(1);
      let x = tf.zerosLike(w), loss = tf.scalar(0);
      for (let t = 0; t < 3; t++) {
        const f = featureNormStep(s, [tf.add(stopGradient(w), t)], [stopGradient(x)]);
        feature = f.normalize(stopGradient(x), 0, "x");
        loss = tf.add(loss, tf.sum(tf.mul(w, feature)));
        x = tf.mul(w, t + 1);
        s = f.next;
      }
      tf.keep(feature);
      return loss;
    })([a]);
    // Every path but the direct one is cut: ∂loss/∂w = Σ_t feature_t, where feature_0 = 0,
    // feature_1 = w/RMS(w) (ν_x = mean(w²)) and feature_2 = 2w/√(0.9·mean(w²) + 0.1·mean(4w²)).
    const rms = Math.sqrt((0.09 + 0.04 + 0.25) / 3);
    const want = [0.3, -0.2, 0.5].map((w) => w / rms + 2 * w / (Math.sqrt(1.3) * rms));
    assertAllClose(grad, want, { rtol: 1e-5, atol: 1e-7 }, "∂loss/∂w");
    tf.dispose([grad, feature, a]);
  }));
