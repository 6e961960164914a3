/**
 * The native LSTM kernels (`lstm.ts`, called with their gradients by
 * `lib/optim/mlhf/lstm_kernel.ts`): the fused cell equals the op composition and `tf.basicLSTMCell`
 * with forget bias 1; the fused network step equals the composed one; their gradients with respect
 * to every input equal the composition's, and its second order matches central differences;
 * `lstmCell`/`lstmNetStep` run them on native only, and only for inputs that fit them; no tensor
 * leaks (`runOn` checks).
 * @module
 */
import { tf } from "../../_deps.ts";
import { assert } from "../../../tests/_util/deps.ts";
import { assertAllClose } from "../../../tests/_util/numeric.ts";
import {
  lstmCell,
  lstmCellComposed,
  lstmNetStep,
  lstmNetStepComposed,
  type LstmNetWeights,
  type LstmState,
} from "../../optim/mlhf/lstm.ts";
import {
  lstmCellKernel,
  lstmCellKernelFits,
  lstmNetKernelFits,
  lstmNetStepKernel,
} from "../../optim/mlhf/lstm_kernel.ts";
import {
  LSTM_CELL_KERNEL,
  LSTM_KERNEL_UNITS,
  LSTM_NET_GRAD_KERNEL,
  LSTM_NET_KERNEL,
} from "../../kernels.ts";
import { lstmNetGradF64 } from "./_lstm_grad_f64.ts";
import { NATIVE_BACKEND } from "./backend.ts";
import { U } from "./lstm_rows.ts";
import { nativeAvailable, randArray, runOn, testName } from "./_test_util.ts";

const ignore = !nativeAvailable;
const TOL = { rtol: 1e-5, atol: 1e-6 };
const GRAD_TOL = { rtol: 1e-4, atol: 1e-5 };
/** The network's outputs sum 2 layers and the head in float32 (the composition) vs float64. */
const NET_TOL = { rtol: 1e-5, atol: 1e-5 };

/** Cell inputs for n rows of width inW, values scaled by `scale` (large: saturated gates). */
const cellInputs = (n: number, inW: number, seed: number, scale = 1) => ({
  kernel: tf.tensor2d(randArray((inW + 4) * 16, seed), [inW + 4, 16]).mul(scale) as tf.Tensor2D,
  bias: tf.tensor1d(randArray(16, seed + 1)).mul(scale) as tf.Tensor1D,
  x: tf.tensor2d(randArray(n * inW, seed + 2), [n, inW]).mul(scale) as tf.Tensor2D,
  c: tf.tensor2d(randArray(n * 4, seed + 3), [n, 4]).mul(2 * scale) as tf.Tensor2D,
  h: tf.tensor2d(randArray(n * 4, seed + 4), [n, 4]) as tf.Tensor2D,
});

const fusedCell: typeof lstmCellComposed = (k, b, x, c, h) => {
  if (!lstmCellKernelFits(k, b, x, c, h)) throw new Error("the cell kernel does not fit");
  return lstmCellKernel(k, b, x, c, h);
};

/** The kernels `f` runs (its tensors disposed). */
const kernelsRun = async (f: () => tf.Tensor | tf.Tensor[]): Promise<string[]> => {
  const info = await tf.profile(() => tf.tidy(f));
  tf.dispose(info.result as tf.TensorContainer);
  return info.kernelNames;
};

const CASES = [
  { n: 1, inW: 3, seed: 1, scale: 1 },
  { n: 5, inW: 4, seed: 2, scale: 1 },
  { n: 2100, inW: 3, seed: 3, scale: 1 }, // crosses a block boundary
  { n: 513, inW: 3, seed: 4, scale: 8 }, // saturated gates
];

Deno.test({
  name: testName("the fused LSTM cell equals the composition and tf.basicLSTMCell"),
  ignore,
  fn: async () => {
    for (const cs of CASES) {
      const r = await runOn("native", () => {
        const { kernel, bias, x, c, h } = cellInputs(cs.n, cs.inW, cs.seed, cs.scale);
        return [
          ...fusedCell(kernel, bias, x, c, h),
          ...lstmCellComposed(kernel, bias, x, c, h),
          ...tf.basicLSTMCell(1, kernel, bias, x, c, h),
          ...lstmCell(kernel, bias, x, c, h), // routed to the fused cell
        ];
      });
      for (const k of [2, 4, 6]) {
        assertAllClose(r[0], r[k], TOL, `c′ vs ${k} (${JSON.stringify(cs)})`);
        assertAllClose(r[1], r[k + 1], TOL, `h′ vs ${k + 1} (${JSON.stringify(cs)})`);
      }
    }
  },
});

