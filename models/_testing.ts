/**
 * Test helpers for the model tests (imported only by `models/*_test.ts`): distribution checks with
 * tolerances in standard errors, derivative checks of a whole model, random inputs.
 * @module
 */
import { tf } from "../lib/_deps.ts";
import { type Key, normal, split } from "../lib/prng.ts";
import { leaves, type Params } from "../lib/tree.ts";
import type { Nn } from "../ops/nn.ts";
import { adjointError, jvpError, vjpTapeError } from "../tests/_util/gradcheck.ts";
import { TRUNCATED_NORMAL_STD } from "./init.ts";
import { type InputShape, kindLeaves, logitsOf, type Model, type ParamKind } from "./types.ts";

/** A distribution a parameter tensor should have been drawn from. */
export type Dist =
  | { readonly kind: "normal"; readonly mean: number; readonly std: number }
  /** Truncated to ±2 of its parameter; `std` is the samples' std (parameter × 0.8796…). */
  | { readonly kind: "truncatedNormal"; readonly std: number }
  | { readonly kind: "uniform"; readonly limit: number }
  | { readonly kind: "constant"; readonly value: number };

const phi2 = Math.exp(-2) / Math.sqrt(2 * Math.PI); // standard normal density at 2
const Z2 = 0.9544997361036416; // P(|z| ≤ 2)
/** Kurtosis of N(0, 1) truncated to ±2 (from ∫z⁴φ = 3∫z²φ − 2a³φ(a), ∫z²φ = Z − 2aφ(a)). */
const TRUNC_KURTOSIS = (() => {
  const m2 = (Z2 - 4 * phi2) / Z2;
  const m4 = (3 * (Z2 - 4 * phi2) - 16 * phi2) / Z2;
  return m4 / (m2 * m2);
})();

/**
 * Asserts that values look drawn from `dist`: sample mean and std each within `k` standard errors
 * (SE(std) ≈ σ·√((κ − 1)/4n) for kurtosis κ); normal: the fraction beyond 2σ within k SE of 4.55%
 * (so a truncated sample fails); truncated and uniform: every value within the bound.
 */
export const assertDistribution = (xs: ArrayLike<number>, dist: Dist, what: string, k = 5) => {
  const n = xs.length;
  if (dist.kind === "constant") {
    const v = Math.fround(dist.value);
    for (let i = 0; i < n; i++) {
      if (xs[i] !== v) throw new Error(`${what}[${i}] = ${xs[i]}, expected ${dist.value}`);
    }
    return;
  }
  let s = 0;
  for (let i = 0; i < n; i++) s += xs[i];
  const mean = s / n;
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (xs[i] - mean) ** 2;
  const std = Math.sqrt(ss / (n - 1));
  const [mu, sigma, kurt] = dist.kind === "normal"
    ? [dist.mean, dist.std, 3]
    : dist.kind === "truncatedNormal"
    ? [0, dist.std, TRUNC_KURTOSIS]
    : [0, dist.limit / Math.sqrt(3), 1.8];
  const seMean = sigma / Math.sqrt(n), seStd = sigma * Math.sqrt((kurt - 1) / (4 * n));
  if (!(Math.abs(mean - mu) <= k * seMean)) {
    throw new Error(`${what}: mean ${mean} vs ${mu} (${k} SE = ${k * seMean}, n = ${n})`);
  }
  if (!(Math.abs(std - sigma) <= k * seStd)) {
    throw new Error(`${what}: std ${std} vs ${sigma} (${k} SE = ${k * seStd}, n = ${n})`);
  }
  const bound = dist.kind === "truncatedNormal"
    ? 2 * dist.std / TRUNCATED_NORMAL_STD
    : dist.kind === "uniform"
    ? dist.limit
    : Infinity;
  let tail = 0;
  for (let i = 0; i < n; i++) {
    const a = Math.abs(xs[i] - mu);
    if (a > bound * (1 + 1e-6)) throw new Error(`${what}[${i}] = ${xs[i]} is beyond ±${bound}`);
    if (a > 2 * sigma) tail++;
  }
  if (dist.kind === "normal") {
    const p = 1 - Z2, se = Math.sqrt(p * (1 - p) / n);
    if (!(Math.abs(tail / n - p) <= k * se)) {
      throw new Error(`${what}: ${tail / n} of values beyond 2σ, expected ${p} (±${k * se})`);
    }
  }
};

/** A batch of N(0, 1) inputs. */
export const randomInput = (key: Key, batch: number, [h, w, c]: InputShape): tf.Tensor =>
  tf.tensor(normal(key, batch * h * w * c), [batch, h, w, c]);

/** Derivative-check tolerances: adjoint 1e-5 and tape 1e-4 (as tests/curvature_test.ts), FD 2e-3. */
export interface DerivativeChecks {
  /** Also compare J·v with central differences, with this FD step (smooth models only). */
  readonly fdEps?: number;
}

/**
 * Checks a model's linearization at (params, x): the adjoint identity, Jᵀu against TF.js's reverse
 * mode through the plain interpreter, and (when `fdEps` is given) J·v against central differences.
 * Throws with the measured errors.
 */
export const checkDerivatives = <P extends Params, S extends Params>(
  model: Model<P, S>,
  params: P,
  x: tf.Tensor,
  key: Key,
  { fdEps }: DerivativeChecks = {},
): void => {
  const f = (nn: Nn, p: P) => logitsOf(model.apply(nn, p, x));
  const [k1, k2, k3] = split(key, 3);
  const adj = adjointError(f, params, k1);
  if (!(adj < 1e-5)) throw new Error(`${model.name}: adjoint rel. error ${adj}`);
  const tape = vjpTapeError(f, params, k2);
  if (!(tape < 1e-4)) throw new Error(`${model.name}: Jᵀu vs tape rel. error ${tape}`);
  if (fdEps !== undefined) {
    const fd = jvpError(f, params, k3, fdEps);
    if (!(fd < 2e-3)) throw new Error(`${model.name}: J·v vs finite differences rel. error ${fd}`);
  }
};

/** Asserts that kinds align with the parameter leaves and that each kind fits its tensor's rank. */
export const assertKindsFit = (params: Params, kinds: Parameters<typeof kindLeaves>[0]): void => {
  const ps = leaves(params), ks = kindLeaves(kinds);
  if (ps.length !== ks.length) throw new Error(`${ps.length} leaves but ${ks.length} kinds`);
  const rank: Record<ParamKind, number> = {
    "conv2d/kernel": 4,
    "conv2d/bias": 1,
    "dense/kernel": 2,
    "dense/bias": 1,
    "batch/gamma": 1,
    "batch/beta": 1,
  };
  ps.forEach((p, i) => {
    if (p.rank !== rank[ks[i]]) throw new Error(`leaf ${i}: kind ${ks[i]} on shape [${p.shape}]`);
  });
};
