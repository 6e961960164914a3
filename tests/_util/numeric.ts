/**
 * Numerical test helpers: closeness over tensors and parameter trees, central finite differences
 * sized for float32, and a tensor-leak check.
 * @module
 */
import { tf } from "../../lib/_deps.ts";
import { leaves, type Params, unflatten as unflattenLike } from "../../lib/tree.ts";

/** Tolerances: |a − e| ≤ atol + rtol·|e| elementwise. */
export interface Tol {
  readonly rtol?: number;
  readonly atol?: number;
}

const toArrays = (x: Params | number | ArrayLike<number>): Float32Array[] => {
  if (typeof x === "number") return [Float32Array.of(x)];
  if (x instanceof tf.Tensor) return [x.dataSync() as Float32Array];
  if (ArrayBuffer.isView(x) || (Array.isArray(x) && typeof x[0] === "number")) {
    return [Float32Array.from(x as ArrayLike<number>)];
  }
  return leaves(x as Params).map((t) => t.dataSync() as Float32Array);
};

/** Throws with the worst element's index and values when actual and expected differ. */
export const assertAllClose = (
  actual: Params | number | ArrayLike<number>,
  expected: Params | number | ArrayLike<number>,
  { rtol = 1e-5, atol = 1e-6 }: Tol = {},
  what = "value",
): void => {
  const a = toArrays(actual), e = toArrays(expected);
  if (a.length !== e.length) throw new Error(`${what}: ${a.length} leaves vs ${e.length} expected`);
  for (let l = 0; l < a.length; l++) {
    if (a[l].length !== e[l].length) {
      throw new Error(`${what}: leaf ${l} has ${a[l].length} elements, expected ${e[l].length}`);
    }
    let worst = -1, worstExcess = 0;
    for (let i = 0; i < a[l].length; i++) {
      const diff = Math.abs(a[l][i] - e[l][i]);
      const excess = diff - (atol + rtol * Math.abs(e[l][i]));
      if (!(excess <= 0) && (worst < 0 || !(excess <= worstExcess))) {
        worst = i;
        worstExcess = excess;
      }
    }
    if (worst >= 0) {
      throw new Error(
        `${what}: leaf ${l}[${worst}] = ${a[l][worst]}, expected ${
          e[l][worst]
        } (rtol ${rtol}, atol ${atol})`,
      );
    }
  }
};

/** ‖a − b‖ and ‖b‖ over flattened values. */
export const diffAndSize = (
  a: ArrayLike<number>,
  b: ArrayLike<number>,
): { diff: number; size: number } => {
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return { diff: Math.sqrt(num), size: Math.sqrt(den) };
};

/** Relative error ‖a − b‖ / max(‖b‖, tiny) over flattened values. */
export const relErr = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  const { diff, size } = diffAndSize(a, b);
  return diff / Math.max(size, 1e-30);
};

/** The FD step used by `centralDifference` when none is given: 1e-3·max(1, ‖x‖∞)/‖v‖∞. */
export const defaultFdStep = (x: Params, v: Params): number =>
  tf.tidy(() => {
    const maxAbs = (p: Params) =>
      Math.max(...leaves(p).map((t) => tf.max(tf.abs(t)).dataSync()[0]), 1e-30);
    return 1e-3 * Math.max(1, maxAbs(x)) / maxAbs(v);
  });

/**
 * Central finite difference of a tensor-valued f along direction v: (f(x + εv) − f(x − εv)) / 2ε,
 * evaluated in float32. With the default ε (`defaultFdStep`) the O(ε²) truncation error is ~1e-6
 * relative for smooth ops; the rounding error (~1.2e-7·|f|/ε) is accounted for by the callers
 * (`jvpError` subtracts it from the error).
 */
export const centralDifference = (
  f: (x: Params) => tf.Tensor,
  x: Params,
  v: Params,
  eps?: number,
): Float32Array =>
  tf.tidy(() => {
    const e = eps ?? defaultFdStep(x, v);
    const shift = (s: number): Params => {
      const lx = leaves(x), lv = leaves(v);
      return unflattenLike(x, lx.map((t, i) => tf.add(t, tf.mul(lv[i], s))));
    };
    const plus = f(shift(e)).dataSync() as Float32Array;
    const minus = f(shift(-e)).dataSync() as Float32Array;
    const out = new Float32Array(plus.length);
    for (let i = 0; i < out.length; i++) out[i] = (plus[i] - minus[i]) / (2 * e);
    return out;
  });

/** Runs f and asserts that tf.memory().numTensors is the same afterwards (f's results disposed). */
export const withNoLeaks = async <T>(f: () => T | Promise<T>, what = "block"): Promise<T> => {
  const before = tf.memory().numTensors;
  const result = await f();
  const after = tf.memory().numTensors;
  if (after !== before) {
    throw new Error(`${what} leaked ${after - before} tensors (${before} before, ${after} after)`);
  }
  return result;
};