Deno.test({
  name: testName("the fused cell's gradients equal the composition's"),
  ignore,
  fn: async () => {
    for (const cs of CASES) {
      const grads = (cell: typeof lstmCellComposed) => () => {
        const { kernel, bias, x, c, h } = cellInputs(cs.n, cs.inW, cs.seed, cs.scale);
        const wc = tf.tensor2d(randArray(cs.n * 4, cs.seed + 7), [cs.n, 4]);
        const wh = tf.tensor2d(randArray(cs.n * 4, cs.seed + 8), [cs.n, 4]);
        return tf.grads((...ts: tf.Tensor[]) => {
          const [c1, h1] = cell(...(ts as Parameters<typeof cell>));
          return tf.add(tf.sum(tf.mul(c1, wc)), tf.sum(tf.mul(tf.square(h1), wh)));
        })([kernel, bias, x, c, h]);
      };
      const got = await runOn("native", grads(fusedCell));
      const want = await runOn("native", grads(lstmCellComposed));
      const names = ["kernel", "bias", "x", "c", "h"];
      want.forEach((w, i) =>
        assertAllClose(got[i], w, GRAD_TOL, `d/d${names[i]} (${JSON.stringify(cs)})`)
      );
    }
  },
});

// The composition's own second order is not a reference: TF.js loses the second-order path
// through ops that save their outputs (sigmoid, tanh), so the fused cell's is checked against
// central differences of its first-order gradient.
Deno.test({
  name: testName("the fused cell's second-order gradient matches central differences"),
  ignore,
  fn: async () => {
    for (const cs of CASES.slice(0, 3)) {
      const r = await runOn("native", () => {
        const { kernel, bias, x, c, h } = cellInputs(cs.n, cs.inW, cs.seed, cs.scale);
        const wh = tf.tensor2d(randArray(cs.n * 4, cs.seed + 8), [cs.n, 4]);
        const v = tf.tensor2d(randArray(cs.n * cs.inW, cs.seed + 9), [cs.n, cs.inW]);
        // φ(x) = ⟨∂L/∂kernel, kernel⟩ with L = Σ c′ + Σ wh·h′²; compare ⟨∇φ(x), v⟩ with a difference.
        const phi = (xx: tf.Tensor) => {
          const dk = tf.grad((k: tf.Tensor) => {
            const [c1, h1] = fusedCell(k as tf.Tensor2D, bias, xx as tf.Tensor2D, c, h);
            return tf.add(tf.sum(c1), tf.sum(tf.mul(tf.square(h1), wh)));
          })(kernel);
          return tf.sum(tf.mul(dk, kernel));
        };
        const eps = 1e-2;
        const analytic = tf.sum(tf.mul(tf.grad(phi)(x), v));
        const fd = tf.div(
          tf.sub(phi(tf.add(x, tf.mul(v, eps))), phi(tf.sub(x, tf.mul(v, eps)))),
          2 * eps,
        );
        return [analytic, fd];
      });
      assertAllClose(
        r[0],
        r[1],
        { rtol: 2e-3, atol: 2e-3 },
        `second order (${JSON.stringify(cs)})`,
      );
    }
  },
});

/** Net weights with the given input width, from a seed. */
const netInputs = (n: number, seed: number, scale = 1) => {
  const t2 = (r: number, c: number, s: number) =>
    tf.tensor2d(randArray(r * c, s), [r, c]).mul(scale) as tf.Tensor2D;
  const w: LstmNetWeights = {
    layers: [
      { kernel: t2(7, 16, seed), bias: tf.tensor1d(randArray(16, seed + 1)) },
      { kernel: t2(8, 16, seed + 2), bias: tf.tensor1d(randArray(16, seed + 3)) },
    ],
    head: { kernel: t2(4, 1, seed + 4), bias: tf.tensor1d([0.3]) },
  };
  const st: LstmState = {
    c: [t2(n, 4, seed + 5), t2(n, 4, seed + 6)],
    h: [t2(n, 4, seed + 7).tanh() as tf.Tensor2D, t2(n, 4, seed + 8).tanh() as tf.Tensor2D],
  };
  return { w, st, input: t2(n, 3, seed + 9).tanh() as tf.Tensor2D };
};

