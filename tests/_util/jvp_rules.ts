/**
 * The JVP-rule table: one row per DSL primitive with its input domain (a fast-check arbitrary of
 * cases) and finite-difference tolerance, like JAX's LAX_GRAD_OPS. tests/jvp_rules_test.ts checks
 * every row's R-forward and transpose rules; tests/webgpu_check.ts runs the same rows on webgpu
 * against cpu. A case's tensors are made when its thunk is called, on the active backend.
 * @module
 */
import { tf } from "../../lib/_deps.ts";
import { fc } from "./deps.ts";
import type { DslFn } from "./gradcheck.ts";
import { keyFromSeed, normal, permutation, uniform } from "../../lib/prng.ts";
import type { Nn } from "../../ops/nn.ts";
import type { Padding } from "../../ops/windows.ts";

/** A case's inputs. */
export type Inputs = tf.Tensor[];
/** One case of a row: its inputs, the function, and an optional FD step. */
export interface Case {
  readonly p: Inputs;
  readonly f: DslFn<Inputs>;
  /** FD step (default: sized by centralDifference). */
  readonly eps?: number;
}
/** One row of the table. */
export interface Row {
  readonly name: string;
  readonly arb: fc.Arbitrary<() => Case>;
  /**
   * Max error of J·v against FD (`jvpError`): 5e-3 for polynomial and piecewise-linear ops, 1e-2
   * for transcendental ones, whose float32 intermediates round more (JAX's float32 autodiff tests
   * use 1e-2 to 2e-2). A wrong rule gives O(1) errors; the adjoint and tape checks are at 1e-4.
   */
  readonly fdTol: number;
  /** Skip the tape comparison (TF.js's own gradient is not the reference for this op). */
  readonly noTape?: boolean;
}

/**
 * FD step for the rows that are polynomials of degree ≤ 2 in their inputs (linear and bilinear ops):
 * a central difference is exact for them at any step, so a unit step has no truncation error and
 * the least rounding error. (With the default ~1e-3 step, sums whose terms cancel — a mean of
 * random normals — leave the FD dominated by float32 rounding of the terms: rel. errors up to 7e-2
 * were seen on 3000 random cases, 1e-4 with this step.)
 */
const QUADRATIC_STEP = 1;
const seed = fc.integer({ min: 0, max: 2 ** 30 });
const dim = (lo: number, hi: number) => fc.integer({ min: lo, max: hi });
const randn = (s: number, shape: number[], std = 1) =>
  tf.tensor(normal(keyFromSeed(s), shape.reduce((a, b) => a * b, 1), 0, std), shape);
const randu = (s: number, shape: number[], lo: number, hi: number) =>
  tf.tensor(uniform(keyFromSeed(s), shape.reduce((a, b) => a * b, 1), lo, hi), shape);
/** Values ±[0.2, 2]: at least 0.2 from relu's kink. */
const awayFromZero = (s: number, shape: number[]) => {
  const n = shape.reduce((a, b) => a * b, 1);
  const mag = uniform(keyFromSeed(s), n, 0.2, 2);
  const sign = uniform(keyFromSeed(s + 1), n);
  return tf.tensor(mag.map((m, i) => (sign[i] < 0.5 ? -m : m)), shape);
};
/** Distinct values (gaps ≥ 4/n) so max-pool's arg-max never flips under a 1e-4 step. */
const distinct = (s: number, shape: number[]) => {
  const n = shape.reduce((a, b) => a * b, 1);
  const p = permutation(keyFromSeed(s), n);
  return tf.tensor(Float32Array.from(p, (v) => (4 * v) / n - 2), shape);
};
const padding = fc.constantFrom<Padding>("same", "valid");
/** Pooling cases: window/stride 2×2/2, 3×3/2, 2×2/1, 3×3/1, SAME and VALID. */
const poolCases = fc.record({
  s: seed,
  n: dim(1, 2),
  h: dim(3, 8),
  w: dim(3, 8),
  c: dim(1, 3),
  win: fc.constantFrom<[number, number]>([2, 2], [3, 2], [2, 1], [3, 1]),
  pad: padding,
});

