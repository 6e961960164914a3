/**
 * K-FAC checks: the SPD inverse; the sampler; the factors against E[āāᵀ] and E[ggᵀ] computed in
 * plain JS loops (forward and backward passes written out by hand) for dense and conv layers, and
 * the zero-debiased EMA over two steps; the diagonal blocks against TF.js's tape; layer registration
 * (bias folding, shared and transposed kernels, dense on [B·T, in] rows); the preconditioned
 * direction against an explicit (T·Â ⊗ Ĝ)⁻¹ solve; regular momentum; the block-diagonal fallback for
 * big factors; loss decrease on a logistic regression and a tiny MLP; the curvature adapter; a
 * state whose structure is stable, a clear error on non-finite factors, and no tensor leaks.
 * @module
 */
import { tf } from "../_deps.ts";
import { assert } from "../../tests/_util/deps.ts";
import { useTestBackend } from "../../tests/_util/backend.ts";
import { assertAllClose, withNoLeaks } from "../../tests/_util/numeric.ts";
import { tinyNet } from "../../tests/_util/nets.ts";
import { foldIn, type Key, keyFromSeed, normal, uniform } from "../prng.ts";
import { disposeTree, leaves, mapTree, scale } from "../tree.ts";
import { tidyValue } from "../scope.ts";
import { linearize, plain } from "../../ops/interpret.ts";
import { softmaxCrossEntropy } from "../../ops/losses.ts";
import {
  type Batch,
  type GaussNewton,
  gaussNewtonProduct,
  type ModelFn,
} from "../curvature/gauss_newton.ts";
import { applyUpdates, disposeState, stateTensors } from "./base.ts";
import { kfac, kfacLayout, type KfacOptions, type KfacState, sampleCategorical } from "./kfac.ts";
import {
  blockSizes,
  cholesky,
  dampedInverse,
  NotPositiveDefiniteError,
  spdInverse,
} from "./kfac/spd.ts";

await useTestBackend();

type P = Record<string, tf.Tensor>;

// ---------------------------------------------------------------------------------------------
// Plain-JS reference helpers (float64).

const arr = (t: tf.Tensor): number[] => Array.from(t.dataSync());

/** (1/M) Σ_r x_r x_rᵀ over rows x_r, as a flat row-major n×n array. */
const meanOuter = (rows: readonly number[][]): Float64Array => {
  const n = rows[0].length;
  const out = new Float64Array(n * n);
  for (const r of rows) {
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        out[i * n + j] += r[i] * r[j] / rows.length;
      }
    }
  }
  return out;
};

const softmaxRow = (z: readonly number[]): number[] => {
  const m = Math.max(...z);
  const e = z.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
};

/** Rows g_b = softmax(z_b) − ŷ_b: the per-example gradient of the sampled negative log-likelihood. */
const sampledLogitGrads = (z: number[][], yHat: number[][]): number[][] =>
  z.map((row, b) => softmaxRow(row).map((p, c) => p - yHat[b][c]));

const rowsOf = (flat: ArrayLike<number>, n: number): number[][] =>
  Array.from({ length: flat.length / n }, (_, i) => Array.from(flat).slice(i * n, (i + 1) * n));

/** Solves K·x = r (n×n, row-major) by Gaussian elimination with partial pivoting. */
const solve = (k: Float64Array, n: number, r: readonly number[]): number[] => {
  const a = Float64Array.from(k), b = Float64Array.from(r);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let i = c + 1; i < n; i++) if (Math.abs(a[i * n + c]) > Math.abs(a[p * n + c])) p = i;
    for (let j = 0; j < n; j++) [a[c * n + j], a[p * n + j]] = [a[p * n + j], a[c * n + j]];
    [b[c], b[p]] = [b[p], b[c]];
    for (let i = c + 1; i < n; i++) {
      const f = a[i * n + c] / a[c * n + c];
      for (let j = c; j < n; j++) a[i * n + j] -= f * a[c * n + j];
      b[i] -= f * b[c];
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let i = n - 1; i >= 0; i--) {
    let s = b[i];
    for (let j = i + 1; j < n; j++) s -= a[i * n + j] * x[j];
    x[i] = s / a[i * n + i];
  }
  return x;
};

