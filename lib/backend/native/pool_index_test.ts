/**
 * Max-pool's linearization by arg-max indices on the native backend (`MlhfMaxPoolArgMax`,
 * `MlhfGatherFlat`, `MlhfScatterAddFlat`, run by `ops/conv.ts` where the backend has them): the indices
 * pick the element a plain-JS reference of docs/algorithm.md#max-pool-ties picks (first maximum in row-major window
 * order, NaN never winning, a window with nothing above −∞ giving its first in-bounds element), the
 * element cpu's first-arg-max masks pick, and the element `MaxPoolGrad` routes to; the DSL's J·v and
 * Jᵀ·u through them equal the masks' on cpu; gather and scatter are adjoint; `tf.grads` through them
 * (first and second order, and through the arg-max) equals cpu's through the masks; nothing leaks;
 * recycled output arrays are fully written.
 * @module
 */
import { tf } from "../../_deps.ts";
import { assert, fc } from "../../../tests/_util/deps.ts";
import { assertAllClose, withNoLeaks } from "../../../tests/_util/numeric.ts";
import { maxPool, type PoolAttrs } from "../../../ops/conv.ts";
import { linearize } from "../../../ops/interpret.ts";
import {
  axisGeometry,
  extractPatches,
  firstArgMaxMasks,
  type Padding,
  windowGeometry,
} from "../../../ops/windows.ts";
import {
  gatherFlat,
  maxPoolArgMax,
  maxPoolWithArgMax,
  scatterAddFlat,
} from "../../../ops/window_kernels.ts";
import {
  GATHER_FLAT_KERNEL,
  MAX_POOL_ARG_MAX_KERNEL,
  SCATTER_ADD_FLAT_KERNEL,
} from "../../kernels.ts";
import { NATIVE_BACKEND, NATIVE_ONLY_KERNELS } from "./backend.ts";
import { RECYCLE_MIN_ELEMENTS, recycleStats } from "./kernels/_util.ts";
import {
  assertSameBits,
  nativeAvailable,
  onBoth,
  randArray,
  randInts,
  runOn,
  testName,
} from "./_test_util.ts";

const ignore = !nativeAvailable;
const TOL = { rtol: 1e-5, atol: 1e-6 };

type Shape4 = [number, number, number, number];
interface PoolCase {
  readonly b: number;
  readonly h: number;
  readonly w: number;
  readonly c: number;
  readonly fh: number;
  readonly fw: number;
  readonly sh: number;
  readonly sw: number;
  readonly pad: Padding;
  readonly ints: boolean;
  readonly seed: number;
}

const poolCase: fc.Arbitrary<PoolCase> = fc.record({
  b: fc.integer({ min: 1, max: 2 }),
  h: fc.integer({ min: 1, max: 8 }),
  w: fc.integer({ min: 1, max: 8 }),
  c: fc.integer({ min: 1, max: 4 }),
  fh: fc.integer({ min: 1, max: 4 }),
  fw: fc.integer({ min: 1, max: 4 }),
  sh: fc.integer({ min: 1, max: 4 }),
  sw: fc.integer({ min: 1, max: 4 }),
  pad: fc.constantFrom<Padding>("same", "valid"),
  ints: fc.boolean(), // small integers: ties and all-negative windows
  seed: fc.integer({ min: 0, max: 1e6 }),
}).filter((p) => p.pad === "same" || (p.h >= p.fh && p.w >= p.fw));

const shapeOf = (p: PoolCase): Shape4 => [p.b, p.h, p.w, p.c];
const attrsOf = (p: PoolCase): PoolAttrs => ({
  filterSize: [p.fh, p.fw],
  strides: [p.sh, p.sw],
  padding: p.pad,
});
const outShape = (p: PoolCase): Shape4 => [
  p.b,
  axisGeometry(p.h, p.fh, p.sh, p.pad).out,
  axisGeometry(p.w, p.fw, p.sw, p.pad).out,
  p.c,
];
const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const xValues = (p: PoolCase) => (p.ints ? randInts : randArray)(size(shapeOf(p)), p.seed);

