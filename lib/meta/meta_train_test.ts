/**
 * Meta-training: the meta-gradient against central finite differences on windows where no
 * stop-gradient cuts a dependence on the meta-weights (T = 1 for the Hessian loss, T = 2 for the
 * meta-loss), gradient routing, a short run that lowers the mean Hessian loss, no leaks.
 */
import { tf } from "../_deps.ts";
import { useTestBackend } from "../../tests/_util/backend.ts";
import { withNoLeaks } from "../../tests/_util/numeric.ts";
import { tinyNet } from "../../tests/_util/nets.ts";
import { keyFromSeed, normal } from "../prng.ts";
import { leaves, mapTree, type Params } from "../tree.ts";
import { tidyValue } from "../scope.ts";
import { softmaxCrossEntropy } from "../../ops/losses.ts";
import { initMetaWeights } from "../optim/mlhf/meta_weights.ts";
import {
  initMetaTrainState,
  META_TRAIN_DEFAULTS,
  metaIteration,
  type MetaProblem,
  type MetaTrainOptions,
  metaTrainStateTensors,
  splitCoordinates,
  tapedCoordinates,
  tapedCoordinateTensors,
  unrollWindow,
  windowGradient,
  windowNoise,
} from "./meta_train.ts";
import { windowMetaLoss } from "./meta_loss.ts";
import { initMlhfState, type MetaWeights, type TapedCoordinates } from "../optim/mlhf/direction.ts";
import type { ParamKind } from "../param_kinds.ts";
import type { Batch } from "../curvature/gauss_newton.ts";
import { mlp } from "../../models/mlp.ts";
import { kindLeaves } from "../../models/types.ts";

await useTestBackend();

type P = Record<string, tf.Tensor>;
const kinds: ParamKind[] = ["dense/kernel", "dense/bias", "dense/kernel", "dense/bias"];

const setup = (
  seed: number,
  T: number,
  kernelScale = 1,
  extra: Partial<MetaTrainOptions> = {},
  headScale = 1,
) => {
  const net = tinyNet("mlpSigmoid", seed, 6);
  const batches: Batch[] = Array.from({ length: T }, (_, i) => ({
    x: tf.tensor(normal(keyFromSeed(seed * 10 + i), 6 * 4), [6, 4]),
    y: net.batch.y.clone(),
  }));
  const pr: MetaProblem<P> = { model: net.model, lossFn: softmaxCrossEntropy, kinds };
  const o: MetaTrainOptions = {
    ...META_TRAIN_DEFAULTS,
    metaRollBack: T,
    cgIterations: 2,
    lr: 1,
    ...extra,
  };
  const meta0 = initMetaWeights(keyFromSeed(seed + 5), o, ["dense/kernel", "dense/bias"]);
  // Larger first-layer and head kernels make the nets' outputs vary across coordinates (the tiny
  // net's gradients are ~1e-2): a uniform P leaves CG unchanged, so H would not depend on it.
  const meta = kernelScale === 1 ? meta0 : (() => {
    const scaled = mapTree(
      meta0 as Params,
      (t) =>
        t.shape.length === 2 && t.shape[1] === 16 && t.shape[0] === 7
          ? tf.mul(t, kernelScale)
          : t.shape.length === 2 && t.shape[0] === 4 && t.shape[1] === 1
          ? tf.mul(t, headScale)
          : t.clone(),
    );
    tf.dispose(leaves(meta0 as Params));
    return scaled as MetaWeights;
  })();
  const dispose = () =>
    tf.dispose(
      [net.params, net.batch, batches, leaves(meta as Params)] as unknown as tf.TensorContainer,
    );
  return { net, batches, pr, o, meta, dispose };
};