/** The inverse of an n×n matrix by n solves (for small reference inverses). */
const inverse = (m: Float64Array, n: number): Float64Array => {
  const out = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    const x = solve(m, n, Array.from({ length: n }, (_, i) => (i === j ? 1 : 0)));
    for (let i = 0; i < n; i++) out[i * n + j] = x[i];
  }
  return out;
};

const trace = (m: ArrayLike<number>, n: number) => {
  let s = 0;
  for (let i = 0; i < n; i++) s += m[i * n + i];
  return s;
};

const plusIdentity = (m: ArrayLike<number>, n: number, d: number): Float64Array => {
  const out = Float64Array.from(m);
  for (let i = 0; i < n; i++) out[i * n + i] += d;
  return out;
};

// ---------------------------------------------------------------------------------------------
// Nets and a training loop.

const rn = (seed: number, shape: number[], std = 1) =>
  tf.tensor(normal(keyFromSeed(seed), shape.reduce((a, b) => a * b, 1), 0, std), shape);

const labels = (seed: number, n: number, c: number) =>
  tf.tidy(() =>
    tf.oneHot(
      tf.tensor1d(Array.from(uniform(keyFromSeed(seed), n), (u) => Math.floor(u * c)), "int32"),
      c,
    ).toFloat()
  );

interface Net {
  readonly model: ModelFn<P>;
  readonly params: P;
  readonly batch: Batch;
}

/** Multinomial logistic regression x·W + b, on labels of a random linear teacher. */
const logisticRegression = (seed: number, b: number): Net => {
  const x = rn(seed, [b, 4]);
  const y = tf.tidy(() => {
    const teacher = rn(seed + 1, [4, 3], 2);
    return tf.oneHot(tf.argMax(tf.matMul(x, teacher), 1), 3).toFloat();
  });
  return {
    model: (nn, p, x) => nn.dense(x, p.w, p.b),
    params: { w: rn(seed + 2, [4, 3], 0.1), b: rn(seed + 3, [3], 0.1) },
    batch: { x, y },
  };
};

/** conv 3×3/2 SAME (2→3 channels) + bias → tanh → flatten (3·3·3) → dense 4: T = 9 locations. */
const convNet = (seed: number, b: number): Net => ({
  model: (nn, p, x) =>
    nn.dense(
      nn.flatten(nn.tanh(nn.biasAdd(nn.conv2d(x, p.k, { strides: 2, padding: "same" }), p.b))),
      p.w,
      p.c,
    ),
  params: {
    k: rn(seed, [3, 3, 2, 3], 0.5),
    b: rn(seed + 1, [3], 0.2),
    w: rn(seed + 2, [27, 4], 0.4),
    c: rn(seed + 3, [4], 0.1),
  },
  batch: { x: rn(seed + 4, [b, 5, 5, 2]), y: labels(seed + 5, b, 4) },
});

const disposeNet = (n: Net) => tf.dispose([n.params, n.batch] as unknown as tf.TensorContainer);

/** ∇L of the mean cross-entropy at params (owned by the caller). */
const gradientOf = (net: Net, params: P): P => {
  const gn = gaussNewtonProduct(net.model, softmaxCrossEntropy, params, net.batch);
  try {
    return mapTree(gn.gradient, (x) => tf.clone(x));
  } finally {
    gn.dispose();
  }
};

const lossOf = (net: Net, params: P): number =>
  tidyValue(() =>
    softmaxCrossEntropy.value(net.model(plain, params, net.batch.x) as tf.Tensor, net.batch.y)
      .dataSync()[0]
  );

/**
 * Runs `steps` updates of K-FAC (or of gradient descent at rate `gdRate`) on a fixed batch and
 * returns the losses before each step and after the last; disposes everything it creates.
 */
const train = (net: Net, steps: number, opts: KfacOptions | { gdRate: number }): number[] => {
  const opt = "gdRate" in opts ? null : kfac<P>(opts);
  let params = mapTree(net.params, (x) => tf.clone(x));
  let state = opt?.init(params);
  const losses = [lossOf(net, params)];
  for (let t = 0; t < steps; t++) {
    const g = gradientOf(net, params);
    let u: P;
    if (opt) {
      const [uu, next] = opt.update(g, state!, {
        params,
        batch: net.batch,
        model: net.model,
        key: foldIn(keyFromSeed(77), t),
      });
      disposeState(state, next);
      state = next;
      u = uu;
    } else {
      u = scale(g, -(opts as { gdRate: number }).gdRate);
    }
    const p2 = applyUpdates(params, u);
    disposeTree(u);
    disposeTree(g);
    disposeTree(params);
    params = p2;
    losses.push(lossOf(net, params));
  }
  disposeTree(params);
  if (state) disposeState(state);
  return losses;
};