/**
 * docs/algorithm.md#max-pool-ties in plain JS: per window, the first element (row-major) strictly
 * above every earlier one, starting from −∞ at the first in-bounds element (NaN is never above
 * anything).
 */
const referenceArgMax = (x: Float32Array, p: PoolCase): Int32Array => {
  const gh = axisGeometry(p.h, p.fh, p.sh, p.pad), gw = axisGeometry(p.w, p.fw, p.sw, p.pad);
  const out = new Int32Array(p.b * gh.out * gw.out * p.c);
  let o = 0;
  for (let n = 0; n < p.b; n++) {
    for (let i = 0; i < gh.out; i++) {
      for (let j = 0; j < gw.out; j++) {
        for (let c = 0; c < p.c; c++, o++) {
          const r0 = i * p.sh - gh.padBefore, c0 = j * p.sw - gw.padBefore;
          const at = (r: number, q: number) => ((n * p.h + r) * p.w + q) * p.c + c;
          let best = -Infinity, pos = at(Math.max(r0, 0), Math.max(c0, 0));
          for (let r = r0; r < r0 + p.fh; r++) {
            for (let q = c0; q < c0 + p.fw; q++) {
              if (r < 0 || r >= p.h || q < 0 || q >= p.w) continue;
              if (x[at(r, q)] > best) [best, pos] = [x[at(r, q)], at(r, q)];
            }
          }
          out[o] = pos;
        }
      }
    }
  }
  return out;
};

/** The flat index each cpu first-arg-max mask selects: Σₖ maskₖ · patchₖ(0, 1, 2, …). */
const maskIndices = (x: tf.Tensor4D, p: PoolCase): tf.Tensor => {
  const g = windowGeometry(p.h, p.w, [p.fh, p.fw], [p.sh, p.sw], p.pad);
  const iota = tf.reshape(tf.range(0, x.size, 1, "float32"), x.shape) as tf.Tensor4D;
  const masks = firstArgMaxMasks(x, g);
  return tf.addN(extractPatches(iota, g, -1).map((q, k) => tf.mul(q, masks[k])));
};

const argMaxOf = (x: tf.Tensor4D, p: PoolCase): tf.Tensor4D => {
  const idx = maxPoolArgMax(x, [p.fh, p.fw], [p.sh, p.sw], p.pad);
  assert.equal(idx.dtype, "int32");
  assert.deepEqual(idx.shape, outShape(p));
  return idx;
};

const maxPoolGradKernel = (dy: tf.Tensor, x: tf.Tensor, p: PoolCase): tf.Tensor =>
  tf.engine().runKernel("MaxPoolGrad", { dy, input: x, output: x }, {
    filterSize: [p.fh, p.fw],
    strides: [p.sh, p.sw],
    pad: p.pad,
  } as unknown as tf.NamedAttrMap) as tf.Tensor;

/** Exact equality that treats NaN as equal to NaN (and −0 as +0), with the first mismatch named. */
const sameValues = (got: ArrayLike<number>, want: ArrayLike<number>, what: string) => {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < got.length; i++) {
    const g = got[i], w = want[i];
    if (!(g === w || (g !== g && w !== w))) assert.fail(`${what}[${i}] = ${g}, expected ${w}`);
  }
};

Deno.test({
  name: testName("the project's kernels exist on native only; cpu's max-pool residuals are masks"),
  ignore,
  fn: async () => {
    for (const k of NATIVE_ONLY_KERNELS) {
      assert.ok(tf.getKernel(k, NATIVE_BACKEND), `no native ${k}`);
      assert.equal(tf.getKernel(k, "cpu"), undefined, `cpu has ${k}`);
    }
    for (const k of [MAX_POOL_ARG_MAX_KERNEL, GATHER_FLAT_KERNEL, SCATTER_ADD_FLAT_KERNEL]) {
      assert.ok(tf.getGradient(k), `no gradient for ${k}`);
    }
    await runOn("cpu", () => {
      const x = tf.zeros([1, 2, 2, 1]) as tf.Tensor4D;
      const res = maxPool.residuals!(
        [x],
        x,
        attrsOf({ fh: 2, fw: 2, sh: 2, sw: 2, pad: "valid" } as PoolCase),
      );
      assert.ok("masks" in res && !res.idx, "cpu max-pool residuals are masks");
      tf.dispose(res as unknown as tf.TensorContainer);
      return [];
    });
  },
});