const netTensors = (w: LstmNetWeights, st: LstmState, input: tf.Tensor2D): tf.Tensor[] => [
  input,
  ...w.layers.flatMap((l, i) => [l.kernel, l.bias, st.c[i], st.h[i]]),
  w.head.kernel,
  w.head.bias,
];
const fromTensors = (ts: tf.Tensor[]) => ({
  input: ts[0] as tf.Tensor2D,
  w: {
    layers: [0, 1].map((i) => ({
      kernel: ts[1 + 4 * i] as tf.Tensor2D,
      bias: ts[2 + 4 * i] as tf.Tensor1D,
    })),
    head: { kernel: ts[9] as tf.Tensor2D, bias: ts[10] as tf.Tensor1D },
  },
  st: {
    c: [ts[3] as tf.Tensor2D, ts[7] as tf.Tensor2D],
    h: [ts[4] as tf.Tensor2D, ts[8] as tf.Tensor2D],
  },
});

type NetStep = typeof lstmNetStepComposed;
const fusedNet: NetStep = (w, st, input) => {
  if (!lstmNetKernelFits(w, st, input)) throw new Error("the network kernel does not fit");
  return lstmNetStepKernel(w, st, input);
};

Deno.test({
  name: testName("the fused network step equals the composition, values and gradients"),
  ignore,
  fn: async () => {
    for (const cs of [{ n: 3, seed: 11, scale: 1 }, { n: 2500, seed: 12, scale: 4 }]) {
      const run = (step: NetStep) => () => {
        const { w, st, input } = netInputs(cs.n, cs.seed, cs.scale);
        const r = step(w, st, input);
        const wo = tf.tensor1d(randArray(cs.n, cs.seed + 20));
        const ws = [0, 1, 2, 3].map((k) =>
          tf.tensor2d(randArray(cs.n * 4, cs.seed + 21 + k), [cs.n, 4])
        );
        const g = tf.grads((...ts: tf.Tensor[]) => {
          const a = fromTensors(ts);
          const s = step(a.w, a.st, a.input);
          const s2 = step(a.w, s.state, a.input); // two steps: the state path too
          const parts = [...s2.state.c, ...s2.state.h].map((t, k) => tf.sum(tf.mul(t, ws[k])));
          return tf.addN([tf.sum(tf.mul(tf.square(s2.out), wo)), tf.sum(s.out), ...parts]);
        })(netTensors(w, st, input));
        return [r.out, ...r.state.c, ...r.state.h, ...g];
      };
      const got = await runOn("native", run(fusedNet));
      const want = await runOn("native", run(lstmNetStepComposed));
      // The gradient is the `MlhfLstmNetGrad` kernel's (no second order asked): its weights'
      // cotangents are sums over rows that cancel, both float32 paths within ~1e-6 of the largest
      // entry of the float64 value (next test), not of each small entry.
      const tol = (i: number, w: Float32Array) =>
        i < 5 ? NET_TOL : { ...GRAD_TOL, atol: Math.max(GRAD_TOL.atol, 2e-6 * maxAbs(w)) };
      want.forEach((w, i) =>
        assertAllClose(got[i], w, tol(i, w), `output ${i} (${JSON.stringify(cs)})`)
      );
      const routed = await runOn("native", run(lstmNetStep));
      want.forEach((w, i) => assertAllClose(routed[i], w, tol(i, w), `routed ${i}`));
    }
  },
});

const maxAbs = (v: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < v.length; i++) m = Math.max(m, Math.abs(v[i]));
  return m;
};

/** The largest |a − ref| over the largest |ref|. */
const scaledError = (a: ArrayLike<number>, ref: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < ref.length; i++) m = Math.max(m, Math.abs(a[i] - ref[i]));
  return m / Math.max(maxAbs(ref), 1e-30);
};

