/**
 * Preconditioned CG (docs/algorithm.md#preconditioned-cg): exact solves of random SPD systems
 * within n steps, a monotonically decreasing quadratic model, the exact solve of (G + λI)x = g on a
 * tiny network, and the gradient of a scalar function of the CG output with respect to λ and a
 * non-uniform P through the "gradient of H" customGrad (docs/algorithm.md#gradient-of-h), against
 * finite differences.
 * @module
 */
import { tf } from "../lib/_deps.ts";
import { assert, fc } from "./_util/deps.ts";
import { useTestBackend } from "./_util/backend.ts";
import { relErr, withNoLeaks } from "./_util/numeric.ts";
import { randomLike } from "./_util/gradcheck.ts";
import { tinyNet } from "./_util/nets.ts";
import { keyFromSeed, normal, uniform } from "../lib/prng.ts";
import { conjugateGradient, dampedOperator } from "../lib/solvers/cg.ts";
import { gaussNewtonProduct, symmetricProduct } from "../lib/curvature/gauss_newton.ts";
import { softmaxCrossEntropy } from "../ops/losses.ts";
import { fromVector, mapTree, toVector, vdot, zerosLike } from "../lib/tree.ts";
import { tidyValue } from "../lib/scope.ts";

await useTestBackend();

type V = { a: tf.Tensor; b: tf.Tensor };

/** A random SPD n×n matrix MᵀM/n + I·δ, as a float64 array. */
const spd = (seed: number, n: number, delta: number): Float64Array => {
  const m = normal(keyFromSeed(seed), n * n);
  const A = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let k = 0; k < n; k++) s += m[k * n + i] * m[k * n + j];
      A[i * n + j] = s / n + (i === j ? delta : 0);
    }
  }
  return A;
};

/** Solves A x = b in float64 (Gaussian elimination with partial pivoting). */
const solve = (A: Float64Array, b: ArrayLike<number>, n: number): Float64Array => {
  const M = Float64Array.from(A), x = Float64Array.from(b);
  for (let c = 0; c < n; c++) {
    let piv = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(M[r * n + c]) > Math.abs(M[piv * n + c])) piv = r;
    for (let k = 0; k < n; k++) [M[c * n + k], M[piv * n + k]] = [M[piv * n + k], M[c * n + k]];
    [x[c], x[piv]] = [x[piv], x[c]];
    for (let r = c + 1; r < n; r++) {
      const f = M[r * n + c] / M[c * n + c];
      for (let k = c; k < n; k++) M[r * n + k] -= f * M[c * n + k];
      x[r] -= f * x[c];
    }
  }
  for (let r = n - 1; r >= 0; r--) {
    let s = x[r];
    for (let k = r + 1; k < n; k++) s -= M[r * n + k] * x[k];
    x[r] = s / M[r * n + r];
  }
  return x;
};

/** The matrix as an operator on a two-leaf tree (so inner products must be global). */
const operator = (A: Float64Array, n: number, split: number) => {
  const At = tf.tensor2d(Float32Array.from(A), [n, n]);
  const like: V = { a: tf.zeros([split]), b: tf.zeros([n - split]) };
  const op = (v: V): V =>
    fromVector(like, tf.reshape(tf.matMul(At, tf.reshape(toVector(v), [n, 1])), [n]));
  return { op, like };
};

Deno.test("cg: solves random SPD systems to tolerance within n steps, with and without P", async () => {
  await withNoLeaks(() =>
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 8 }),
        fc.integer({ min: 0, max: 2 ** 30 }),
        fc.boolean(),
        (n, seed, usePrecond) =>
          tidyValue(() => {
            const A = spd(seed, n, 0.5);
            // |b| ~ 100 keeps the original's 1e-6 guards on ⟨p,q⟩ and ρ from firing before
            // convergence (they are part of the algorithm, docs/algorithm.md#cg-guards, and bend
            // exact CG when hit).
            const bArr = normal(keyFromSeed(seed + 1), n, 0, 100);
            const { op, like } = operator(A, n, Math.max(1, n >> 1));
            const b = fromVector(like, tf.tensor1d(bArr));
            const P = usePrecond
              ? fromVector(like, tf.tensor1d(uniform(keyFromSeed(seed + 2), n, 0.5, 2)))
              : undefined;
            const res = conjugateGradient(op, b, {
              x0: zerosLike(b),
              maxIterations: n,
              preconditioner: P,
            });
            const exact = solve(A, bArr, n);
            const e = relErr(toVector(res.x).dataSync(), exact);
            if (!(e < 1e-3)) throw new Error(`n=${n} P=${usePrecond}: rel. error ${e}`);
            if (res.iterations > n) throw new Error(`used ${res.iterations} > n iterations`);
          }),
      ),
      { numRuns: 30 },
    )
  );
});