/** One K-FAC update from `init` with a given key; returns the updates and the new state. */
const oneStep = (net: Net, opts: KfacOptions, key: Key): [P, KfacState<P>] => {
  const opt = kfac<P>(opts);
  const s0 = opt.init(net.params);
  const g = gradientOf(net, net.params);
  const r = opt.update(g, s0, { params: net.params, batch: net.batch, model: net.model, key });
  disposeState(s0, r[1]);
  disposeTree(g);
  return r;
};

/** Leaf shapes and numbers of a state, in order (its "structure"). */
const structure = (s: unknown): string =>
  JSON.stringify(s, (_k, v) => (v instanceof tf.Tensor ? `T[${v.shape}]` : v));

// ---------------------------------------------------------------------------------------------

Deno.test("spd: (m + δI)⁻¹ by Cholesky, pivots, blocks", () => {
  for (const n of [1, 2, 3, 4, 5, 7, 8, 9, 13, 37]) {
    const r = normal(keyFromSeed(n), n * (n + 2));
    const m = new Float64Array(n * n);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        for (let k = 0; k < n + 2; k++) m[i * n + j] += r[i * (n + 2) + k] * r[j * (n + 2) + k];
      }
    }
    const inv = spdInverse(m, n, 0.1);
    let err = 0;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let k = 0; k < n; k++) s += (m[i * n + k] + (i === k ? 0.1 : 0)) * inv[k * n + j];
        err = Math.max(err, Math.abs(s - (i === j ? 1 : 0)));
      }
    }
    assert.ok(err < 1e-9, `n=${n}: ‖(m+δI)·inv − I‖max = ${err}`);
  }
  assert.throws(() => cholesky([1, 2, 2, 1], 2), NotPositiveDefiniteError);
  assert.deepEqual(blockSizes(4097, 2048), [1366, 1366, 1365]);
  assert.deepEqual(blockSizes(5, 2), [2, 2, 1]);
  assert.deepEqual(blockSizes(7, 7), [7]);
  // Block-diagonal inverse: exact inverse of each diagonal block, zeros elsewhere.
  const m = Float64Array.from([4, 1, 2, 1, 5, 1, 2, 1, 6]);
  const bd = dampedInverse(m, 3, 0.5, 2);
  const top = inverse(Float64Array.from([4.5, 1, 1, 5.5]), 2);
  assertAllClose([bd[0], bd[1], bd[3], bd[4]], top, { rtol: 1e-12, atol: 1e-14 });
  assertAllClose([bd[8], bd[2], bd[5], bd[6], bd[7]], [1 / 6.5, 0, 0, 0, 0], { atol: 1e-14 });
});

Deno.test("sampleCategorical draws from softmax(z), deterministically per key", async () => {
  await withNoLeaks(() =>
    tidyValue(() => {
      const n = 20000;
      const z = tf.tile(tf.tensor2d([[0.5, -1, 2]]), [n, 1]);
      const y = sampleCategorical(z, keyFromSeed(1));
      const freq = arr(tf.mean(y, 0));
      assertAllClose(freq, softmaxRow([0.5, -1, 2]), { atol: 0.015, rtol: 0 }, "frequencies");
      assertAllClose(arr(tf.sum(y, 1)), new Array(n).fill(1), {}, "one-hot rows");
      assert.deepEqual(arr(sampleCategorical(z, keyFromSeed(1))), arr(y));
      assert.notDeepEqual(arr(sampleCategorical(z, keyFromSeed(2))), arr(y));
    })
  );
});

