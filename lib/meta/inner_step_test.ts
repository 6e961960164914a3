/**
 * Meta-training's per-step pieces (docs/algorithm.md#the-update,
 * docs/algorithm.md#meta-losses) pinned against a plain float64 computation from the step's own
 * g, θ and (x, r) (the direction itself is pinned by lib/optim/mlhf/direction_test.ts): the Hessian loss h = −⟨g, x⟩ / √⟨x, g − r⟩, the clip
 * x̃ = x·min(1, 0.25‖θ‖ / (η‖x‖)) and the noisy update θ′ = θ − η·(u ⊙ x̃), with the clip inactive
 * (η = 1) and active (η = 100); over a two-step window, H = mean h_i and the meta-loss
 * M = ½(ℓ′₀ + ℓ₁) − ℓ₀ (one term, softmax weight 1); `windowNoise` stays in [1 − w, 1 + w].
 * Tolerance: |actual − expected| ≤ 1e-5·|expected| + 1e-6·s, s = max|expected| (for M, a difference
 * of losses, at least ℓ₀).
 */
import { tf } from "../_deps.ts";
import { useTestBackend } from "../../tests/_util/backend.ts";
import { assertAllClose, withNoLeaks } from "../../tests/_util/numeric.ts";
import { tinyNet } from "../../tests/_util/nets.ts";
import { keyFromSeed, normal, uniform } from "../prng.ts";
import { leaves, mapTree, type Params } from "../tree.ts";
import { tidyValue } from "../scope.ts";
import { softmaxCrossEntropy } from "../../ops/losses.ts";
import { type Batch, gaussNewtonProduct } from "../curvature/gauss_newton.ts";
import { initMetaWeights } from "../optim/mlhf/meta_weights.ts";
import { initMlhfState } from "../optim/mlhf/direction.ts";
import type { ParamKind } from "../param_kinds.ts";
import {
  META_TRAIN_DEFAULTS,
  type MetaProblem,
  type MetaTrainOptions,
  unrollWindow,
  windowNoise,
} from "./meta_train.ts";

await useTestBackend();

type P = Record<string, tf.Tensor>;
const kinds: ParamKind[] = ["dense/kernel", "dense/bias", "dense/kernel", "dense/bias"];

const f64 = (p: Params): Float64Array =>
  Float64Array.from(leaves(p).flatMap((t) => [...t.dataSync()]));
const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};
/** Asserts the tolerance of the module doc; `floor` is the least scale (ℓ₀ for M, a difference). */
const close = (
  actual: ArrayLike<number> | number,
  expected: ArrayLike<number> | number,
  what: string,
  floor = 0,
) => {
  const e = typeof expected === "number" ? [expected] : Array.from(expected);
  const scale = e.reduce((m, v) => Math.max(m, Math.abs(v)), floor);
  assertAllClose(typeof actual === "number" ? [actual] : Array.from(actual), e, {
    rtol: 1e-5,
    atol: 1e-6 * scale,
  }, what);
};

/** One training-mode step's pieces, plainly: h, the clip factor and θ′. */
const reference = (
  theta: Float64Array,
  g: Float64Array,
  x: Float64Array,
  r: Float64Array,
  u: Float64Array,
  lr: number,
  clipFraction: number,
) => {
  const h = -dot(g, x) / Math.sqrt(dot(x, g.map((gi, i) => gi - r[i])));
  const factor = Math.min(
    1,
    clipFraction * Math.sqrt(dot(theta, theta)) / (lr * Math.sqrt(dot(x, x))),
  );
  return { h, factor, theta: theta.map((t, i) => t - lr * u[i] * x[i] * factor) };
};