/** Plain arrays of a network step's inputs (n rows, weights scaled by `scale`). */
const netData = (n: number, seed: number, scale: number) => {
  const mk = (len: number, sd: number, sc = 1) => randArray(len, sd).map((v) => v * sc);
  return {
    x: mk(n * 3, seed).map(Math.tanh),
    layers: [0, 1].map((l) => ({
      w: mk((l === 0 ? 7 : 8) * 16, seed + 1 + 4 * l, scale),
      b: mk(16, seed + 2 + 4 * l),
      c: mk(n * 4, seed + 3 + 4 * l, scale),
      h: mk(n * 4, seed + 4 + 4 * l).map(Math.tanh),
    })),
    hk: mk(4, seed + 9),
    hb: Float32Array.of(0.3),
    dy: mk(17 * n, seed + 10),
  };
};

Deno.test({
  name: testName(
    "MlhfLstmNetGrad equals a float64 reference as closely as the composition's gradient does",
  ),
  ignore,
  fn: async () => {
    // 2500 rows: three blocks of the kernel; scale 4: saturated gates.
    for (const cs of [{ n: 3, seed: 11, scale: 1 }, { n: 2500, seed: 12, scale: 4 }]) {
      const { n } = cs;
      const d = netData(n, cs.seed, cs.scale);
      const ref = lstmNetGradF64(n, d.x, 3, d.layers, d.hk, d.dy);
      const inputs = () => [
        tf.tensor2d(d.x, [n, 3]),
        ...d.layers.flatMap((ly, l) => [
          tf.tensor2d(ly.w, [l === 0 ? 7 : 8, 16]),
          tf.tensor1d(ly.b),
          tf.tensor2d(ly.c, [n, 4]),
          tf.tensor2d(ly.h, [n, 4]),
        ]),
        tf.tensor2d(d.hk, [4, 1]),
        tf.tensor1d(d.hb),
      ];
      const kernel = await runOn("native", () => {
        const t = inputs();
        const named: tf.NamedTensorMap = { x: t[0], headKernel: t[9], headBias: t[10] };
        for (let l = 0; l < 2; l++) {
          [named[`kernel${l}`], named[`bias${l}`], named[`c${l}`], named[`h${l}`]] = t.slice(
            1 + 4 * l,
            5 + 4 * l,
          );
        }
        named.dy = tf.tensor1d(d.dy);
        return tf.engine().runKernel(LSTM_NET_GRAD_KERNEL, named, { layers: 2 }) as tf.Tensor[];
      });
      const composed = await runOn("native", () => {
        const dy = tf.tensor1d(d.dy);
        return tf.grads((...ts: tf.Tensor[]) => {
          const a = fromTensors(ts);
          const r = lstmNetStepComposed(a.w, a.st, a.input);
          const flat = [0, 1].flatMap((l) => [r.state.c[l], r.state.h[l]].map((t) => t.flatten()));
          return tf.sum(tf.mul(tf.concat([r.out, ...flat]), dy));
        })(inputs());
      });
      ref.forEach((r, i) => {
        const ek = scaledError(kernel[i], r), ec = scaledError(composed[i], r);
        const what = `input ${i} (${JSON.stringify(cs)}): kernel ${ek}, composition ${ec}`;
        assert.ok(ek <= 2e-6, what);
        assert.ok(ec <= 2e-6, what); // the reference itself is right
      });
    }
  },
});