/** Value of the scaled loss for meta-weights φ (no gradient). */
const lossAt = (
  s: ReturnType<typeof setup>,
  meta: MetaWeights,
  which: "meta" | "hessian",
  noise: P[],
): number =>
  tidyValue(() => {
    const inner = initMlhfState(s.net.params, kinds, s.o);
    const w = unrollWindow(s.pr, s.o, meta, s.net.params, inner, s.batches, noise);
    w.release();
    return which === "meta"
      ? s.o.metaLossScale * w.metaLoss.dataSync()[0]
      : w.hessianLoss.dataSync()[0];
  });

/** Central differences of the loss along a few single meta-weight coordinates of one network. */
const checkAgainstFd = (
  T: number,
  group: "lambda" | "precond",
  which: "meta" | "hessian",
  kernelScale = 1,
  extra: Partial<MetaTrainOptions> = {},
  headScale = 1,
) => {
  const s = setup(3, T, kernelScale, extra, headScale);
  try {
    tidyValue(() => {
      const noise = windowNoise(keyFromSeed(77), s.net.params, T, s.o.noise);
      const inner = initMlhfState(s.net.params, kinds, s.o);
      const { grads, window } = windowGradient(
        s.pr,
        s.o,
        s.meta,
        group,
        s.net.params,
        inner,
        s.batches,
        noise,
      );
      void window;
      const gLeaves = leaves(grads as Params);
      // The group's first network's first-layer kernel is leaf 0 of the group tree; find it in φ.
      const target = group === "lambda"
        ? s.meta["dense/kernel"]!.lambda!
        : s.meta["dense/kernel"]!.precond!;
      const kernel = target.layers[0].kernel;
      const gKernel = gLeaves[0].dataSync();
      const base = Math.abs(lossAt(s, s.meta, which, noise));
      const fds: number[] = [], ours: number[] = [];
      const h = 0.2;
      // The six coordinates of the [7, 16] first-layer kernel with the largest analytic derivative
      // (many are exactly 0 at the first step: x₀ = 0 and h = 0 make rows 2–6 inert), so the FD,
      // limited by float32 resolution of the loss, measures something.
      const top = [...gKernel.keys()].sort((a, b) => Math.abs(gKernel[b]) - Math.abs(gKernel[a]))
        .slice(0, 6);
      for (const idx of top) {
        const at = (delta: number) => {
          const perturbed = mapTree(s.meta as Params, (t) => {
            if (t !== kernel) return t;
            const v = Float32Array.from(t.dataSync());
            v[idx] += delta;
            return tf.tensor(v, t.shape);
          }) as MetaWeights;
          return lossAt(s, perturbed, which, noise);
        };
        fds.push((at(h) - at(-h)) / (2 * h));
        ours.push(gKernel[idx]);
      }
      const nrm = (xs: number[]) => Math.sqrt(xs.reduce((a, v) => a + v * v, 0));
      const err = nrm(fds.map((f, i) => f - ours[i]));
      // The FD's own resolution: float32 rounding of the loss (~1.2e-7·|L|) over 2h, per entry.
      const floor = (3 * 1.2e-7 * base / (2 * h)) * Math.sqrt(fds.length);
      if (Deno.env.get("DEBUG_FD")) {
        console.log({ fds, ours, err, floor, signal: nrm(fds) / floor });
      }
      if (!(nrm(fds) > 10 * floor)) {
        throw new Error(`degenerate: ‖FD‖ ${nrm(fds)} is within 10× the FD noise ${floor}`);
      }
      if (!(err <= 2e-2 * nrm(fds) + floor)) {
        throw new Error(
          `${group}/${which}: ‖FD − ours‖ = ${err} vs ‖FD‖ = ${nrm(fds)} (noise ${floor})`,
        );
      }
    });
  } finally {
    s.dispose();
  }
};

Deno.test("meta-gradient of the Hessian loss (T = 1) w.r.t. the preconditioner net matches finite differences", () => {
  // Fixed small damping keeps A = G + λ ill-conditioned, so K = 2 CG steps are far from A⁻¹g and
  // H depends on P (with the learned λ ≈ softplus(0) ≈ 0.69 here, A ≈ 0.69·I and H is flat in P).
  checkAgainstFd(1, "precond", "hessian", 10, { dampingMode: "fixed", lambda0: 1e-4 }, 5);
});

