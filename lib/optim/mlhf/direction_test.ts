/**
 * MLHF's direction pinned against an independent float64 computation (tests/_util/mlhf_reference.ts:
 * its own LSTM cell, preconditioned CG and G·v, with arrays and loops). The problem: 9 coordinates
 * in three leaves of two kinds (dense/kernel [2, 2] and [3], dense/bias [2], interleaved so each
 * kind gathers non-adjacent leaves), G an explicit symmetric positive semi-definite matrix, random
 * meta-weights with non-zero biases (every gate matters), λ₀ = 0.25 (large enough that dropping it
 * shows). For every xInit × preconditioner × dampingMode, two consecutive steps (the second sees
 * the carried LSTM states, x_prev and r_prev) compare λ, x₀, r₀, P, every CG iterate, x, r and
 * both layers' c and h of every network (which pin the features each LSTM was given and its
 * output), and the optimizer's update −η·x.
 *
 * Tolerance (float32 code against the float64 reference on the same float32 inputs): elementwise
 * |actual − expected| ≤ 1e-5·|expected| + 1e-6·s, s = max|expected| over the compared vector; for
 * residuals (r₀, r, each iterate's r), which are differences g − A x of O(‖g‖∞) terms, s is at
 * least max|g|. The worst seen: 4e-7·s (5e-6·max|r| for residuals).
 */
import { tf } from "../../_deps.ts";
import { useTestBackend } from "../../../tests/_util/backend.ts";
import { assertAllClose, withNoLeaks } from "../../../tests/_util/numeric.ts";
import {
  refDirection,
  refInitState,
  type RefNet,
  type RefOptions,
  type RefRole,
  refRoles,
  type RefState,
} from "../../../tests/_util/mlhf_reference.ts";
import { keyFromSeed, normal } from "../../prng.ts";
import { leaves, type Params } from "../../tree.ts";
import type { GaussNewton } from "../../curvature/gauss_newton.ts";
import type { ParamKind } from "../../param_kinds.ts";
import type { LstmNetWeights } from "./lstm.ts";
import {
  initMlhfState,
  type MetaWeights,
  mlhfDirection,
  type MlhfOptions,
  type MlhfState,
} from "./direction.ts";
import { mlhf } from "./optimizer.ts";

await useTestBackend();

type P = Record<string, tf.Tensor>;

const SHAPES: Record<string, number[]> = { w1: [2, 2], b1: [2], w2: [3] };
const KINDS: ParamKind[] = ["dense/kernel", "dense/bias", "dense/kernel"];
const SIZES = Object.values(SHAPES).map((s) => s.reduce((a, b) => a * b, 1));
const N = SIZES.reduce((a, b) => a + b, 0);
const LAYOUT = { sizes: SIZES, kinds: KINDS };
const ROLES: RefRole[] = ["lambda", "precond", "x0"];

/** float32 values from a seed (the code and the reference read the very same numbers). */
const rand = (seed: number, n: number, std: number) => normal(keyFromSeed(seed), n, 0, std);

/** G = BᵀB/N, rounded to float32, row-major N × N. */
const G_MATRIX = (() => {
  const b = rand(11, N * N, 1);
  const g = new Float32Array(N * N);
  for (let i = 0; i < N; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < N; k++) s += b[k * N + i] * b[k * N + j];
      g[i * N + j] = s / N;
    }
  }
  for (let i = 0; i < N; i++) for (let j = 0; j < i; j++) g[i * N + j] = g[j * N + i];
  return g;
})();

/** Two steps' gradients. */
const GRADIENTS = [rand(21, N, 1), rand(22, N, 1)];

/** Random weights of one network: kernels N(0, 0.6²), biases N(0, 0.5²), head N(0, 1). */
const netArrays = (seed: number) => ({
  k0: rand(seed, 7 * 16, 0.6),
  b0: rand(seed + 1, 16, 0.5),
  k1: rand(seed + 2, 8 * 16, 0.6),
  b1: rand(seed + 3, 16, 0.5),
  hk: rand(seed + 4, 4, 1),
  hb: rand(seed + 5, 1, 0.5),
});
const NETS = Object.fromEntries(
  ["dense/kernel", "dense/bias"].map((kind, k) => [
    kind,
    Object.fromEntries(ROLES.map((role, r) => [role, netArrays(1000 + 100 * k + 10 * r)])),
  ]),
);

