/**
 * webgpu against cpu, run in one process: the same host inputs on each backend, every result read
 * with `await t.data()` (webgpu under Deno has no synchronous read). Every row of the JVP-rule table
 * (tests/_util/jvp_rules.ts: output, J·v and Jᵀ·u of 2 small cases each), the DSL's J·v and Jᵀ·u on
 * the tiny networks, G·v, two steps of each optimizer (K-FAC inverting on both) and one
 * meta-iteration with its meta-gradient. Ignored, with the reason, where there is no WebGPU adapter
 * (CI installs Mesa's llvmpipe: `.ci/run`).
 *
 * Named `_check`, not `_test`, so the main `deno test` run does not load it: `deno task test` runs it
 * in a process of its own, keeping llvmpipe's threads and JIT apart from the native backend's FFI
 * tests. (An intermittent heap-corruption crash in the native oneDNN tests of the main run, seen on
 * this branch, recurred without this file in the process: it is not from here; see the report.)
 */
import { tf } from "../lib/_deps.ts";
import { registerWebGpuKernels } from "../lib/backend/webgpu/register.ts";
import { assert, fc } from "./_util/deps.ts";
import { ROWS } from "./_util/jvp_rules.ts";
import { webgpuUnavailable } from "./_util/backend.ts";
import { relErr } from "./_util/numeric.ts";
import { randomLike } from "./_util/gradcheck.ts";
import { tinyNet } from "./_util/nets.ts";
import { keyFromSeed } from "../lib/prng.ts";
import { linearize } from "../ops/interpret.ts";
import { gaussNewtonProduct } from "../lib/curvature/gauss_newton.ts";
import { softmaxCrossEntropy } from "../ops/losses.ts";
import { leaves, mapTree, type Params } from "../lib/tree.ts";
import { disposeState, type GradientTransformation } from "../lib/optim/base.ts";
import { adam, momentum, rmsprop, sgd } from "../lib/optim/alias.ts";
import { kfac } from "../lib/optim/kfac.ts";
import { hessianFree } from "../lib/optim/hessian_free.ts";
import { mlhf } from "../lib/optim/mlhf/optimizer.ts";
import { initMetaWeights, metaWeightTensors } from "../lib/optim/mlhf/meta_weights.ts";
import type { MetaWeights } from "../lib/optim/mlhf/direction.ts";
import { trainStep } from "../lib/train/step.ts";
import { loadMetaWeights, saveMetaWeights } from "../lib/meta/meta_weights_file.ts";
import {
  initMetaTrainState,
  META_TRAIN_DEFAULTS,
  metaIteration,
  type MetaTrainOptions,
  metaTrainStateTensors,
  stateLeaves,
  windowGradient,
  windowNoise,
} from "../lib/meta/meta_train.ts";

// TF.js's webgpu runs ops on tensors under 1000 entries on the CPU; 0 sends every kernel through
// its WGSL program, which is what these small shapes are here to check. The backend reads the flag
// once, when its module loads (the probe below imports it), and the flag is registered only then:
// so it is put in the flag table directly.
tf.env().setFlags({ ...tf.env().getFlags(), WEBGPU_CPU_HANDOFF_SIZE_THRESHOLD: 0 });
// The probe activates webgpu: give the process back the backend it had (other test modules).
const before = tf.getBackend();
const unavailable = await webgpuUnavailable();
if (before && tf.getBackend() !== before) await tf.setBackend(before);
tf.env().set("IS_NODE", false); // no cpu banner (this process uses webgpu and cpu only, never wasm)
if (unavailable) console.log(`webgpu tests ignored: ${unavailable}`);
// What `--backend webgpu` runs: TF.js's webgpu with the project's WGSL kernels (selectBackend
// registers them the same way).
else registerWebGpuKernels();
const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name: `webgpu vs cpu: ${name}`, ignore: unavailable !== null, fn });

/**
 * Runs `f` on webgpu, then on cpu, then restores the backend it found; returns both results
 * (tensors `f` makes are its to free).
 */
const onBoth = async <T>(f: () => Promise<T>): Promise<{ gpu: T; cpu: T }> => {
  const was = tf.getBackend();
  try {
    assert.ok(await tf.setBackend("webgpu"));
    const gpu = await f();
    assert.ok(await tf.setBackend("cpu"));
    const cpu = await f();
    return { gpu, cpu };
  } finally {
    if (was) await tf.setBackend(was);
  }
};