Deno.test({
  name: testName(
    "MlhfMaxPoolArgMax picks the reference's, the cpu masks' and MaxPoolGrad's element",
  ),
  ignore,
  fn: async () => {
    await fc.assert(
      fc.asyncProperty(poolCase, async (p) => {
        const xv = xValues(p);
        const want = referenceArgMax(xv, p);
        const [fromMasks] = await runOn("cpu", () => maskIndices(tf.tensor4d(xv, shapeOf(p)), p));
        const dyv = randArray(size(outShape(p)), p.seed + 1);
        const [idx, gathered, pooled, scattered, grad] = await runOn("native", () => {
          const x = tf.tensor4d(xv, shapeOf(p)), dy = tf.tensor(dyv, outShape(p));
          const i = argMaxOf(x, p);
          return [
            tf.cast(i, "float32"),
            gatherFlat(x, i),
            tf.maxPool(x, [p.fh, p.fw], [p.sh, p.sw], p.pad),
            scatterAddFlat(dy, i, x.shape),
            maxPoolGradKernel(dy, x, p),
          ];
        });
        const what = JSON.stringify(p);
        sameValues(idx, want, `indices vs reference ${what}`);
        sameValues(idx, fromMasks, `indices vs cpu masks ${what}`);
        sameValues(gathered, pooled, `x at the indices vs MaxPool ${what}`);
        sameValues(scattered, grad, `scatter vs MaxPoolGrad ${what}`); // same sums, same order
      }),
      { numRuns: 150 },
    );
  },
});

const SPECIALS = [NaN, Infinity, -Infinity, -0, 0, 1, -1, 3e38, -3e38, 1e-40];

Deno.test({
  name: testName("MlhfMaxPoolArgMax with NaN, ±∞ and ±0 in the windows equals the reference"),
  ignore,
  fn: async () => {
    await fc.assert(
      fc.asyncProperty(poolCase, fc.integer({ min: 1, max: 4 }), async (p, every) => {
        const xv = xValues(p);
        for (let i = p.seed % every; i < xv.length; i += every) {
          xv[i] = SPECIALS[(i * 7 + p.seed) % SPECIALS.length];
        }
        const want = referenceArgMax(xv, p);
        const dyv = randArray(size(outShape(p)), p.seed + 1);
        const [idx, scattered, grad] = await runOn("native", () => {
          const x = tf.tensor4d(xv, shapeOf(p)), dy = tf.tensor(dyv, outShape(p));
          const i = argMaxOf(x, p);
          return [
            tf.cast(i, "float32"),
            scatterAddFlat(dy, i, x.shape),
            maxPoolGradKernel(dy, x, p),
          ];
        });
        sameValues(idx, want, `indices ${JSON.stringify(p)} every ${every}`);
        sameValues(scattered, grad, `scatter vs MaxPoolGrad ${JSON.stringify(p)} every ${every}`);
      }),
      { numRuns: 120 },
    );
  },
});

/** The DSL's max-pool J·v and Jᵀ·u from its residuals on the active backend (masks or indices). */
const dslProducts = (p: PoolCase, xv: Float32Array, dxv: Float32Array, ctv: Float32Array) => {
  const x = tf.tensor4d(xv, shapeOf(p)), dx = tf.tensor4d(dxv, shapeOf(p));
  const ct = tf.tensor4d(ctv, outShape(p));
  const a = attrsOf(p), y = maxPool.primal([x], a);
  const res = maxPool.residuals!([x], y, a);
  assert.equal(res.idx !== undefined, tf.getBackend() === NATIVE_BACKEND, "residual kind");
  return {
    x,
    y,
    a,
    res,
    jvp: maxPool.jvp([x], y, [dx], a, res)!,
    vjp: maxPool.transpose([x], y, ct, [true], a, res)[0]!,
  };
};