Deno.test("cg: the quadratic model ½xᵀAx − bᵀx decreases monotonically with the iterations", async () => {
  await withNoLeaks(() =>
    fc.assert(
      fc.property(fc.integer({ min: 3, max: 8 }), fc.integer({ min: 0, max: 2 ** 30 }), (n, seed) =>
        tidyValue(() => {
          const A = spd(seed, n, 0.1);
          const { op, like } = operator(A, n, 1);
          const b = fromVector(like, tf.tensor1d(normal(keyFromSeed(seed + 1), n)));
          const x0 = fromVector(like, tf.tensor1d(normal(keyFromSeed(seed + 2), n)));
          let prev = Infinity;
          for (let k = 0; k <= n; k++) {
            const { x } = conjugateGradient(op, b, { x0, maxIterations: k });
            const q = 0.5 * vdot(x, op(x)).dataSync()[0] - vdot(b, x).dataSync()[0];
            if (!(q <= prev + 1e-5 * Math.max(1, Math.abs(prev)))) {
              throw new Error(`q rose at k=${k}: ${q} > ${prev}`);
            }
            prev = q;
          }
        })),
      { numRuns: 20 },
    )
  );
});

Deno.test("cg: zero right-hand side stops at once (‖r‖ < 1e-6 guard); r tracks b − A x", () => {
  tidyValue(() => {
    const A = spd(3, 4, 1);
    const { op, like } = operator(A, 4, 2);
    const zero = zerosLike(like);
    const res = conjugateGradient(op, zero, { x0: zero, maxIterations: 5 });
    const run = res.iterationsRun.dataSync()[0]; // the loop runs K times, all of them frozen
    if (run !== 0) throw new Error(`iterations that changed x: ${run}, expected 0`);
    if (toVector(res.x).abs().max().dataSync()[0] !== 0) throw new Error("x moved from 0");
    const b = fromVector(like, tf.tensor1d([1, -2, 0.5, 3]));
    const r = conjugateGradient(op, b, { x0: zero, maxIterations: 2 });
    const trueR = toVector(b).sub(toVector(op(r.x))).dataSync();
    const e = relErr(toVector(r.r).dataSync(), trueR);
    if (!(e < 1e-4)) throw new Error(`tracked residual rel. error ${e}`);
  });
});

Deno.test("cg: with P ≡ 1 and large K it reproduces the exact solve of (G + λI)x = g on a tiny network", async () => {
  await withNoLeaks(() => {
    const net = tinyNet("mlpTanh", 3, 4);
    const gn = gaussNewtonProduct(net.model, softmaxCrossEntropy, net.params, net.batch);
    try {
      tidyValue(() => {
        const lambda = 0.05;
        const n = toVector(net.params).size;
        const G = new Float64Array(n * n);
        for (let j = 0; j < n; j++) {
          const e = new Float32Array(n);
          e[j] = 1;
          const col = toVector(gn.product(fromVector(net.params, tf.tensor1d(e)))).dataSync();
          for (let i = 0; i < n; i++) G[i * n + j] = col[i] + (i === j ? lambda : 0);
        }
        const g = toVector(gn.gradient).dataSync();
        const exact = solve(G, g, n);
        const res = conjugateGradient(dampedOperator(gn.product, lambda), gn.gradient, {
          x0: zerosLike(net.params),
          maxIterations: 3 * n,
        });
        const err = relErr(toVector(res.x).dataSync(), exact);
        if (!(err < 1e-3)) throw new Error(`rel. error ${err} after ${res.iterations} iterations`);
      });
    } finally {
      gn.dispose();
      tf.dispose([net.params, net.batch] as unknown as tf.TensorContainer);
    }
  });
});

