/**
 * The oneDNN convolutions (`kernels/conv_dnnl.ts`): forward, input gradient and filter gradient
 * equal the cpu backend's kernels and the im2col path on fast-check random geometries (batch 1–3,
 * odd and even H/W, channels 1–7, 1×1/3×3/5×5 kernels, strides 1 and 2, SAME/VALID), with oneDNN
 * asserted to have taken every case; `tf.grads` of conv nets in first and second order equals cpu;
 * outputs are fully written (NaN-filled arrays), bounds are checked, the primitive cache survives
 * eviction; geometries oneDNN cannot express go to im2col; and in fresh processes `MLHF_DNNL=0` or
 * an unloadable `MLHF_DNNL_PATH` leaves the im2col path, said once. Skipped (reported ignored, with
 * the reason) when the native backend or oneDNN cannot be loaded.
 * @module
 */
import { tf } from "../../_deps.ts";
import { assert, fc } from "../../../tests/_util/deps.ts";
import { assertAllClose, withNoLeaks } from "../../../tests/_util/numeric.ts";
import { loadBlas } from "./blas.ts";
import { loadDnnl } from "./dnnl.ts";
import {
  conv2dBackpropFilter,
  conv2dBackpropInput,
  conv2dForward,
  convEngine,
  onednnImpl,
  setConvEngine,
} from "./kernels/conv.ts";
import { CACHE_ENTRIES, type ConvPass, dnnlConv, dnnlTakesPass } from "./kernels/conv_dnnl.ts";
import { dnnlSpatial } from "./kernels/dnnl_spatial.ts";
import { nativeAvailable, nativeUnavailable, randArray, runOn } from "./_test_util.ts";

const dnnl = nativeAvailable ? loadDnnl() : null;
const skipReason = !nativeAvailable
  ? nativeUnavailable!
  : dnnl && !dnnl.ok
  ? `oneDNN: ${dnnl.reason}`
  : null;
const ignore = skipReason !== null;
const name = (n: string) =>
  `native oneDNN: ${n}${skipReason ? ` (skipped: ${skipReason.slice(0, 90)})` : ""}`;
const TOL = { rtol: 1e-4, atol: 1e-4 };

type Pad = "same" | "valid";
/** A random conv problem as the issue lists them. */
const convCase = fc.record({
  b: fc.integer({ min: 1, max: 3 }),
  h: fc.integer({ min: 1, max: 11 }),
  w: fc.integer({ min: 1, max: 11 }),
  ci: fc.integer({ min: 1, max: 7 }),
  co: fc.integer({ min: 1, max: 7 }),
  k: fc.constantFrom(1, 3, 5),
  s: fc.constantFrom(1, 2),
  pad: fc.constantFrom<Pad>("same", "valid"),
  seed: fc.integer({ min: 0, max: 1e6 }),
}).filter((c) => c.pad === "same" || (c.h >= c.k && c.w >= c.k));
type ConvCase = typeof convCase extends fc.Arbitrary<infer T> ? T : never;

const shapes = (c: ConvCase) => {
  const x = [c.b, c.h, c.w, c.ci] as [number, number, number, number];
  const f = [c.k, c.k, c.ci, c.co] as [number, number, number, number];
  const g = tf.backend_util.computeConv2DInfo(x, f, c.s, 1, c.pad, undefined, false);
  return { x, f, g, y: g.outShape as [number, number, number, number] };
};

/** Forward, input gradient and filter gradient through the kernels, on the active backend. */
const passes = (c: ConvCase) => () => {
  const sh = shapes(c);
  const x = tf.tensor4d(randArray(sh.g.inShape.reduce((a, d) => a * d), c.seed), sh.x);
  const f = tf.tensor4d(randArray(sh.f.reduce((a, d) => a * d), c.seed + 1), sh.f);
  const dy = tf.tensor4d(randArray(sh.y.reduce((a, d) => a * d), c.seed + 2), sh.y);
  const attrs = { strides: [c.s, c.s], pad: c.pad, dataFormat: "NHWC" };
  return [
    tf.conv2d(x, f, c.s, c.pad),
    tf.engine().runKernel("Conv2DBackpropInput", { dy, filter: f }, {
      ...attrs,
      inputShape: sh.x,
    } as unknown as tf.NamedAttrMap) as tf.Tensor,
    tf.engine().runKernel("Conv2DBackpropFilter", { x, dy }, {
      ...attrs,
      filterShape: sh.f,
    } as unknown as tf.NamedAttrMap) as tf.Tensor,
  ];
};