Deno.test({
  name: testName(
    "the network step's gradient runs MlhfLstmNetGrad unless a tape records it (second order)",
  ),
  ignore,
  fn: async () => {
    const r = await runOn("native", () => {
      const { w, st, input } = netInputs(6, 3);
      const loss = (k: tf.Tensor, x: tf.Tensor) => {
        const ww = { ...w, layers: [{ ...w.layers[0], kernel: k as tf.Tensor2D }, w.layers[1]] };
        const s = fusedNet(ww, st, x as tf.Tensor2D);
        return tf.add(tf.sum(tf.square(s.out)), tf.sum(s.state.c[1]));
      };
      // φ(x) = ⟨∂L/∂kernel₀, kernel₀⟩: its gradient in x differentiates the LSTM's gradient.
      const phi = (x: tf.Tensor) =>
        tf.sum(
          tf.mul(tf.grad((k: tf.Tensor) => loss(k, x))(w.layers[0].kernel), w.layers[0].kernel),
        );
      const names = (f: () => unknown) => {
        const before = new Set<string>();
        const orig = tf.engine().runKernel.bind(tf.engine());
        const e = tf.engine() as unknown as { runKernel: typeof orig };
        e.runKernel = (name, ...rest) => {
          before.add(name);
          return orig(name, ...rest);
        };
        try {
          f();
        } finally {
          e.runKernel = orig;
        }
        return before;
      };
      const first = names(() => phi(input));
      const second = names(() => tf.grad(phi)(input));
      // First order: the kernel, no σ kernel anywhere. Under an outer tape the inner gradient is
      // the composition (its σ); the outer pass's own first-order step may use the kernel.
      assert.ok(first.has(LSTM_NET_GRAD_KERNEL) && !first.has("Sigmoid"), "first order");
      assert.ok(second.has("Sigmoid"), "second order: the composition");
      const v = tf.tensor2d(randArray(6 * 3, 5), [6, 3]);
      const eps = 1e-2;
      const analytic = tf.sum(tf.mul(tf.grad(phi)(input), v));
      const fd = tf.div(
        tf.sub(phi(tf.add(input, tf.mul(v, eps))), phi(tf.sub(input, tf.mul(v, eps)))),
        2 * eps,
      );
      return [analytic, fd];
    });
    assertAllClose(r[0], r[1], { rtol: 2e-3, atol: 2e-3 }, "second order of the network step");
  },
});

Deno.test({
  name: testName(
    "lstmCell and lstmNetStep run the LSTM kernels on native, the compositions on cpu",
  ),
  ignore,
  fn: async () => {
    assert.equal(U, LSTM_KERNEL_UNITS, "lstm_rows.ts's units are the kernels' contract");
    for (const name of [LSTM_CELL_KERNEL, LSTM_NET_KERNEL]) {
      assert.ok(tf.getKernel(name, NATIVE_BACKEND), `native has no ${name}`);
      assert.equal(tf.getKernel(name, "cpu"), undefined, `cpu has ${name}`);
    }
    for (const backend of ["native", "cpu"]) {
      const prev = tf.getBackend();
      await tf.setBackend(backend);
      try {
        const { kernel, bias, x, c, h } = cellInputs(2, 3, 1);
        const { w, st, input } = netInputs(2, 1);
        const cell = await kernelsRun(() => lstmCell(kernel, bias, x, c, h));
        const net = await kernelsRun(() => lstmNetStep(w, st, input).out);
        const on = backend === "native";
        assert.equal(cell.includes(LSTM_CELL_KERNEL), on, `${backend}: lstmCell ran ${cell}`);
        assert.equal(net.includes(LSTM_NET_KERNEL), on, `${backend}: lstmNetStep ran ${net}`);
        tf.dispose([kernel, bias, x, c, h, ...netTensors(w, st, input)]);
      } finally {
        await tf.setBackend(prev);
      }
    }
  },
});

Deno.test({
  name: testName("inputs the kernels do not handle run the composition"),
  ignore,
  fn: async () => {
    const r = await runOn("native", () => {
      // 3 units, int32 input: not the kernels' case.
      const k = tf.zeros([6, 12]) as tf.Tensor2D, b = tf.zeros([12]) as tf.Tensor1D;
      const x = tf.zeros([2, 3]) as tf.Tensor2D, s = tf.zeros([2, 3]) as tf.Tensor2D;
      assert.equal(lstmCellKernelFits(k, b, x, s, s), false);
      const { kernel, bias, c, h } = cellInputs(2, 3, 1);
      const xi = tf.zeros([2, 3], "int32") as tf.Tensor2D;
      assert.equal(lstmCellKernelFits(kernel, bias, xi, c, h), false);
      const { w, st, input } = netInputs(2, 1);
      assert.equal(lstmNetKernelFits(w, st, input), true);
      assert.equal(lstmNetKernelFits(w, { c: st.c.slice(0, 1), h: st.h }, input), false);
      const want = lstmCellComposed(k, b, x, s, s);
      return [...lstmCell(k, b, x, s, s), ...want];
    });
    assert.deepEqual([r[0], r[1]], [r[2], r[3]]);
  },
});