const refMeta: Record<string, Partial<Record<RefRole, RefNet>>> = Object.fromEntries(
  Object.entries(NETS).map(([kind, roles]) => [
    kind,
    Object.fromEntries(
      Object.entries(roles).map(([role, a]) => [role, {
        layers: [{ kernel: a.k0, bias: a.b0 }, { kernel: a.k1, bias: a.b1 }],
        headKernel: a.hk,
        headBias: a.hb[0],
      }]),
    ) as Partial<Record<RefRole, RefNet>>,
  ]),
);

/** The same weights as tensors (the caller disposes them). */
const tfMeta = (): MetaWeights =>
  Object.fromEntries(
    Object.entries(NETS).map(([kind, roles]) => [
      kind,
      Object.fromEntries(
        Object.entries(roles).map(([role, a]) => [role, {
          layers: [
            { kernel: tf.tensor2d(a.k0, [7, 16]), bias: tf.tensor1d(a.b0) },
            { kernel: tf.tensor2d(a.k1, [8, 16]), bias: tf.tensor1d(a.b1) },
          ],
          head: { kernel: tf.tensor2d(a.hk, [4, 1]), bias: tf.tensor1d(a.hb) },
        } as LstmNetWeights]),
      ),
    ]),
  ) as MetaWeights;

/** A parameter tree from a flat vector (leaf order). */
const treeOf = (v: ArrayLike<number>): P => {
  let offset = 0;
  return Object.fromEntries(
    Object.entries(SHAPES).map(([name, shape], i) => {
      const t = tf.tensor(Float32Array.from(v).subarray(offset, offset + SIZES[i]), shape);
      offset += SIZES[i];
      return [name, t];
    }),
  ) as P;
};
const flat = (p: Params): Float32Array => {
  const out = new Float32Array(N);
  let offset = 0;
  for (const t of leaves(p)) {
    out.set(t.dataSync() as Float32Array, offset);
    offset += t.size;
  }
  return out;
};

/** v ↦ G·v with the explicit matrix. */
const productOf = (G: tf.Tensor2D) => (v: P): P => {
  const u = tf.reshape(
    tf.matMul(G, tf.reshape(tf.concat(leaves(v).map((t) => t.flatten())), [-1, 1])),
    [-1],
  );
  return treeOf(u.dataSync());
};

const RTOL = 1e-5, ATOL_OF_MAX = 1e-6;
const maxAbs = (v: ArrayLike<number>) =>
  Array.from(v).reduce((m, x) => Math.max(m, Math.abs(x)), 0);
/** Asserts the tolerance of the module doc; `floor` is the least s (max|g| for residuals). */
const close = (actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, floor = 0) => {
  const scale = Math.max(maxAbs(expected), floor);
  assertAllClose(Array.from(actual), Array.from(expected), {
    rtol: RTOL,
    atol: ATOL_OF_MAX * scale,
  }, what);
};

/** Compares one step of the code with the reference's. */
const compareStep = (
  d: ReturnType<typeof mlhfDirection<P>>,
  e: ReturnType<typeof refDirection>,
  o: MlhfOptions,
  at: string,
  gScale: number,
) => {
  if (typeof e.lambda === "number") {
    if (d.lambda !== e.lambda) throw new Error(`${at} λ: ${d.lambda}, expected the scalar λ₀`);
  } else close(flat(d.lambda as P), e.lambda, `${at} λ`);
  close(flat(d.x0), e.x0, `${at} x₀`);
  close(flat(d.r0), e.r0, `${at} r₀`, gScale);
  if (e.precond) close(flat(d.precond!), e.precond, `${at} P`);
  else if (d.precond !== undefined) throw new Error(`${at}: P given with preconditioner 'none'`);
  if (d.iterations !== e.iterations) {
    throw new Error(`${at}: ${d.iterations} CG iterations, expected ${e.iterations}`);
  }
  close(flat(d.x), e.x, `${at} x`);
  close(flat(d.r), e.r, `${at} r`, gScale);
  close(flat(d.next.xPrev), e.x, `${at} next x_prev`);
  close(flat(d.next.rPrev), e.r, `${at} next r_prev`, gScale);
  for (const kind of ["dense/kernel", "dense/bias"] as const) {
    const got = d.next.rnn[kind] ?? {}, want = e.next.rnn[kind];
    const roles = refRoles(o);
    if (Object.keys(got).sort().join() !== [...roles].sort().join()) {
      throw new Error(`${at} ${kind}: LSTM states for ${Object.keys(got)}, expected ${roles}`);
    }
    for (const role of roles) {
      for (const l of [0, 1]) {
        close(got[role]!.c[l].dataSync(), want[role]!.c[l], `${at} ${kind} ${role} c[${l}]`);
        close(got[role]!.h[l].dataSync(), want[role]!.h[l], `${at} ${kind} ${role} h[${l}]`);
      }
    }
  }
};