Deno.test({
  name: testName("max-pool J·v and Jᵀ·u by gather/scatter equal cpu's by masks, and are adjoint"),
  ignore,
  fn: async () => {
    await fc.assert(
      fc.asyncProperty(poolCase, async (p) => {
        const xv = xValues(p);
        const dxv = randArray(xv.length, p.seed + 1);
        const ctv = randArray(size(outShape(p)), p.seed + 2);
        const r = await onBoth(() => {
          const { jvp, vjp } = dslProducts(p, xv, dxv, ctv);
          return [jvp, vjp];
        });
        const what = JSON.stringify(p);
        sameValues(r.native[0], r.cpu[0], `J·v ${what}`); // one product per output: exact
        assertAllClose(r.native[1], r.cpu[1], TOL, `Jᵀ·u ${what}`); // overlapping sums reorder
        // ⟨u, J·v⟩ = ⟨Jᵀ·u, v⟩ in float64 over the native float32 results.
        let lhs = 0, rhs = 0, scale = 0;
        for (let i = 0; i < ctv.length; i++) lhs += ctv[i] * r.native[0][i];
        for (let i = 0; i < dxv.length; i++) {
          rhs += r.native[1][i] * dxv[i];
          scale += Math.abs(r.native[1][i] * dxv[i]);
        }
        assert.ok(
          Math.abs(lhs - rhs) <= 1e-6 * Math.max(scale, 1),
          `adjoint ${lhs} vs ${rhs} ${what}`,
        );
      }),
      { numRuns: 100 },
    );
  },
});

Deno.test({
  name: testName("tf.grads through gather, scatter and arg-max equal cpu's through the masks"),
  ignore,
  fn: async () => {
    await fc.assert(
      fc.asyncProperty(poolCase, async (p) => {
        const xv = xValues(p);
        const dxv = randArray(xv.length, p.seed + 1), zv = randArray(xv.length, p.seed + 3);
        const ctv = randArray(size(outShape(p)), p.seed + 2);
        const r = await onBoth(() => {
          const { x, y, a, res } = dslProducts(p, xv, dxv, ctv);
          const dx = tf.tensor4d(dxv, shapeOf(p)), ct = tf.tensor4d(ctv, outShape(p));
          const z = tf.tensor4d(zv, shapeOf(p));
          const J = (v: tf.Tensor) => maxPool.jvp([x], y, [v], a, res)!;
          const Jt = (u: tf.Tensor) => maxPool.transpose([x], y, u, [true], a, res)[0]!;
          // First order: ∂⟨J·v, u⟩ = (Jᵀ·u, J·v) and ∂⟨Jᵀ·u, v⟩ = (J·v, Jᵀ·u).
          const g1 = tf.grads((v: tf.Tensor, u: tf.Tensor) => tf.sum(tf.mul(J(v), u)))([dx, ct]);
          const g2 = tf.grads((u: tf.Tensor, v: tf.Tensor) => tf.sum(tf.mul(Jt(u), v)))([ct, dx]);
          // Second order: the gradient of ⟨∇q(v), z⟩ with q(v) = ½‖J·v‖², i.e. JᵀJ·z.
          const q = tf.grad((v: tf.Tensor) => tf.mul(0.5, tf.sum(tf.square(J(v)))));
          const g3 = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(q(v), z)))(dx);
          // Through the arg-max itself (piecewise constant: zero), d/dx ⟨J(x)·x, u⟩ = Jᵀ·u. (The
          // masks have no gradient through their arg-max: TF.js has none for Equal. cpu gives Jᵀ·u.)
          const g4 = tf.getBackend() !== NATIVE_BACKEND ? Jt(ct) : tf.grad((xx: tf.Tensor) => {
            const yy = maxPool.primal([xx], a);
            const rr = maxPool.residuals!([xx], yy, a);
            return tf.sum(tf.mul(maxPool.jvp([xx], yy, [xx], a, rr)!, ct));
          })(x);
          return [...g1, ...g2, g3, g4];
        });
        r.cpu.forEach((c, i) =>
          assertAllClose(r.native[i], c, TOL, `grad ${i} ${JSON.stringify(p)}`)
        );
      }),
      { numRuns: 40 },
    );
  },
});