/** All of the tensors' values, read asynchronously, as one array; disposes them. */
const readAll = async (ts: tf.Tensor[]): Promise<number[]> => {
  const out: number[] = [];
  for (const t of ts) out.push(...await t.data());
  tf.dispose(ts);
  return out;
};

/**
 * Relative error between the backends. 1e-5: float32 kernels that sum in another order differ by
 * a few ulps per op (measured 5–7e-7 for G·v, /work/shared/design/gpu.md); a wrong kernel is O(1).
 * Steps through CG get 1e-4: CG's iterations amplify those differences by the conditioning of
 * G + λI (HF with K = 5 measured 1.03e-5 here).
 */
const close = (what: string, a: number[], b: number[], tol = 1e-5) => {
  assert.equal(a.length, b.length, what);
  const e = relErr(Float32Array.from(a), Float64Array.from(b));
  assert.ok(e <= tol, `${what}: webgpu vs cpu rel. error ${e} > ${tol}`);
};

test("addN over more inputs than the shader's storage buffers (the AddN fix)", async () => {
  for (const n of [2, 7, 8, 12, 20]) {
    const xs = Array.from({ length: n }, (_, i) => tf.fill([3], i + 1));
    const sum = tf.addN(xs);
    assert.deepEqual(Array.from(await sum.data()), [0, 1, 2].map(() => (n * (n + 1)) / 2));
    tf.dispose([...xs, sum]);
  }
});

test("the JVP-rule table: each row's output, J·v and Jᵀ·u on 2 cases", async () => {
  const failures: string[] = [];
  for (const row of ROWS) {
    for (const [n, make] of fc.sample(row.arb, { seed: 15, numRuns: 2 }).entries()) {
      const r = await onBoth(async () => {
        const c = make();
        const lin = linearize(c.f, c.p);
        const v = randomLike(keyFromSeed(1), c.p);
        const u = tf.tidy(() => randomLike(keyFromSeed(2), { o: lin.output }).o);
        const values = {
          out: await readAll([lin.output.clone()]),
          jv: await readAll([lin.jvp(v)]),
          jtu: await readAll(leaves(lin.vjp(u))),
        };
        lin.dispose();
        tf.dispose([...c.p, ...leaves(v), u]);
        return values;
      });
      for (const k of ["out", "jv", "jtu"] as const) {
        const e = relErr(Float32Array.from(r.gpu[k]), Float64Array.from(r.cpu[k]));
        if (!(e <= 1e-5)) failures.push(`${row.name} case ${n} ${k}: rel. error ${e}`);
      }
    }
  }
  assert.deepEqual(failures, []);
});

test("2-D transposes and axis-0 reductions over more than 16·65535 rows (the transpose fix)", async () => {
  const n = 1_100_000; // TF.js's tiled 2-D transpose has a grid dimension of n / 16 > 65535
  const host = Float32Array.from({ length: n * 2 }, (_, i) => (i % 7) - (i % 2) * 3);
  const want = { t: new Float32Array(n * 2), sum: [0, 0], max: [-Infinity, -Infinity] };
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < 2; j++) {
      const v = host[2 * i + j];
      want.t[j * n + i] = v;
      want.sum[j] += v; // integers below 2^24: exact in any order
      want.max[j] = Math.max(want.max[j], v);
    }
  }
  const was = tf.getBackend();
  try {
    assert.ok(await tf.setBackend("webgpu"));
    const x = tf.tensor2d(host, [n, 2]);
    const t = tf.transpose(x), sum = tf.sum(x, 0), max = tf.max(x, 0, true);
    assert.deepEqual(t.shape, [2, n]);
    assert.deepEqual(max.shape, [1, 2]);
    assert.ok((await t.data()).every((v, i) => v === want.t[i]), "transpose");
    assert.deepEqual(Array.from(await sum.data()), want.sum);
    assert.deepEqual(Array.from(await max.data()), want.max);
    tf.dispose([x, t, sum, max]);
  } finally {
    if (was) await tf.setBackend(was);
  }
});

const NETS = ["mlpSigmoid", "mlpTanh", "convMaxPool", "convBatchNorm"] as const;