const unary = (
  name: string,
  op: (nn: Nn, x: tf.Tensor) => tf.Tensor,
  gen: (s: number, shape: number[]) => tf.Tensor,
  fdTol = 1e-2,
  eps?: number,
): Row => ({
  name,
  fdTol,
  arb: fc.record({ s: seed, a: dim(1, 4), b: dim(1, 5) }).map(({ s, a, b }) => () => ({
    p: [gen(s, [a, b])],
    f: (nn, [x]) => op(nn, x),
    eps,
  })),
});

/** The table. */
export const ROWS: Row[] = [
  {
    name: "matMul (all transpose flags)",
    fdTol: 5e-3,
    arb: fc.record({
      s: seed,
      m: dim(1, 4),
      k: dim(1, 4),
      n: dim(1, 4),
      tA: fc.boolean(),
      tB: fc.boolean(),
    })
      .map(({ s, m, k, n, tA, tB }) => () => ({
        p: [randn(s, tA ? [k, m] : [m, k]), randn(s + 1, tB ? [n, k] : [k, n])],
        f: (nn, [a, b]) => nn.matMul(a, b, tA, tB),
        eps: QUADRATIC_STEP,
      })),
  },
  {
    name: "dense + biasAdd",
    fdTol: 5e-3,
    arb: fc.record({ s: seed, b: dim(1, 3), i: dim(1, 5), o: dim(1, 4) }).map(
      ({ s, b, i, o }) => () => ({
        p: [randn(s, [b, i]), randn(s + 1, [i, o]), randn(s + 2, [o])],
        f: (nn, [x, w, c]) => nn.biasAdd(nn.dense(x, w), c),
        eps: QUADRATIC_STEP,
      }),
    ),
  },
  {
    name: "add / sub / mul with broadcasting",
    fdTol: 5e-3,
    arb: fc.record({ s: seed, a: dim(1, 3), b: dim(1, 4), which: fc.constantFrom(0, 1, 2) }).map((
      { s, a, b, which },
    ) =>
    () => ({
      p: [randn(s, [a, b]), randn(s + 1, [1, b]), randn(s + 2, [a, b])],
      f: (nn, [x, r, z]) => {
        const bin = [nn.add, nn.sub, nn.mul][which];
        return nn.mul(bin(x, r), bin(r, z));
      },
    })),
  },
  {
    name: "conv2d (input and filter tangents, any stride, SAME/VALID)",
    fdTol: 5e-3,
    arb: fc.record({
      s: seed,
      n: dim(1, 2),
      h: dim(3, 7),
      w: dim(3, 7),
      ci: dim(1, 3),
      co: dim(1, 3),
      k: dim(1, 3),
      stride: dim(1, 3),
      pad: padding,
    }).map(({ s, n, h, w, ci, co, k, stride, pad }) => () => ({
      p: [randn(s, [n, h, w, ci]), randn(s + 1, [k, k, ci, co])],
      f: (nn, [x, f]) => nn.conv2d(x, f, { strides: stride, padding: pad }),
      eps: QUADRATIC_STEP,
    })),
  },
  {
    name: "maxPool (2×2/2 and 3×3/2, SAME/VALID, tangent follows the arg-max)",
    fdTol: 5e-3,
    arb: poolCases.map(({ s, n, h, w, c, win: [k, st], pad }) => () => ({
      p: [distinct(s, [n, h, w, c])],
      f: (nn, [x]) => nn.maxPool(x, k, { strides: st, padding: pad }),
      eps: 1e-3,
    })),
  },
  {
    name: "avgPool (SAME averages in-bounds elements only)",
    fdTol: 5e-3,
    arb: poolCases.map(({ s, n, h, w, c, win: [k, st], pad }) => () => ({
      p: [randn(s, [n, h, w, c])],
      f: (nn, [x]) => nn.avgPool(x, k, { strides: st, padding: pad }),
      eps: QUADRATIC_STEP,
    })),
  },
  {
    name: "mean / sum / globalMeanPool",
    fdTol: 5e-3,
    arb: fc.record({ s: seed, n: dim(1, 3), h: dim(1, 4), c: dim(1, 3), keep: fc.boolean() }).map((
      { s, n, h, c, keep },
    ) =>
    () => ({
      p: [randn(s, [n, h, h, c])],
      f: (nn, [x]) =>
        nn.add(nn.globalMeanPool(x), nn.sum(nn.mean(x, [1], keep), keep ? [1, 2] : [1])),
      eps: QUADRATIC_STEP,
    })),
  },
  {
    name: "pad / reshape / flatten",
    fdTol: 5e-3,
    arb: fc.record({ s: seed, n: dim(1, 3), h: dim(1, 4), a: dim(0, 2), b: dim(0, 2) }).map((
      { s, n, h, a, b },
    ) =>
    () => ({
      p: [randn(s, [n, h, h, 2])],
      f: (nn, [x]) =>
        nn.flatten(nn.reshape(nn.pad(x, [[0, 0], [a, b], [b, a], [0, 0]]), [n, -1, 2])),
      eps: QUADRATIC_STEP,
    })),
  },
  // |x| ≥ 0.2 and ε·‖v‖∞ ≤ 0.02·4 keep every FD probe on one side of the kink.
  unary("relu", (nn, x) => nn.relu(x), awayFromZero, 5e-3, 2e-2),
  unary("sigmoid", (nn, x) => nn.sigmoid(x), (s, sh) => randn(s, sh, 2)),
  unary("tanh", (nn, x) => nn.tanh(x), (s, sh) => randn(s, sh, 1.5)),
  unary("softplus", (nn, x) => nn.softplus(x), (s, sh) => randn(s, sh, 2)),
  unary("rsqrt", (nn, x) => nn.rsqrt(x), (s, sh) => randu(s, sh, 0.5, 3)),
  unary("exp", (nn, x) => nn.exp(x), (s, sh) => randn(s, sh)),
  unary("log", (nn, x) => nn.log(x), (s, sh) => randu(s, sh, 0.5, 3)),
  unary("square", (nn, x) => nn.square(x), (s, sh) => randn(s, sh)),
  // A larger step for the composites: exp(x − lse(x)) rounds at the scale of |x|, not of the output.
  unary("logSoftmax", (nn, x) => nn.logSoftmax(x), (s, sh) => randn(s, sh), 1e-2, 2 ** -7),
  unary("softmax", (nn, x) => nn.softmax(x), (s, sh) => randn(s, sh), 1e-2, 2 ** -7),
  {
    name: "batchNormTrain (statistics depend on the input; NHWC and dense)",
    fdTol: 5e-3,
    // ≥ 4 values per channel: with 2 the normalized output is ±1 whatever x is, and J ≈ 0.
    arb: fc.record({ s: seed, n: dim(2, 3), h: dim(2, 3), c: dim(1, 3), dense: fc.boolean() }).map((
      { s, n, h, c, dense },
    ) =>
    () => ({
      p: [randn(s, dense ? [n * h, c] : [n, h, h, c]), randn(s + 1, [c]), randn(s + 2, [c])],
      f: (nn, [x, g, b]) => nn.batchNormTrain(x, g, b).y,
    })),
  },
  {
    name: "localResponseNormalization",
    fdTol: 3e-3,
    arb: fc.record({ s: seed, n: dim(1, 2), h: dim(1, 3), c: dim(1, 6), r: dim(1, 3) }).map((
      { s, n, h, c, r },
    ) =>
    () => ({
      p: [randn(s, [n, h, h, c])],
      f: (nn, [x]) =>
        nn.localResponseNormalization(x, { depthRadius: r, bias: 1, alpha: 0.3, beta: 0.75 }),
    })),
  },
];