Deno.test("dense factors equal E[āāᵀ] and E[ggᵀ] of a hand-written tanh MLP; 2-step EMA", async () => {
  await withNoLeaks(() => {
    const net = tinyNet("mlpTanh", 3, 6);
    const x2 = rn(99, [6, 4]);
    const d = 0.5;
    const opt = kfac<P>({ covEmaDecay: d });
    let state = opt.init(net.params);
    try {
      const [w1, b1, w2, b2] = ["w1", "b1", "w2", "b2"].map((k) => arr(net.params[k]));
      /** Per-layer statistics of a batch x under the targets sampled with `key`. */
      const reference = (x: tf.Tensor, key: Key) => {
        const xs = rowsOf(arr(x), 4);
        const h = xs.map((r) =>
          b1.map((bj, j) => Math.tanh(bj + r.reduce((s, v, i) => s + v * w1[i * 5 + j], 0)))
        );
        const z = h.map((r) =>
          b2.map((bc, c) => bc + r.reduce((s, v, j) => s + v * w2[j * 3 + c], 0))
        );
        const yHat = tidyValue(() => rowsOf(arr(sampleCategorical(tf.tensor2d(z), key)), 3));
        const g2 = sampledLogitGrads(z, yHat);
        const g1 = g2.map((g, b) =>
          h[b].map((hj, j) => (1 - hj * hj) * g.reduce((s, gc, c) => s + gc * w2[j * 3 + c], 0))
        );
        return {
          a1: meanOuter(xs.map((r) => [...r, 1])),
          g1: meanOuter(g1),
          a2: meanOuter(h.map((r) => [...r, 1])),
          g2: meanOuter(g2),
        };
      };
      const keys = [keyFromSeed(5), keyFromSeed(6)];
      const batches = [net.batch, { x: x2, y: net.batch.y }];
      const expected = batches.map((b, i) => reference(b.x, keys[i]));
      for (let t = 0; t < 2; t++) {
        const g = gradientOf(net, net.params);
        const [u, next] = opt.update(g, state, {
          params: net.params,
          batch: batches[t],
          model: net.model,
          key: keys[t],
        });
        disposeTree(g);
        disposeTree(u);
        disposeState(state, next);
        state = next;
        const blocks = state.blocks!;
        assert.deepEqual(
          blocks.kron.map((b) => [b.kernel, b.bias, b.rows, b.out, b.locations]),
          [[0, 1, 4, 5, 1], [2, 3, 5, 3, 1]],
        );
        assert.deepEqual(blocks.diag, []);
        // Zero-debiased EMA: S₁ after one update, (d·S₁ + S₂)/(1 + d) after two.
        const mix = (k: "a1" | "g1" | "a2" | "g2") =>
          t === 0
            ? expected[0][k]
            : expected[0][k].map((v, i) => (d * v + expected[1][k][i]) / (1 + d));
        const tol = { rtol: 1e-4, atol: 1e-6 };
        assertAllClose(blocks.kron[0].a, mix("a1"), tol, `step ${t}: A of layer 1`);
        assertAllClose(blocks.kron[0].g, mix("g1"), tol, `step ${t}: G of layer 1`);
        assertAllClose(blocks.kron[1].a, mix("a2"), tol, `step ${t}: A of layer 2`);
        assertAllClose(blocks.kron[1].g, mix("g2"), tol, `step ${t}: G of layer 2`);
      }
    } finally {
      disposeState(state);
      x2.dispose();
      tf.dispose([net.params, net.batch] as unknown as tf.TensorContainer);
    }
  });
});