Deno.test("cg: d/dλ and d/dP of a function of the CG output through the symmetric G product match finite differences", async () => {
  await withNoLeaks(() => {
    const net = tinyNet("mlpSigmoid", 9, 4);
    const gn = gaussNewtonProduct(net.model, softmaxCrossEntropy, net.params, net.batch);
    try {
      tidyValue(() => {
        const G = symmetricProduct(gn, net.params);
        const c = randomLike(keyFromSeed(21), net.params);
        const w = mapTree(
          net.params,
          (x, i) => tf.tensor(uniform(keyFromSeed(30 + i), x.size, -1, 1), x.shape),
        );
        const m = mapTree(
          net.params,
          (x, i) => tf.tensor(normal(keyFromSeed(40 + i), x.size), x.shape),
        );
        const x0 = randomLike(keyFromSeed(50), net.params, 0.1);
        // s(a, φ) = ⟨c, x⟩ + ‖x‖², x = PCG(G + λ, P) with λ = 1e-2·exp(a·w) and P = softplus(φ·m):
        // non-uniform λ and P, so both derivatives are non-trivial (a uniform P leaves CG unchanged).
        const s = (a: tf.Scalar, phi: tf.Scalar): tf.Scalar => {
          const lambda = mapTree(w, (wi) => tf.mul(1e-2, tf.exp(tf.mul(a, wi))));
          const P = mapTree(m, (mi) => tf.softplus(tf.mul(phi, mi)));
          const { x } = conjugateGradient(dampedOperator(G, lambda), gn.gradient, {
            x0,
            maxIterations: 3,
            preconditioner: P,
          });
          return tf.add(vdot(c, x), vdot(x, x)) as tf.Scalar;
        };
        const a0 = 0.3, phi0 = 0.7;
        const [da, dphi] = tf.grads((a: tf.Tensor, phi: tf.Tensor) =>
          s(a as tf.Scalar, phi as tf.Scalar)
        )([
          tf.scalar(a0),
          tf.scalar(phi0),
        ]).map((t) => t.dataSync()[0]);
        const h = 1e-2;
        const at = (a: number, phi: number) => s(tf.scalar(a), tf.scalar(phi)).dataSync()[0];
        const fdA = (at(a0 + h, phi0) - at(a0 - h, phi0)) / (2 * h);
        const fdPhi = (at(a0, phi0 + h) - at(a0, phi0 - h)) / (2 * h);
        if (!(Math.abs(da - fdA) <= 2e-2 * Math.abs(fdA) + 1e-5)) {
          throw new Error(`d/da ${da} vs FD ${fdA}`);
        }
        if (!(Math.abs(dphi - fdPhi) <= 2e-2 * Math.abs(fdPhi) + 1e-5)) {
          throw new Error(`d/dφ ${dphi} vs FD ${fdPhi}`);
        }
        if (Math.abs(fdPhi) < 1e-4 || Math.abs(fdA) < 1e-4) {
          throw new Error("degenerate check: derivative ~ 0");
        }
      });
    } finally {
      gn.dispose();
      tf.dispose([net.params, net.batch] as unknown as tf.TensorContainer);
    }
  });
});

Deno.test("symmetric product: its backward pass is ū ↦ G·ū", () => {
  tidyValue(() => {
    const net = tinyNet("convMaxPool", 4, 2);
    const gn = gaussNewtonProduct(net.model, softmaxCrossEntropy, net.params, net.batch);
    try {
      const G = symmetricProduct(gn, net.params);
      const v = randomLike(keyFromSeed(1), net.params), u = randomLike(keyFromSeed(2), net.params);
      const names = Object.keys(net.params);
      const grads = tf.grads((...xs: tf.Tensor[]) =>
        vdot(u, G(Object.fromEntries(names.map((k, i) => [k, xs[i]])) as typeof net.params))
      )(names.map((k) => (v as Record<string, tf.Tensor>)[k]));
      const e = relErr(
        tf.concat(grads.map((t) => t.flatten())).dataSync(),
        toVector(gn.product(u)).dataSync(),
      );
      if (!(e < 1e-5)) throw new Error(`backward of G·v vs G·u rel. error ${e}`);
    } finally {
      gn.dispose();
      tf.dispose([net.params, net.batch] as unknown as tf.TensorContainer);
    }
  });
});

Deno.test("cg: once ‖r‖ < ε the device-side mask freezes x and r (A = 2I converges in one step)", () => {
  tidyValue(() => {
    const b = { a: tf.tensor1d([1, -2]), b: tf.tensor1d([4]) };
    const op = (v: V): V => ({ a: v.a.mul(2), b: v.b.mul(2) });
    const one = conjugateGradient(op, b, { x0: zerosLike(b), maxIterations: 1 });
    const five = conjugateGradient(op, b, { x0: zerosLike(b), maxIterations: 5 });
    assert.equal(five.iterations, 5);
    assert.equal(five.iterationsRun.dataSync()[0], 1);
    assert.deepEqual(Array.from(toVector(five.x).dataSync()), [0.5, -1, 2]);
    assert.deepEqual(toVector(five.x).dataSync(), toVector(one.x).dataSync());
    assert.deepEqual(toVector(five.r).dataSync(), toVector(one.r).dataSync());
  });
});