Deno.test("meta-gradient of 10·M (T = 2) w.r.t. the damping net matches finite differences", () => {
  checkAgainstFd(2, "lambda", "meta");
});

Deno.test("meta-gradient of 10·M with the relative meta-loss (T = 2) matches finite differences", () => {
  checkAgainstFd(2, "lambda", "meta", 1, { metaLoss: "relative" });
});

Deno.test("metaLoss option: the window's M is the raw or relative meta-loss of its own losses", () => {
  // The window's readings hold ℓ_i, ℓ_{i+1}, ℓ′_i; M must be windowMetaLoss of them, per option,
  // and the two options must differ (the losses here are not 1).
  const T = 3;
  const values: Record<string, number> = {};
  for (const kind of ["raw", "relative"] as const) {
    const s = setup(5, T, 1, { metaLoss: kind });
    try {
      tidyValue(() => {
        const noise = windowNoise(keyFromSeed(3), s.net.params, T, s.o.noise);
        const inner = initMlhfState(s.net.params, kinds, s.o);
        const w = unrollWindow(s.pr, s.o, s.meta, s.net.params, inner, s.batches, noise);
        w.release();
        const r = Array.from(w.readings.dataSync());
        const sc = (xs: number[]) => xs.map((v) => tf.scalar(v));
        const want = windowMetaLoss(
          kind,
          sc(r.slice(0, T)),
          sc(r.slice(2 * T - 1, 3 * T - 1)),
          sc(r.slice(T, 2 * T - 1)),
        ).dataSync()[0];
        values[kind] = w.metaLoss.dataSync()[0];
        if (!(Math.abs(values[kind] - want) <= 1e-5 * Math.max(1, Math.abs(want)))) {
          throw new Error(`${kind}: window M ${values[kind]}, from its losses ${want}`);
        }
      });
    } finally {
      s.dispose();
    }
  }
  if (values.raw === values.relative) throw new Error(`raw and relative M equal: ${values.raw}`);
});

Deno.test("gradient routing: λ nets get only the meta-loss pass, preconditioner nets only the Hessian-loss pass", () => {
  // Routing is structural: the λ group is differentiated on 10·M only and the preconditioner
  // group on H only. Check that each pass's gradient tree holds exactly its group's networks.
  const s = setup(4, 2);
  try {
    tidyValue(() => {
      const noise = windowNoise(keyFromSeed(1), s.net.params, 2, s.o.noise);
      const inner = initMlhfState(s.net.params, kinds, s.o);
      const a = windowGradient(s.pr, s.o, s.meta, "lambda", s.net.params, inner, s.batches, noise);
      const b = windowGradient(s.pr, s.o, s.meta, "precond", s.net.params, inner, s.batches, noise);
      for (
        const [name, g, want] of [["lambda", a.grads, "lambda"], [
          "precond",
          b.grads,
          "precond",
        ]] as const
      ) {
        for (const nets of Object.values(g)) {
          const roles = Object.keys(nets ?? {});
          if (roles.join() !== want) {
            throw new Error(`${name} pass produced gradients for ${roles}`);
          }
        }
        const total = leaves(g as Params).reduce(
          (acc, t) => acc + tf.sum(tf.abs(t)).dataSync()[0],
          0,
        );
        if (!(total > 0)) throw new Error(`${name} pass: zero gradient`);
      }
    });
  } finally {
    s.dispose();
  }
});