Deno.test("conv factors equal the KFC statistics over patches and locations", async () => {
  await withNoLeaks(() => {
    const B = 3, net = convNet(21, B);
    const key = keyFromSeed(8);
    const [u, state] = oneStep(net, {}, key);
    try {
      const [k, bias, w, c] = ["k", "b", "w", "c"].map((n) => arr(net.params[n]));
      const x = arr(net.batch.x); // [B, 5, 5, 2]
      const xAt = (b: number, r: number, q: number, ci: number) =>
        r < 0 || r >= 5 || q < 0 || q >= 5 ? 0 : x[((b * 5 + r) * 5 + q) * 2 + ci];
      // SAME, stride 2, 3×3 on 5×5: 3×3 outputs, one row/column of padding before.
      const patches: number[][] = [], flat: number[][] = [];
      const hs: number[][][] = []; // per example, per location: tanh outputs
      for (let b = 0; b < B; b++) {
        flat.push([]);
        hs.push([]);
        for (let p = 0; p < 3; p++) {
          for (let q = 0; q < 3; q++) {
            const patch: number[] = [];
            for (let i = 0; i < 3; i++) {
              for (let j = 0; j < 3; j++) {
                for (let ci = 0; ci < 2; ci++) patch.push(xAt(b, 2 * p + i - 1, 2 * q + j - 1, ci));
              }
            }
            patches.push([...patch, 1]);
            const h = [0, 1, 2].map((co) =>
              Math.tanh(bias[co] + patch.reduce((s, v, r) => s + v * k[r * 3 + co], 0))
            );
            hs[b].push(h);
            flat[b].push(...h);
          }
        }
      }
      const z = flat.map((f) =>
        c.map((cc, o) => cc + f.reduce((s, v, r) => s + v * w[r * 4 + o], 0))
      );
      const yHat = tidyValue(() => rowsOf(arr(sampleCategorical(tf.tensor2d(z), key)), 4));
      const gz = sampledLogitGrads(z, yHat);
      const gConv: number[][] = [];
      for (let b = 0; b < B; b++) {
        for (let t = 0; t < 9; t++) {
          gConv.push([0, 1, 2].map((co) => {
            const dh = gz[b].reduce((s, g, o) => s + g * w[(t * 3 + co) * 4 + o], 0);
            return dh * (1 - hs[b][t][co] ** 2);
          }));
        }
      }
      const blocks = state.blocks!;
      assert.deepEqual(
        blocks.kron.map((b) => [b.kernel, b.bias, b.rows, b.out, b.locations]),
        [[0, 1, 18, 3, 9], [2, 3, 27, 4, 1]],
      );
      const tol = { rtol: 1e-4, atol: 1e-6 };
      assertAllClose(blocks.kron[0].a, meanOuter(patches), tol, "conv A (over B·T patches)");
      assertAllClose(blocks.kron[0].g, meanOuter(gConv), tol, "conv G (over B·T locations)");
      assertAllClose(blocks.kron[1].a, meanOuter(flat.map((f) => [...f, 1])), tol, "dense A");
      assertAllClose(blocks.kron[1].g, meanOuter(gz), tol, "dense G");
    } finally {
      disposeTree(u);
      disposeState(state);
      disposeNet(net);
    }
  });
});

Deno.test("diagonal blocks (batch-norm γ, β) hold (Σ_b ∂ℓ_b/∂θ)²/B of the sampled loss", async () => {
  await withNoLeaks(() => {
    const tiny = tinyNet("convBatchNorm", 4, 5);
    const net: Net = { model: tiny.model, params: tiny.params, batch: tiny.batch };
    const key = keyFromSeed(12);
    const lambda = 0.7;
    const [u, state] = oneStep(net, { learningRate: 1, damping: lambda }, key);
    const grad = gradientOf(net, net.params);
    try {
      const blocks = state.blocks!;
      // Leaves: k, gamma, beta, w, c. The conv output feeds mean and sub: no bias to fold.
      assert.deepEqual(blocks.kron.map((b) => [b.kernel, b.bias, b.locations]), [[0, -1, 9], [
        3,
        4,
        1,
      ]]);
      assert.deepEqual(blocks.diag.map((b) => b.leaf), [1, 2]);
      tidyValue(() => {
        const logits = (p: P) => net.model(plain, p, net.batch.x) as tf.Tensor;
        const yHat = sampleCategorical(logits(net.params), key);
        const names = ["gamma", "beta"];
        const grads = tf.grads((gamma: tf.Tensor, beta: tf.Tensor) => {
          const z = logits({ ...net.params, gamma, beta });
          return tf.neg(tf.sum(tf.mul(yHat, tf.logSoftmax(z))));
        })(names.map((n) => net.params[n]));
        grads.forEach((g, i) =>
          assertAllClose(blocks.diag[i].f, arr(tf.div(tf.square(g), 5)), {
            rtol: 1e-4,
            atol: 1e-7,
          }, names[i])
        );
        // First step with lr 1: the update is −∇/(F + λ) on these leaves.
        [1, 2].forEach((leaf, i) =>
          assertAllClose(
            leaves(u)[leaf],
            arr(tf.neg(tf.div(leaves(grad)[leaf], tf.add(blocks.diag[i].f, lambda)))),
            { rtol: 1e-5, atol: 1e-8 },
            `${names[i]} direction`,
          )
        );
      });
    } finally {
      disposeTree(grad);
      disposeTree(u);
      disposeState(state);
      disposeNet(net);
    }
  });
});