/** Runs f on native with the conv engine set to `e`, restoring the previous engine. */
const onNative = async (e: "onednn" | "im2col", f: () => tf.Tensor | tf.Tensor[]) => {
  const prev = setConvEngine(e);
  try {
    return await withNoLeaks(() => runOn("native", f), `native ${e}`);
  } finally {
    setConvEngine(prev);
  }
};

const PASSES: readonly ConvPass[] = ["forward", "backwardData", "backwardWeights"];

Deno.test({
  name: name("forward, input and filter gradients equal cpu and the im2col path"),
  ignore,
  fn: async () => {
    await fc.assert(
      fc.asyncProperty(convCase, async (c) => {
        const what = JSON.stringify(c);
        const { g } = shapes(c);
        for (const p of PASSES) {
          // The one pass oneDNN is not given (`dnnlTakesPass`): a strided 1×1 filter gradient.
          const skipped = p === "backwardWeights" && c.k === 1 && c.s > 1;
          assert.equal(onednnImpl(p, g) === null, skipped, `oneDNN took ${p} of ${what}`);
        }
        const cpu = await withNoLeaks(() => runOn("cpu", passes(c)), "cpu");
        const one = await onNative("onednn", passes(c));
        const im2col = await onNative("im2col", passes(c));
        ["y", "dx", "dW"].forEach((out, i) => {
          assertAllClose(one[i], cpu[i], TOL, `${out} vs cpu ${what}`);
          assertAllClose(one[i], im2col[i], TOL, `${out} vs im2col ${what}`);
        });
      }),
      { numRuns: 60 },
    );
  },
});

Deno.test({
  name: name("outputs are fully written, inputs untouched, and bounds checked"),
  ignore,
  fn: async () => {
    if (!dnnl?.ok) return;
    const blas = loadBlas();
    if (!blas.ok) throw new Error(blas.reason);
    const d = dnnlConv(dnnl.dnnl);
    await fc.assert(
      fc.property(convCase, (c) => {
        const { g } = shapes(c);
        const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
        const x = randArray(size(g.inShape), c.seed),
          w = randArray(size(g.filterShape), c.seed + 1);
        const dy = randArray(size(g.outShape), c.seed + 2);
        const [x0, w0, dy0] = [x.slice(), w.slice(), dy.slice()];
        const y = new Float32Array(size(g.outShape)).fill(NaN);
        const dx = new Float32Array(size(g.inShape)).fill(NaN);
        const dw = new Float32Array(size(g.filterShape)).fill(NaN);
        assert.ok(d.forward(x, w, g, y) && d.backwardData(dy, w, g, dx));
        const takesDw = !(c.k === 1 && c.s > 1); // `dnnlTakesPass`
        assert.equal(d.backwardWeights(x, dy, g, dw), takesDw);
        const what = JSON.stringify(c);
        assertAllClose(y, conv2dForward(blas.blas, x, w, g), TOL, `y ${what}`);
        assertAllClose(dx, conv2dBackpropInput(blas.blas, dy, w, g), TOL, `dx ${what}`);
        if (takesDw) {
          assertAllClose(dw, conv2dBackpropFilter(blas.blas, x, dy, g), TOL, `dW ${what}`);
        } else assert.ok(dw.every(Number.isNaN), `dW untouched ${what}`);
        assert.deepEqual([x, w, dy], [x0, w0, dy0], "inputs changed");
      }),
      { numRuns: 40 },
    );
    const { g } = shapes({ b: 2, h: 5, w: 5, ci: 3, co: 4, k: 3, s: 1, pad: "same", seed: 0 });
    const x = new Float32Array(2 * 5 * 5 * 3), w = new Float32Array(3 * 3 * 3 * 4);
    assert.throws(() => d.forward(x, w, g, new Float32Array(2 * 5 * 5 * 4 - 1)), RangeError);
    assert.throws(() => d.backwardWeights(x.subarray(1), x, g, w), RangeError);
  },
});