Deno.test("a short meta-training run lowers the mean Hessian loss; nothing leaks across iterations", async () => {
  const net = tinyNet("mlpSigmoid", 8, 16);
  const pr: MetaProblem<P> = { model: net.model, lossFn: softmaxCrossEntropy, kinds };
  const o: MetaTrainOptions = {
    ...META_TRAIN_DEFAULTS,
    metaRollBack: 2,
    keepProb: 0.5,
    metaLr: 1e-2,
  };
  const meta = initMetaWeights(keyFromSeed(2), o, ["dense/kernel", "dense/bias"]);
  const theta = mapTree(net.params as Params, (t) => t.clone()) as P;
  try {
    let s = initMetaTrainState(pr, o, theta, meta);
    const hs: number[] = [];
    const before = tf.memory().numTensors;
    for (let it = 0; it < 30; it++) {
      const batches: Batch[] = [0, 1].map((i) => ({
        x: tf.tensor(normal(keyFromSeed(1000 + 2 * it + i), 16 * 4), [16, 4]),
        y: net.batch.y,
      }));
      const r = await metaIteration(pr, o, s, batches, keyFromSeed(50 + it));
      tf.dispose(batches.map((b) => b.x));
      s = r.state;
      hs.push(r.diagnostics.hessianLoss);
      if (it === 1) {
        const now = tf.memory().numTensors;
        void now;
      }
    }
    const after = tf.memory().numTensors;
    const first = hs.slice(0, 5).reduce((a, b) => a + b) / 5;
    const last = hs.slice(-5).reduce((a, b) => a + b) / 5;
    if (!(last < first)) throw new Error(`mean Hessian loss did not fall: ${first} → ${last}`);
    // Tensor count is flat apart from replay entries (as-written mode: none are added).
    if (after !== before) {
      throw new Error(`tensors: ${before} before, ${after} after 30 iterations`);
    }
    tf.dispose(metaTrainStateTensors(s));
  } finally {
    tf.dispose([net.params, net.batch] as unknown as tf.TensorContainer);
  }
  await withNoLeaks(() => {});
});

/** Per kind: the given coordinates taped, the others not (the explicit form of `tapedCoordinates`). */
const tapedFrom = (
  pick: (kind: ParamKind, n: number) => number[],
  like: readonly tf.Tensor[],
): TapedCoordinates =>
  new Map(
    (["dense/kernel", "dense/bias"] as const).map((kind) => {
      const n = kinds.reduce((a, k, i) => a + (k === kind ? like[i].size : 0), 0);
      return [kind, splitCoordinates(n, pick(kind, n))] as const;
    }),
  );

Deno.test("coordinate fraction: same window values; meta-gradients over a partition of the coordinates sum to the full one", () => {
  // Each coordinate's LSTM chain is separate, so every path from φ to the loss runs through one
  // coordinate's outputs: backpropagating through S and through its complement C gives two parts
  // that add up to the full meta-gradient, while the forward values do not change.
  const s = setup(6, 2, 3, {}, 3);
  try {
    tidyValue(() => {
      const noise = windowNoise(keyFromSeed(2), s.net.params, 2, s.o.noise);
      const inner = initMlhfState(s.net.params, kinds, s.o);
      const like = leaves(s.net.params as Params);
      const inS = (kind: ParamKind, n: number) =>
        Array.from({ length: n }, (_, i) => i).filter((i) => (i * 7 + kind.length) % 3 === 0);
      const S = tapedFrom(inS, like);
      const C = tapedFrom(
        (kind, n) =>
          Array.from({ length: n }, (_, i) => i).filter((i) => !inS(kind, n).includes(i)),
        like,
      );
      for (const group of ["lambda", "precond"] as const) {
        const grad = (taped?: TapedCoordinates) =>
          windowGradient(s.pr, s.o, s.meta, group, s.net.params, inner, s.batches, noise, taped);
        const full = grad(), a = grad(S), b = grad(C);
        for (const key of ["metaLoss", "hessianLoss"] as const) {
          const v = full.window[key].dataSync()[0], va = a.window[key].dataSync()[0];
          if (v !== va) throw new Error(`${group}: ${key} ${va} with a subset, ${v} without`);
        }
        const gf = leaves(full.grads as Params), ga = leaves(a.grads as Params);
        const gb = leaves(b.grads as Params);
        gf.forEach((t, i) => {
          const sum = tf.add(ga[i], gb[i]);
          const err = tf.norm(tf.sub(sum, t)).dataSync()[0];
          const size = tf.norm(t).dataSync()[0];
          if (!(size > 0)) throw new Error(`${group}: zero meta-gradient (leaf ${i})`);
          if (!(err <= 1e-4 * size)) {
            throw new Error(`${group} leaf ${i}: ‖g_S + g_C − g‖ = ${err}, ‖g‖ = ${size}`);
          }
          // Neither part alone is the whole: the split does route gradient through both.
          const partA = tf.norm(ga[i]).dataSync()[0];
          if (!(partA > 1e-3 * size && tf.norm(tf.sub(ga[i], t)).dataSync()[0] > 1e-3 * size)) {
            throw new Error(`${group} leaf ${i}: the S part is 0 or all of the gradient`);
          }
        });
        for (const w of [full, a, b]) w.window.release();
      }
      tf.dispose(tapedCoordinateTensors(S));
      tf.dispose(tapedCoordinateTensors(C));
    });
  } finally {
    s.dispose();
  }
});