Deno.test({
  name: testName("no tensors leak: hooks, DSL rules, tf.grads and a linearization with max-pool"),
  ignore,
  fn: async () => {
    const p: PoolCase = {
      b: 2,
      h: 7,
      w: 6,
      c: 3,
      fh: 3,
      fw: 2,
      sh: 2,
      sw: 1,
      pad: "same",
      ints: true,
      seed: 4,
    };
    const xv = xValues(p);
    await runOn("native", () => {
      const x = tf.tensor4d(xv, shapeOf(p));
      const a = attrsOf(p);
      // Outside any tidy: the index path makes no intermediates (the masks path leaves its patches
      // and products to the caller's tidy), so every tensor is one returned and disposed here.
      const before = tf.memory().numTensors;
      const y = maxPool.primal([x], a);
      const res = maxPool.residuals!([x], y, a);
      const j = maxPool.jvp([x], y, [x], a, res)!;
      const t = maxPool.transpose([x], y, j, [true], a, res)[0]!;
      const g = tf.grads((v: tf.Tensor) => tf.sum(tf.square(maxPool.jvp([x], y, [v], a, res)!)))([
        x,
      ]);
      tf.dispose([y, j, t, ...g, res as unknown as tf.TensorContainer]);
      assert.equal(tf.memory().numTensors, before, "DSL rules and tf.grads");
      const lin = linearize(
        (nn, q: { x: tf.Tensor }) => nn.maxPool(nn.relu(q.x), [3, 2], { strides: [2, 1] }),
        { x },
      );
      const jv = lin.jvp({ x });
      const vj = lin.vjp(jv);
      tf.dispose([jv, vj.x]);
      lin.dispose();
      assert.equal(tf.memory().numTensors, before, "linearize, jvp, vjp, dispose");
      tf.dispose(x);
      return [];
    });
  },
});

Deno.test({
  name: testName("the index kernels fully write recycled output arrays"),
  ignore,
  fn: async () => {
    // Large enough to be recycled; 1×1 windows with stride 2 leave 3/4 of Jᵀ·u's elements untouched.
    const p: PoolCase = {
      b: 4,
      h: 64,
      w: 64,
      c: 8,
      fh: 1,
      fw: 1,
      sh: 2,
      sw: 2,
      pad: "valid",
      ints: false,
      seed: 9,
    };
    assert.ok(size(outShape(p)) >= RECYCLE_MIN_ELEMENTS);
    const xs = [xValues(p), xValues({ ...p, seed: 10 })];
    const dyv = randArray(size(outShape(p)), 11);
    await withNoLeaks(() =>
      runOn("native", () => {
        const before = recycleStats().reused;
        // Indices of another input, and floats of both output sizes, into the recycling pool.
        const other = tf.tensor4d(xValues({ ...p, seed: 12 }), shapeOf(p));
        const stale = argMaxOf(other, p);
        tf.dispose([stale, tf.cast(stale, "float32"), tf.add(other, 7), other]);
        for (const xv of xs) { // the first round gets those arrays, the second the first round's
          const x = tf.tensor4d(xv, shapeOf(p)), dy = tf.tensor(dyv, outShape(p));
          const i = argMaxOf(x, p);
          const got = [
            tf.cast(i, "float32"),
            gatherFlat(x, i),
            scatterAddFlat(dy, i, x.shape),
          ];
          const want = referenceArgMax(xv, p);
          sameValues(got[0].dataSync(), want, "indices");
          sameValues(got[1].dataSync(), Float32Array.from(want, (k) => xv[k]), "gather");
          const s = new Float32Array(xv.length);
          want.forEach((k, o) => (s[k] += dyv[o]));
          sameValues(got[2].dataSync(), s, "scatter");
          tf.dispose([x, dy, i, ...got]);
        }
        assert.ok(recycleStats().reused > before, "arrays were recycled");
        return [];
      })
    );
  },
});