Deno.test({
  name: name("the primitive cache stays correct past eviction"),
  ignore,
  fn: async () => {
    // More geometries than the cache holds, twice: the second round recreates evicted entries.
    const cases: ConvCase[] = Array.from({ length: CACHE_ENTRIES + 6 }, (_, i) => ({
      b: 1 + (i % 2),
      h: 3 + (i % 7),
      w: 4 + (i % 5),
      ci: 1 + (i % 3),
      co: 1 + (i % 4),
      k: 3,
      s: 1,
      pad: "same",
      seed: i,
    }));
    for (let round = 0; round < 2; round++) {
      for (const c of cases.slice(0, round ? 8 : undefined)) {
        const one = await onNative("onednn", () => passes(c)()[0]);
        const cpu = await runOn("cpu", () => passes(c)()[0]);
        assertAllClose(one[0], cpu[0], TOL, `round ${round} ${JSON.stringify(c)}`);
      }
    }
  },
});

/** A small conv net's loss: conv (stride s) → relu → conv (SAME, stride 1) → squares summed. */
const netLoss = (c: ConvCase, x: tf.Tensor4D, w1: tf.Tensor4D, w2: tf.Tensor4D): tf.Scalar => {
  const h = tf.relu(tf.conv2d(x, w1, c.s, c.pad)) as tf.Tensor4D;
  return tf.sum(tf.square(tf.conv2d(h, w2, 1, "same")));
};

Deno.test({
  name: name("tf.grads through convs equals cpu, in first and second order"),
  ignore,
  fn: async () => {
    await fc.assert(
      fc.asyncProperty(convCase, async (c) => {
        const sh = shapes(c);
        const n = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
        const w2Shape = [3, 3, c.co, 2] as [number, number, number, number];
        const xv = randArray(n(sh.x), c.seed), w1v = randArray(n(sh.f), c.seed + 1);
        const w2v = randArray(n(w2Shape), c.seed + 2);
        const vs = [sh.x, sh.f, w2Shape].map((s, i) => randArray(n(s), c.seed + 3 + i));
        const run = () => {
          const x = tf.tensor4d(xv, sh.x), w1 = tf.tensor4d(w1v, sh.f);
          const w2 = tf.tensor4d(w2v, w2Shape);
          const loss = (a: tf.Tensor, b: tf.Tensor, d: tf.Tensor) =>
            netLoss(c, a as tf.Tensor4D, b as tf.Tensor4D, d as tf.Tensor4D);
          const first = tf.grads(loss)([x, w1, w2]);
          // Second order: the gradient of ⟨∇loss, v⟩ (a Hessian-vector product). Not with a
          // stride above the kernel size: there the input gradient is the DSL's col2im composition
          // (`ops/windows.ts`, on every backend), whose own gradient fails in TF.js's concat.
          if (c.s > c.k) return first;
          const second = tf.grads((a: tf.Tensor, b: tf.Tensor, d: tf.Tensor) => {
            const gs = tf.grads(loss)([a, b, d]);
            return tf.addN(gs.map((gi, i) => tf.sum(tf.mul(gi, tf.tensor(vs[i], gi.shape)))));
          })([x, w1, w2]);
          return [...first, ...second];
        };
        const cpu = await withNoLeaks(() => runOn("cpu", run), "cpu");
        const one = await onNative("onednn", run);
        const tol = { rtol: 5e-4, atol: 5e-4 };
        cpu.forEach((want, i) =>
          assertAllClose(one[i], want, tol, `output ${i} ${JSON.stringify(c)}`)
        );
      }),
      { numRuns: 15 },
    );
  },
});

Deno.test({
  name: name("strided 1×1 filter gradients: not the strided pass, a stride-1 one on the subsample"),
  ignore,
  fn: async () => {
    const g = (k: number, s: number) =>
      tf.backend_util.computeConv2DInfo(
        [3, 18, 10, 6],
        [k, k, 6, 1],
        s,
        1,
        "valid",
        undefined,
        false,
      );
    assert.equal(dnnlTakesPass("backwardWeights", g(1, 2)), false);
    assert.equal(dnnlTakesPass("backwardWeights", g(1, 1)), true);
    assert.equal(dnnlTakesPass("backwardWeights", g(3, 2)), true);
    assert.equal(dnnlTakesPass("forward", g(1, 2)), true);
    assert.equal(dnnlTakesPass("backwardData", g(1, 2)), true);
    const rect = tf.backend_util.computeConv2DInfo([1, 9, 9, 2], [1, 1, 2, 3], [1, 2], 1, "valid");
    assert.equal(dnnlTakesPass("backwardWeights", rect), false);
    // The kernels' filter gradient (the subsample path) against cpu: odd and even sizes, SAME and
    // VALID.
    for (
      const c of [
        { b: 3, h: 18, w: 10, ci: 6, co: 1, k: 1, s: 2, pad: "valid", seed: 1 },
        { b: 2, h: 7, w: 9, ci: 17, co: 5, k: 1, s: 2, pad: "same", seed: 2 },
        { b: 1, h: 11, w: 12, ci: 3, co: 20, k: 1, s: 2, pad: "valid", seed: 3 },
      ] as ConvCase[]
    ) {
      const cpu = await withNoLeaks(() => runOn("cpu", passes(c)), "cpu");
      const one = await onNative("onednn", passes(c));
      assertAllClose(one[2], cpu[2], TOL, `dW vs cpu ${JSON.stringify(c)}`);
    }
  },
});