Deno.test("layers: biases fold only into a kernel output's sole consumer; shared and transposed kernels are diagonal", async () => {
  await withNoLeaks(() =>
    tidyValue(() => {
      const p: P = {
        w: rn(1, [4, 3]),
        b: rn(2, [3]),
        v: rn(3, [3, 3]),
        c: rn(4, [3]),
        s: rn(5, [3, 3]),
        t: rn(6, [3, 3]),
      };
      const x = rn(7, [5, 4]);
      const layout = kfacLayout(
        (nn, p: P, x) => {
          const h = nn.matMul(x, p.w); // consumed by the bias add and by a residual: b not folded
          const r = nn.add(nn.add(h, p.b), nn.mulScalar(h, 0.5));
          const q = nn.dense(nn.tanh(r), p.v, p.c); // a regular dense layer with bias
          const shared = nn.add(nn.matMul(q, p.s), nn.matMul(nn.tanh(q), p.s)); // s used twice
          return nn.matMul(shared, p.t, false, true); // transposed kernel
        },
        p,
        x,
      );
      // Leaves: w 0, b 1, v 2, c 3, s 4, t 5.
      assert.deepEqual(layout.kron.map((l) => [l.kernel, l.bias, l.rows, l.out]), [
        [0, -1, 4, 3],
        [2, 3, 3, 3],
      ]);
      assert.deepEqual(layout.diag, [1, 4, 5]);
      // A dense applied to [B·T, in] rows (a 1×1 conv) has T = 6 locations per example.
      const lay2 = kfacLayout(
        (nn, p: P, x) => nn.reshape(nn.dense(nn.reshape(x, [30, 2]), p.w2), [5, 6 * 3]),
        { w2: rn(8, [2, 3]) },
        rn(9, [5, 12]),
      );
      assert.deepEqual(lay2.kron.map((l) => [l.kernel, l.bias, l.locations]), [[0, -1, 6]]);
    })
  );
});

Deno.test("the direction is the explicit (T·Â ⊗ Ĝ)⁻¹·∇ with π-split damping", async () => {
  await withNoLeaks(() => {
    for (const [name, net] of [["logistic", logisticRegression(5, 8)], ["conv", convNet(6, 3)]]) {
      const lambda = 0.05;
      const g = gradientOf(net as Net, (net as Net).params);
      const [u, state] = oneStep(net as Net, { damping: lambda, learningRate: 1 }, keyFromSeed(9));
      try {
        const gl = leaves(g), ul = leaves(u);
        for (const b of state.blocks!.kron) {
          const na = b.rows + (b.bias >= 0 ? 1 : 0), ng = b.out, T = b.locations;
          const A = arr(b.a), G = arr(b.g);
          const pi = Math.sqrt((trace(A, na) / na) / (trace(G, ng) / ng));
          const r = Math.sqrt(lambda / T);
          const Ah = plusIdentity(A, na, pi * r), Gh = plusIdentity(G, ng, r / pi);
          // vec index i·ng + j of the [na, ng] matrix; (Â·X·Ĝ)[i, j] = Σ Â[i, i′]·X[i′, j′]·Ĝ[j′, j].
          const n = na * ng, K = new Float64Array(n * n);
          for (let i = 0; i < na; i++) {
            for (let j = 0; j < ng; j++) {
              for (let i2 = 0; i2 < na; i2++) {
                for (let j2 = 0; j2 < ng; j2++) {
                  K[(i * ng + j) * n + i2 * ng + j2] = T * Ah[i * na + i2] * Gh[j2 * ng + j];
                }
              }
            }
          }
          const rhs = [...arr(gl[b.kernel]), ...(b.bias >= 0 ? arr(gl[b.bias]) : [])];
          const expected = solve(K, n, rhs);
          // First step: velocity = Δ and lr = 1, so the update is −Δ.
          const got = [...arr(ul[b.kernel]), ...(b.bias >= 0 ? arr(ul[b.bias]) : [])].map((v) =>
            -v
          );
          assertAllClose(got, expected, { rtol: 2e-3, atol: 1e-6 }, `${name} block ${b.kernel}`);
        }
      } finally {
        disposeTree(g);
        disposeTree(u);
        disposeState(state);
        disposeNet(net as Net);
      }
    }
  });
});