for (const kind of NETS) {
  test(`${kind}: J·v and Jᵀ·u of the linearized network`, async () => {
    const r = await onBoth(async () => {
      const net = tinyNet(kind, 7);
      const f = (nn: Parameters<typeof net.model>[0], p: typeof net.params) => {
        const out = net.model(nn, p, net.batch.x);
        return out instanceof tf.Tensor ? out : out.output;
      };
      const lin = linearize(f, net.params);
      const v = randomLike(keyFromSeed(1), net.params);
      const u = tf.tidy(() => randomLike(keyFromSeed(2), { o: lin.output }).o);
      const jv = lin.jvp(v), jtu = leaves(lin.vjp(u));
      const values = {
        out: await readAll([lin.output.clone()]),
        jv: await readAll([jv]),
        jtu: await readAll(jtu),
      };
      lin.dispose();
      tf.dispose([...leaves(net.params), net.batch.x, net.batch.y, ...leaves(v), u]);
      return values;
    });
    close(`${kind} output`, r.gpu.out, r.cpu.out);
    close(`${kind} J·v`, r.gpu.jv, r.cpu.jv);
    close(`${kind} Jᵀ·u`, r.gpu.jtu, r.cpu.jtu);
  });
}

test("G·v, the loss and the gradient of a conv net", async () => {
  const r = await onBoth(async () => {
    const net = tinyNet("convMaxPool", 3, 4);
    const gn = gaussNewtonProduct(net.model, softmaxCrossEntropy, net.params, net.batch);
    const v = randomLike(keyFromSeed(5), net.params);
    const gv = gn.product(v);
    const values = {
      loss: await readAll([gn.loss.clone()]),
      g: await readAll(leaves(mapTree(gn.gradient, (t) => t.clone()))),
      gv: await readAll(leaves(gv)),
    };
    gn.dispose();
    tf.dispose([...leaves(net.params), net.batch.x, net.batch.y, ...leaves(v)]);
    return values;
  });
  close("loss", r.gpu.loss, r.cpu.loss);
  close("gradient", r.gpu.g, r.cpu.g);
  close("G·v", r.gpu.gv, r.cpu.gv);
});

const KINDS = ["dense/kernel", "dense/bias", "dense/kernel", "dense/bias"] as const;
const meta = () =>
  initMetaWeights(keyFromSeed(99), {
    dampingMode: "rnn",
    preconditioner: "rnn",
    xInit: "previous",
  }, ["dense/kernel", "dense/bias"]);

// deno-lint-ignore no-explicit-any
const OPTIMIZERS: Array<[string, (m: MetaWeights) => GradientTransformation<any, Params>]> = [
  ["sgd", () => sgd({ learningRate: 0.5 })],
  ["momentum", () => momentum({ learningRate: 0.1 })],
  ["adam", () => adam({ learningRate: 0.02 })],
  ["rmsprop", () => rmsprop({ learningRate: 0.05, decay: 0.99 })],
  ["kfac", () => kfac({ learningRate: 0.1, damping: 1, invertEvery: 1 })],
  ["hf-fixed", () => hessianFree({ learningRate: 0.5, damping: 0.05, cgIterations: 5 })],
  ["hf-lm", () => hessianFree({ learningRate: 1, damping: 1, cgIterations: 5, lmDecay: 0.99 })],
  [
    "mlhf",
    (m) => mlhf({ metaWeights: m, kinds: [...KINDS], learningRate: 1, cgIterations: 2 }),
  ],
];

for (const [name, make] of OPTIMIZERS) {
  test(`${name}: two training steps of a tiny MLP`, async () => {
    const r = await onBoth(async () => {
      const net = tinyNet("mlpTanh", 11, 6);
      const m = meta();
      const opt = make(m);
      let params = net.params as Params, state = opt.init(params);
      const losses: number[] = [];
      for (let i = 0; i < 2; i++) {
        const s = await trainStep({
          model: net.model as never,
          lossFn: softmaxCrossEntropy,
          optimizer: opt,
          params,
          state,
          batch: net.batch,
          key: keyFromSeed(i),
          checkFinite: true,
        });
        assert.ok(s.finite);
        tf.dispose(s.aux);
        params = s.params;
        state = s.state;
        losses.push(s.loss);
      }
      disposeState(state);
      tf.dispose(metaWeightTensors(m));
      tf.dispose([net.batch.x, net.batch.y]);
      return { losses, params: await readAll(leaves(params)) };
    });
    const tol = ["sgd", "momentum", "adam", "rmsprop"].includes(name) ? 1e-5 : 1e-4;
    close(`${name} losses`, r.gpu.losses, r.cpu.losses, tol);
    close(`${name} parameters after two steps`, r.gpu.params, r.cpu.params, tol);
  });
}