Deno.test("native oneDNN: geometries oneDNN cannot express go to im2col", () => {
  const info = (
    x: [number, number, number, number],
    f: [number, number, number, number],
    s: number,
    pad: "same" | "valid" | tf.backend_util.ExplicitPadding,
    round?: "floor" | "round" | "ceil",
  ) => tf.backend_util.computeConv2DInfo(x, f, s, 1, pad, round, false);
  // SAME with one more row/column of padding at the bottom/right than at the top/left.
  assert.deepEqual(dnnlSpatial(info([1, 6, 7, 1], [2, 4, 1, 1], 1, "same")), {
    strides: [1, 1],
    padL: [0, 1],
    padR: [1, 2],
  });
  assert.deepEqual(dnnlSpatial(info([1, 9, 9, 1], [3, 3, 1, 1], 2, "valid")), {
    strides: [2, 2],
    padL: [0, 0],
    padR: [0, 0],
  });
  // Explicit padding rounded up: one output more than ⌊(in − k + pads) / s⌋ + 1.
  const explicit: tf.backend_util.ExplicitPadding = [[0, 0], [0, 0], [0, 0], [0, 0]];
  assert.equal(dnnlSpatial(info([1, 6, 6, 1], [3, 3, 1, 1], 2, explicit, "ceil")), null);
  assert.equal(dnnlSpatial(info([0, 6, 6, 1], [3, 3, 1, 1], 1, "same")), null);
});

const here = (p: string) => new URL(p, import.meta.url).href;

/** Runs a conv on native in a fresh process with `env`; returns its output. */
const freshProcess = async (env: Record<string, string>) => {
  const file = await Deno.makeTempFile({ suffix: ".ts" });
  try {
    await Deno.writeTextFile(
      file,
      `import { tf } from "${here("../../_deps.ts")}";
import { tryRegisterNative } from "${here("./register.ts")}";
import { convEngine } from "${here("./kernels/conv.ts")}";
const why = tryRegisterNative();
if (why) throw new Error(why);
await tf.setBackend("native");
const y = tf.conv2d(tf.ones([1, 3, 3, 2]), tf.ones([3, 3, 2, 1]), 1, "same");
const y2 = tf.conv2d(tf.ones([1, 4, 4, 1]), tf.ones([1, 1, 1, 1]), 1, "valid");
console.log("engine=" + convEngine() + " y=" + y.dataSync().join(",") + " n=" + y2.size);`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--frozen",
        `--config=${new URL("../../../deno.json", import.meta.url).pathname}`,
        "-A",
        file,
      ],
      env,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, text);
    return text;
  } finally {
    await Deno.remove(file);
  }
};

Deno.test({
  name: `native oneDNN: MLHF_DNNL=0 or no library keeps im2col and says so once${
    nativeAvailable ? "" : ` (skipped: ${nativeUnavailable!.slice(0, 90)})`
  }`,
  ignore: !nativeAvailable,
  fn: async () => {
    const sums = "y=8,12,8,12,18,12,8,12,8 n=16";
    for (
      const [env, why] of [
        [{ MLHF_DNNL: "0" }, /turned off \(MLHF_DNNL=0\)/],
        [{ MLHF_DNNL_PATH: "/nonexistent/libdnnl.so.2" }, /MLHF_DNNL_PATH \/nonexistent/],
      ] as const
    ) {
      const text = await freshProcess(env);
      assert.match(text, new RegExp(`engine=im2col ${sums}`));
      const said = text.split("\n").filter((l) => l.includes("convolutions by im2col + sgemm"));
      assert.equal(said.length, 1, text);
      assert.match(said[0], why);
    }
    if (!ignore) assert.match(await freshProcess({}), new RegExp(`engine=onednn ${sums}`));
    assert.equal(convEngine(), ignore ? "im2col" : "onednn");
  },
});