Deno.test("regular momentum: v ← μ·v + Δ and the update is −lr·v", async () => {
  await withNoLeaks(() => {
    const net = logisticRegression(11, 8);
    const g = gradientOf(net, net.params);
    // Parameters held fixed, so Δ₁ and Δ₂ do not depend on μ: u₂(μ) = u₂(0) − lr·μ·Δ₁ = u₂(0) + μ·u₁.
    const run = (momentum: number): P[] => {
      const opt = kfac<P>({ momentum, learningRate: 0.3, invertEvery: 1 });
      let state = opt.init(net.params);
      const us: P[] = [];
      for (let t = 0; t < 2; t++) {
        const ctx = { params: net.params, batch: net.batch, model: net.model, key: keyFromSeed(t) };
        const [u, next] = opt.update(g, state, ctx);
        disposeState(state, next);
        state = next;
        us.push(u);
      }
      tidyValue(() =>
        assertAllClose(state.velocity, scale(us[1], -1 / 0.3), { rtol: 1e-6, atol: 1e-9 }, "v")
      );
      disposeState(state);
      return us;
    };
    const [a, b] = [run(0.9), run(0)];
    try {
      tidyValue(() =>
        assertAllClose(a[1], mapTree(b[1], (x, i) => tf.add(x, tf.mul(leaves(b[0])[i], 0.9))), {
          rtol: 1e-5,
          atol: 1e-8,
        }, "u₂")
      );
      assertAllClose(a[0], b[0], { rtol: 1e-6, atol: 1e-9 }, "u₁");
    } finally {
      [...a, ...b].forEach(disposeTree);
      disposeTree(g);
      disposeNet(net);
    }
  });
});

Deno.test("factors bigger than maxFactorDim are inverted block-diagonally", async () => {
  await withNoLeaks(() => {
    const net = logisticRegression(7, 10);
    const [u, state] = oneStep(net, { maxFactorDim: 2, damping: 0.3 }, keyFromSeed(3));
    try {
      const b = state.blocks!.kron[0];
      const A = arr(b.a), G = arr(b.g);
      const pi = Math.sqrt((trace(A, 5) / 5) / (trace(G, 3) / 3));
      const r = Math.sqrt(0.3);
      /** Expected block-diagonal inverse of m + δI with the given block sizes. */
      const blockInverse = (m: number[], n: number, damp: number, sizes: number[]) => {
        const out = new Float64Array(n * n);
        let s = 0;
        for (const k of sizes) {
          const sub = new Float64Array(k * k);
          for (let i = 0; i < k; i++) {
            for (let j = 0; j < k; j++) {
              sub[i * k + j] = m[(s + i) * n + s + j] + (i === j ? damp : 0);
            }
          }
          const inv = inverse(sub, k);
          for (let i = 0; i < k; i++) {
            for (let j = 0; j < k; j++) out[(s + i) * n + s + j] = inv[i * k + j];
          }
          s += k;
        }
        return out;
      };
      const tol = { rtol: 1e-4, atol: 1e-6 };
      assertAllClose(b.aInv, blockInverse(A, 5, pi * r, [2, 2, 1]), tol, "A⁻¹ (blocks 2, 2, 1)");
      assertAllClose(b.gInv, blockInverse(G, 3, r / pi, [2, 1]), tol, "G⁻¹ (blocks 2, 1)");
    } finally {
      disposeTree(u);
      disposeState(state);
      disposeNet(net);
    }
  });
});

Deno.test("K-FAC (the original's settings) lowers the loss faster than gradient descent at its rate", async () => {
  await withNoLeaks(() => {
    for (
      const [name, net, maxRatio] of [
        ["logistic regression", logisticRegression(1, 32), 0.45],
        ["tanh MLP", tinyNet("mlpTanh", 5, 16) as Net, 0.8],
      ] as const
    ) {
      try {
        const k = train(net, 20, {});
        const gd = train(net, 20, { gdRate: 0.1 });
        const ratio = k[20] / k[0];
        assert.ok(ratio < maxRatio, `${name}: loss ${k[0]} → ${k[20]} (ratio ${ratio})`);
        assert.ok(k[20] < gd[20], `${name}: K-FAC ${k[20]} vs gradient descent ${gd[20]}`);
        assert.ok(k.every((v) => Number.isFinite(v)), `${name}: losses ${k}`);
      } finally {
        disposeNet(net);
      }
    }
  });
});