test("one meta-iteration (T = 2) of a tiny MLP", async () => {
  const o: MetaTrainOptions = { ...META_TRAIN_DEFAULTS, metaRollBack: 2, cgIterations: 2 };
  const r = await onBoth(async () => {
    const net = tinyNet("mlpTanh", 13, 6);
    const other = tinyNet("mlpTanh", 14, 6);
    const pr = { model: net.model as never, lossFn: softmaxCrossEntropy, kinds: [...KINDS] };
    const s = initMetaTrainState(pr, o, net.params as Params, meta());
    const out = await metaIteration(pr, o, s, [net.batch, {
      x: other.batch.x,
      y: net.batch.y,
    }], keyFromSeed(4));
    assert.equal(out.nonFinite, null);
    const d = out.diagnostics;
    const values = {
      numbers: [d.metaLoss, d.hessianLoss, d.gradNorm, d.metaNorm],
      meta: await readAll(leaves(mapTree(out.state.meta as unknown as Params, (t) => t.clone()))),
    };
    tf.dispose(metaTrainStateTensors(out.state));
    tf.dispose([net.batch.x, net.batch.y, other.batch.x, other.batch.y, ...leaves(other.params)]);
    return values;
  });
  close("M, H, ‖∇φ‖, ‖φ‖", r.gpu.numbers, r.cpu.numbers);
  close("φ after the meta-step", r.gpu.meta, r.cpu.meta);
});

test("the meta-gradients of one window (T = 2): λ and preconditioner networks", async () => {
  const o: MetaTrainOptions = { ...META_TRAIN_DEFAULTS, metaRollBack: 2, cgIterations: 2 };
  const r = await onBoth(async () => {
    const net = tinyNet("mlpTanh", 13, 6);
    const other = tinyNet("mlpTanh", 14, 6);
    const pr = { model: net.model as never, lossFn: softmaxCrossEntropy, kinds: [...KINDS] };
    const s = initMetaTrainState(pr, o, net.params as Params, meta());
    const batches = [net.batch, { x: other.batch.x, y: net.batch.y }];
    const noise = windowNoise(keyFromSeed(4), s.theta, batches.length, o.noise);
    const out: Record<string, number[]> = {};
    for (const group of ["lambda", "precond"] as const) {
      const { grads, window: w } = windowGradient(
        pr,
        o,
        s.meta,
        group,
        s.theta,
        s.inner,
        batches,
        noise,
      );
      out[group] = await readAll(leaves(grads as unknown as Params));
      tf.dispose([w.metaLoss, w.hessianLoss, w.readings, ...leaves(w.thetaEnd)]);
      tf.dispose(stateLeaves(w.innerEnd));
    }
    tf.dispose(noise.flatMap((n) => leaves(n)));
    tf.dispose(metaTrainStateTensors(s));
    tf.dispose([net.batch.x, net.batch.y, other.batch.x, other.batch.y, ...leaves(other.params)]);
    return out;
  });
  assert.ok(r.cpu.lambda.some((x) => x !== 0) && r.cpu.precond.some((x) => x !== 0));
  close("∂M/∂φ of the λ networks", r.gpu.lambda, r.cpu.lambda, 1e-4);
  close("∂H/∂φ of the preconditioner networks", r.gpu.precond, r.cpu.precond, 1e-4);
});

test("a meta-weights file written from tensors computed on the device", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const r = await onBoth(async () => {
      const m = meta();
      const doubled = mapTree(
        m as unknown as Params,
        (t) => tf.mul(t, 2),
      ) as unknown as MetaWeights;
      const path = `${dir}/${tf.getBackend()}.mlhf`;
      await saveMetaWeights(path, doubled, { options: {} });
      tf.dispose([...metaWeightTensors(m), ...metaWeightTensors(doubled)]);
      const back = await loadMetaWeights(path);
      return await readAll(metaWeightTensors(back.weights));
    });
    assert.deepEqual(r.gpu, r.cpu);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