for (const lr of [1, 100]) {
  Deno.test(`meta-training's inner step (η = ${lr}, clip ${lr === 1 ? "inactive" : "active"}): h, clip, noise, H and M equal a plain computation`, async () => {
    const net = tinyNet("mlpSigmoid", 7, 6);
    const batches: Batch[] = [0, 1].map((i) => ({
      x: tf.tensor(normal(keyFromSeed(70 + i), 6 * 4), [6, 4]),
      y: net.batch.y.clone(),
    }));
    const pr: MetaProblem<P> = { model: net.model, lossFn: softmaxCrossEntropy, kinds };
    const o: MetaTrainOptions = { ...META_TRAIN_DEFAULTS, metaRollBack: 1, lr };
    const meta = initMetaWeights(keyFromSeed(8), o, ["dense/kernel", "dense/bias"]);
    try {
      await withNoLeaks(() =>
        tidyValue(() => {
          /** g and L at (θ, B), from the curvature module (not from meta-training). */
          const at = (theta: P, b: Batch) => {
            const gn = gaussNewtonProduct(net.model, softmaxCrossEntropy, theta, b);
            const out = { g: f64(gn.gradient), loss: gn.loss.dataSync()[0] };
            gn.dispose();
            return out;
          };
          const noise = [1, 2].map((s) =>
            mapTree(net.params, (t, j) =>
              tf.tensor(uniform(keyFromSeed(90 + 10 * s + j), t.size, 0.98, 1.02), t.shape))
          );
          const inner0 = initMlhfState(net.params, kinds, o);
          // Step 0 alone, then step 1 alone from where it ended.
          const w0 = unrollWindow(pr, o, meta, net.params, inner0, [batches[0]], [noise[0]]);
          w0.release();
          const s0 = at(net.params, batches[0]);
          const ref0 = reference(
            f64(net.params),
            s0.g,
            f64(w0.innerEnd.xPrev),
            f64(w0.innerEnd.rPrev),
            f64(noise[0]),
            lr,
            o.clipFraction,
          );
          if ((ref0.factor < 1) !== (lr !== 1)) {
            throw new Error(
              `η = ${lr}: clip factor ${ref0.factor}, the test expects it ${
                lr === 1 ? "= 1" : "< 1"
              }`,
            );
          }
          close(w0.hessianLoss.dataSync()[0], ref0.h, "step 0 h");
          close(f64(w0.thetaEnd), ref0.theta, "step 0 θ′");
          const w1 = unrollWindow(pr, o, meta, w0.thetaEnd, w0.innerEnd, [batches[1]], [noise[1]]);
          w1.release();
          const s1 = at(w0.thetaEnd, batches[1]);
          const ref1 = reference(
            f64(w0.thetaEnd),
            s1.g,
            f64(w1.innerEnd.xPrev),
            f64(w1.innerEnd.rPrev),
            f64(noise[1]),
            lr,
            o.clipFraction,
          );
          close(w1.hessianLoss.dataSync()[0], ref1.h, "step 1 h");
          close(f64(w1.thetaEnd), ref1.theta, "step 1 θ′");
          // Both steps as one window: H = mean h_i, M = ½(ℓ′₀ + ℓ₁) − ℓ₀, same end point.
          const w = unrollWindow(
            pr,
            { ...o, metaRollBack: 2 },
            meta,
            net.params,
            inner0,
            batches,
            noise,
          );
          w.release();
          close(w.hessianLoss.dataSync()[0], (ref0.h + ref1.h) / 2, "window H");
          const m = 0.5 * (at(w0.thetaEnd, batches[0]).loss + s1.loss) - s0.loss;
          close(w.metaLoss.dataSync()[0], m, "window M", s0.loss);
          close(f64(w.thetaEnd), ref1.theta, "window θ_T");
        })
      );
    } finally {
      tf.dispose(
        [net.params, net.batch, batches, leaves(meta as Params)] as unknown as tf.TensorContainer,
      );
    }
  });
}

Deno.test("windowNoise: u ∈ [1 − w, 1 + w], different per step and leaf, fixed by the key", () => {
  tidyValue(() => {
    const like = { a: tf.zeros([50]), b: tf.zeros([2, 25]) };
    const n = windowNoise(keyFromSeed(3), like, 2, 0.02);
    const again = windowNoise(keyFromSeed(3), like, 2, 0.02);
    const vals = n.map((t) => f64(t));
    for (const v of vals) {
      if (!v.every((x) => x >= 0.98 - 1e-7 && x <= 1.02 + 1e-7)) {
        throw new Error("u outside [0.98, 1.02]");
      }
      if (!(Math.max(...v) - Math.min(...v) > 0.02)) throw new Error("u nearly constant");
    }
    if (vals[0].every((x, i) => x === vals[1][i])) throw new Error("same noise at both steps");
    if (vals[0].slice(0, 25).every((x, i) => x === vals[0][50 + i])) {
      throw new Error("same noise in both leaves");
    }
    close(f64(again[1]), vals[1], "same key, same noise");
  });
});