Deno.test("coordinate fraction: the window keeps less memory with fewer taped coordinates", () => {
  // An MLP 64→16 sigmoid→10 (1 210 coordinates), so that per-coordinate storage dominates. The
  // LSTM activations are ≈ 40 % of a window's ≈ 1000 floats per coordinate and step; with 10 % of
  // the coordinates taped, 0.64 of the memory was measured (the CG vectors and the tape's copies
  // of the features stay full size).
  const model = mlp({ hidden: [16] });
  const init = model.init(keyFromSeed(3), [8, 8, 1]);
  const params = init.params as unknown as P;
  const mk = kindLeaves(init.kinds) as ParamKind[];
  const pr: MetaProblem<P> = {
    model: (nn, p, x) => model.apply(nn, p as never, x),
    lossFn: softmaxCrossEntropy,
    kinds: mk,
  };
  const o: MetaTrainOptions = { ...META_TRAIN_DEFAULTS, metaRollBack: 2 };
  const meta = initMetaWeights(keyFromSeed(2), o, ["dense/kernel", "dense/bias"]);
  const batches: Batch[] = [0, 1].map((i) => ({
    x: tf.tensor(normal(keyFromSeed(300 + i), 16 * 64), [16, 8, 8, 1]),
    y: tf.tidy(() =>
      tf.oneHot(tf.tensor1d([...Array(16).keys()].map((j) => (j + i) % 10), "int32"), 10).toFloat()
    ),
  }));
  try {
    const bytes = (fraction: number) =>
      tidyValue(() => {
        const before = tf.memory().numBytes;
        const noise = windowNoise(keyFromSeed(2), params, 2, o.noise);
        const inner = initMlhfState(params, mk, o);
        const taped = fraction < 1
          ? tapedCoordinates(keyFromSeed(9), mk, leaves(params as Params), fraction)
          : undefined;
        const g = windowGradient(pr, o, meta, "precond", params, inner, batches, noise, taped);
        g.window.release();
        return g.window.windowBytes - before;
      });
    const all = bytes(1), tenth = bytes(0.1);
    console.log(`window bytes: all ${all}, 10 % taped ${tenth} (${(tenth / all).toFixed(2)})`);
    if (!(tenth < 0.8 * all)) {
      throw new Error(`window bytes: ${tenth} with 10 % of the coordinates taped, ${all} with all`);
    }
  } finally {
    tf.dispose(
      [leaves(params as Params), batches, leaves(meta as Params)] as unknown as tf.TensorContainer,
    );
  }
});