const K = 3;

for (const xInit of ["previous", "gradient", "rnn"] as const) {
  for (const preconditioner of ["rnn", "none"] as const) {
    for (const dampingMode of ["rnn", "fixed"] as const) {
      const o: MlhfOptions = { cgIterations: K, lambda0: 0.25, xInit, preconditioner, dampingMode };
      Deno.test(`mlhfDirection (xInit ${xInit}, preconditioner ${preconditioner}, damping ${dampingMode}): two steps equal the float64 reference`, async () => {
        const meta = tfMeta();
        const G = tf.tensor2d(G_MATRIX, [N, N]);
        try {
          await withNoLeaks(() =>
            tf.tidy(() => {
              const zeros = treeOf(new Float32Array(N));
              let state: MlhfState<P> = initMlhfState(zeros, KINDS, o);
              let ref: RefState = refInitState(LAYOUT, o as RefOptions);
              for (let step = 0; step < 2; step++) {
                const g = treeOf(GRADIENTS[step]);
                const e = refDirection(refMeta, ref, GRADIENTS[step], G_MATRIX, LAYOUT, o);
                if (e.iterations !== K) throw new Error(`reference stopped at ${e.iterations}`);
                // Every CG iterate: the same step cut after k iterations.
                for (let k = 0; k < K; k++) {
                  const dk = mlhfDirection(meta, state, g, productOf(G), KINDS, {
                    ...o,
                    cgIterations: k,
                  });
                  close(flat(dk.x), e.iterates[k].x, `step ${step} CG iterate ${k} x`);
                  close(
                    flat(dk.r),
                    e.iterates[k].r,
                    `step ${step} CG iterate ${k} r`,
                    maxAbs(GRADIENTS[step]),
                  );
                }
                const d = mlhfDirection(meta, state, g, productOf(G), KINDS, o);
                compareStep(d, e, o, `step ${step}`, maxAbs(GRADIENTS[step]));
                state = d.next;
                ref = e.next;
              }
            })
          );
        } finally {
          tf.dispose([G, ...leaves(meta as Params)]);
        }
      });
    }
  }
}

Deno.test("mlhf optimizer (default modes and K): two updates are −η·x of the float64 reference", async () => {
  const meta = tfMeta();
  const G = tf.tensor2d(G_MATRIX, [N, N]);
  const eta = 0.37, lambda0 = 0.25;
  const ro: RefOptions = {
    cgIterations: 2,
    lambda0,
    xInit: "previous",
    preconditioner: "rnn",
    dampingMode: "rnn",
  };
  try {
    await withNoLeaks(() =>
      tf.tidy(() => {
        const opt = mlhf<P>({ metaWeights: meta, kinds: KINDS, learningRate: eta, lambda0 });
        const params = treeOf(rand(31, N, 1));
        const ctx = { params, curvature: { product: productOf(G) } as unknown as GaussNewton<P> };
        let state = opt.init(params);
        let ref = refInitState(LAYOUT, ro);
        for (let step = 0; step < 2; step++) {
          const [u, next] = opt.update(treeOf(GRADIENTS[step]), state, ctx);
          const e = refDirection(refMeta, ref, GRADIENTS[step], G_MATRIX, LAYOUT, ro);
          close(flat(u), e.x.map((v) => -eta * v), `step ${step} update`);
          close(flat(next.xPrev), e.x, `step ${step} x_prev`);
          state = next;
          ref = e.next;
        }
      })
    );
  } finally {
    tf.dispose([G, ...leaves(meta as Params)]);
  }
});