Deno.test("a curvature exposing the linearization's taps gives the same step as ctx.model", async () => {
  await withNoLeaks(() => {
    const net = convNet(31, 4);
    const key = keyFromSeed(4);
    const [u1, s1] = oneStep(net, {}, key);
    const opt = kfac<P>();
    const s0 = opt.init(net.params);
    const g = gradientOf(net, net.params);
    const lin = linearize((nn, p: P) => net.model(nn, p, net.batch.x), net.params);
    try {
      const curvature = {
        logits: lin.output,
        ops: lin.ops,
        vjpWithOpCotangents: lin.vjpWithOpCotangents,
      } as unknown as GaussNewton<P>;
      const [u2, s2] = opt.update(g, s0, { params: net.params, curvature, key });
      assertAllClose(u2, u1, { rtol: 1e-6, atol: 1e-9 }, "updates");
      assertAllClose(
        stateTensors(s2.blocks),
        stateTensors(s1.blocks),
        { rtol: 1e-6, atol: 1e-9 },
        "factors",
      );
      disposeTree(u2);
      disposeState(s2);
      assert.throws(
        () => opt.update(g, s0, { params: net.params, key }),
        /needs ctx\.curvature exposing ops and vjpWithOpCotangents, or ctx\.model/,
      );
    } finally {
      lin.dispose();
      disposeState(s0);
      disposeTree(g);
      disposeTree(u1);
      disposeState(s1);
      disposeNet(net);
    }
  });
});

Deno.test("state keeps its structure over 12 steps, updates factors and inverses on schedule", async () => {
  await withNoLeaks(() => {
    const tiny = tinyNet("convBatchNorm", 9, 4);
    const net: Net = { model: tiny.model, params: tiny.params, batch: tiny.batch };
    const layout = kfacLayout(net.model, net.params, net.batch.x);
    for (const withLayout of [false, true]) {
      const opt = kfac<P>({
        covUpdateEvery: 2,
        invertEvery: 10,
        ...(withLayout ? { layout } : {}),
      });
      let state = opt.init(net.params);
      const shapes: string[] = [structure({ ...state, step: 0, emaWeight: 0 })];
      let params = mapTree(net.params, (x) => tf.clone(x));
      try {
        for (let t = 0; t < 12; t++) {
          const g = gradientOf(net, params);
          const [u, next] = opt.update(g, state, {
            params,
            batch: net.batch,
            model: net.model,
            key: foldIn(keyFromSeed(1), t),
          });
          const prev = state.blocks, now = next.blocks!;
          if (prev) {
            assert.equal(prev.kron[0].a === now.kron[0].a, t % 2 !== 0, `step ${t}: A updated?`);
            assert.equal(prev.diag[0].f === now.diag[0].f, t % 2 !== 0, `step ${t}: F updated?`);
            assert.equal(prev.kron[1].aInv === now.kron[1].aInv, t % 10 !== 0, `step ${t}: A⁻¹?`);
          }
          assert.equal(next.step, t + 1);
          disposeState(state, next);
          state = next;
          const p2 = applyUpdates(params, u);
          disposeTree(u);
          disposeTree(g);
          disposeTree(params);
          params = p2;
          shapes.push(structure({ ...state, step: 0, emaWeight: 0 }));
        }
        // After the first update (or from init, given the layout) the structure never changes.
        const from = withLayout ? 0 : 1;
        for (let i = from + 1; i < shapes.length; i++) assert.equal(shapes[i], shapes[from]);
        assert.ok(Math.abs(state.emaWeight - (1 - 0.99 ** 6)) < 1e-12, "six covariance updates");
      } finally {
        disposeState(state);
        disposeTree(params);
      }
    }
    disposeNet(net);
  });
});

Deno.test("non-finite factors are a clear error that leaks nothing", async () => {
  await withNoLeaks(() => {
    const net = logisticRegression(2, 4);
    const bad: P = { w: tf.fill([4, 3], NaN), b: tf.zeros([3]) };
    const opt = kfac<P>();
    const s0 = opt.init(bad);
    try {
      assert.throws(
        () => opt.update(bad, s0, { params: bad, batch: net.batch, model: net.model }),
        /kfac: factor G has non-finite entries/,
      );
    } finally {
      disposeState(s0);
      disposeTree(bad);
      disposeNet(net);
    }
  });
});