Deno.test("T = 1: the meta-loss is 0, the damping networks get a zero meta-gradient, the iteration runs", async () => {
  const s = setup(5, 1);
  try {
    tidyValue(() => {
      const noise = windowNoise(keyFromSeed(3), s.net.params, 1, s.o.noise);
      const inner = initMlhfState(s.net.params, kinds, s.o);
      const g = windowGradient(
        s.pr,
        s.o,
        s.meta,
        "lambda",
        s.net.params,
        inner,
        s.batches,
        noise,
      );
      if (g.window.metaLoss.dataSync()[0] !== 0) throw new Error("M ≠ 0 with T = 1");
      const total = leaves(g.grads as Params).reduce(
        (acc, t) => acc + tf.sum(tf.abs(t)).dataSync()[0],
        0,
      );
      if (total !== 0) throw new Error(`damping meta-gradient ${total} with T = 1`);
      if (!(Math.abs(g.window.hessianLoss.dataSync()[0]) > 0)) throw new Error("no Hessian loss");
    });
    await withNoLeaks(async () => {
      const st = initMetaTrainState(
        s.pr,
        s.o,
        mapTree(s.net.params as Params, (t) => t.clone()) as P,
        mapTree(s.meta as Params, (t) => t.clone()) as MetaWeights,
      );
      const r = await metaIteration(s.pr, s.o, st, s.batches, keyFromSeed(4));
      if (!(r.diagnostics.metaLoss === 0 && Number.isFinite(r.diagnostics.hessianLoss))) {
        throw new Error(`diagnostics ${JSON.stringify(r.diagnostics)}`);
      }
      tf.dispose(metaTrainStateTensors(r.state));
    });
  } finally {
    s.dispose();
  }
});

Deno.test("a non-finite value carried to the next iteration is named there (φ after Adam, θ)", async () => {
  const s = setup(5, 2, 1, { keepProb: 1 }); // keepProb 1: no reset replaces θ
  try {
    await withNoLeaks(async () => {
      const fresh = () =>
        initMetaTrainState(
          s.pr,
          s.o,
          mapTree(s.net.params as Params, (t) => t.clone()) as P,
          mapTree(s.meta as Params, (t) => t.clone()) as MetaWeights,
        );
      // A NaN second moment of one meta-weight: the window is finite, Adam's step makes φ NaN.
      const sa = fresh();
      const at = leaves(sa.meta as Params).indexOf(
        sa.meta["dense/kernel"]!.lambda!.layers[0].kernel,
      );
      const nu0 = leaves(sa.adam.nu)[at];
      const nu = mapTree(sa.adam.nu, (t) => t === nu0 ? tf.fill(t.shape, NaN) : t);
      nu0.dispose();
      const a = await metaIteration(
        s.pr,
        s.o,
        { ...sa, adam: { ...sa.adam, nu } },
        s.batches,
        keyFromSeed(4),
      );
      if (a.diagnostics.skipped) throw new Error("the finite window was skipped");
      if (a.nonFinite !== "meta-weights dense/kernel/lambda/layers/0/kernel") {
        throw new Error(`named ${a.nonFinite}`);
      }
      tf.dispose(metaTrainStateTensors(a.state));
      // η = ∞: the clipped step is ∞·0, θ_T is NaN; the meta-update is skipped, φ stays finite.
      const b = await metaIteration(
        s.pr,
        { ...s.o, lr: Infinity },
        fresh(),
        s.batches,
        keyFromSeed(4),
      );
      if (!b.diagnostics.skipped) throw new Error("the NaN window was not skipped");
      if (b.nonFinite !== "params/w1") throw new Error(`named ${b.nonFinite}`);
      tf.dispose(metaTrainStateTensors(b.state));
      // A finite iteration names nothing.
      const c = await metaIteration(s.pr, s.o, fresh(), s.batches, keyFromSeed(4));
      if (c.nonFinite !== null) throw new Error(`named ${c.nonFinite}`);
      tf.dispose(metaTrainStateTensors(c.state));
    });
  } finally {
    s.dispose();
  }
});