Deno.test({
  name: testName("the gather and the scatter-add reject indices outside their input"),
  ignore,
  fn: async () => {
    await runOn("native", () => {
      const x = tf.tensor1d([1, 2, 3]);
      for (const bad of [[0, 3], [-1, 0]]) {
        const i = tf.tensor1d(bad, "int32");
        assert.throws(() => gatherFlat(x, i), /outside \[0, 3\)/);
        assert.throws(() => scatterAddFlat(tf.ones([2]), i, [3]), /outside \[0, 3\)/);
      }
      const ok = scatterAddFlat(tf.tensor1d([1, 2]), tf.tensor1d([2, 2], "int32"), [3]);
      sameValues(ok.dataSync(), [0, 0, 3], "duplicates sum");
      return [];
    });
  },
});

Deno.test({
  name: testName(
    "MlhfMaxPoolWithArgMax: y bit for bit native MaxPool's (= cpu's), indices the arg-max kernel's",
  ),
  ignore,
  fn: async () => {
    await fc.assert(
      fc.asyncProperty(poolCase, fc.integer({ min: 1, max: 6 }), async (p, every) => {
        const xv = xValues(p);
        if (every < 5) { // specials in the windows; else plain values
          for (let i = p.seed % every; i < xv.length; i += every) {
            xv[i] = SPECIALS[(i * 7 + p.seed) % SPECIALS.length];
          }
        }
        const pool = (x: tf.Tensor4D) => tf.maxPool(x, [p.fh, p.fw], [p.sh, p.sw], p.pad);
        const [cpuY] = await runOn("cpu", () => pool(tf.tensor4d(xv, shapeOf(p))));
        const [y, idx, nativeY, argMax] = await runOn("native", () => {
          const x = tf.tensor4d(xv, shapeOf(p));
          const [fy, fi] = maxPoolWithArgMax(x, [p.fh, p.fw], [p.sh, p.sw], p.pad);
          assert.equal(fi.dtype, "int32");
          assert.deepEqual(fy.shape, outShape(p));
          return [fy, tf.cast(fi, "float32"), pool(x), tf.cast(argMaxOf(x, p), "float32")];
        });
        const what = `${JSON.stringify(p)} every ${every}`;
        assertSameBits(y, nativeY, `y vs native MaxPool ${what}`);
        sameValues(y, cpuY, `y vs cpu MaxPool ${what}`); // (native orders −0 below +0)
        sameValues(idx, argMax, `indices vs MlhfMaxPoolArgMax ${what}`);
        sameValues(idx, referenceArgMax(xv, p), `indices vs reference ${what}`);
      }),
      { numRuns: 150 },
    );
  },
});

Deno.test({
  name: testName(
    "max-pool's primal on native keeps the fused indices for its residuals; tf.grads through it",
  ),
  ignore,
  fn: async () => {
    const p: PoolCase = {
      b: 2,
      h: 7,
      w: 6,
      c: 3,
      fh: 3,
      fw: 3,
      sh: 2,
      sw: 2,
      pad: "same",
      ints: true,
      seed: 5,
    };
    const xv = xValues(p), dyv = randArray(size(outShape(p)), 9);
    const before = tf.memory().numTensors;
    const [grad, want] = await runOn("native", () => {
      const x = tf.tensor4d(xv, shapeOf(p)), dy = tf.tensor4d(dyv, outShape(p));
      const a = attrsOf(p), y = maxPool.primal([x], a);
      const res = maxPool.residuals!([x], y, a);
      assert.ok(res.idx, "index residuals on native");
      const recomputed = argMaxOf(x, p);
      sameValues(res.idx.dataSync(), recomputed.dataSync(), "kept indices vs arg-max kernel");
      const g = tf.grads((t: tf.Tensor) =>
        tf.sum(tf.mul(maxPoolWithArgMax(t as tf.Tensor4D, [3, 3], [2, 2], "same")[0], dy))
      )([x])[0];
      return [g, maxPoolGradKernel(dy, x, p)];
    });
    sameValues(grad, want, "tf.grads through MlhfMaxPoolWithArgMax vs MaxPoolGrad");
    assert.equal(tf.memory().numTensors, before, "tensors leaked");
  },
});
