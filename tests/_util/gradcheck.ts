/**
 * Derivative checks for functions written against the DSL, JAX-style (public_test_util.py):
 * - `checkJvp`: the linearization's J·v against a central finite difference of the plain forward;
 * - `checkAdjoint`: ⟨u, J·v⟩ = ⟨Jᵀ·u, v⟩ for random u, v;
 * - `checkVjpAgainstTape`: Jᵀ·u against TF.js's own reverse mode through the plain interpreter.
 * @module
 */
import { tf } from "../../lib/_deps.ts";
import { leaves, mapTree, type Params, vdot } from "../../lib/tree.ts";
import { linearize, plain } from "../../ops/interpret.ts";
import type { Nn } from "../../ops/nn.ts";
import { type Key, normal, split } from "../../lib/prng.ts";
import { defaultFdStep, diffAndSize } from "./numeric.ts";

/** A tree of random normal tensors shaped like `like`. */
export const randomLike = <P extends Params>(key: Key, like: P, std = 1): P => {
  const ks = split(key, leaves(like).length);
  return mapTree(like, (x, i) => tf.tensor(normal(ks[i], x.size, 0, std), x.shape));
};

export type DslFn<P extends Params> = (nn: Nn, p: P) => tf.Tensor;

/**
 * Error of J·v against a central finite difference along a random direction, with the float32
 * input rounding removed: ε is a power of two and the direction is taken as the one actually
 * applied, v′ = (fl(x + εv) − fl(x − εv)) / 2ε (both operations exact in float32), so the FD
 * estimates J·v′ up to O(ε²) truncation and the rounding of f's outputs. That rounding (a few ulps,
 * ≤ 2⁻²³·|fᵢ| per output, so ≤ 1.2e-7·‖f‖/ε in the FD) is subtracted from the error, not added to
 * the denominator: added there it only helps once it is 1/tol times the noise, and tanh near
 * saturation (f′ ≈ 3e-4 under 1-ulp steps of f ≈ 1) failed that way. Returns
 * max(0, ‖J·v′ − FD‖ − 1.2e-7·‖f(x)‖/ε) / ‖FD‖. Rounding of intermediates that cancel (sums of
 * terms much larger than their result) is not covered: give such ops a large step.
 */
export const jvpError = <P extends Params>(f: DslFn<P>, p: P, key: Key, eps?: number): number =>
  tf.tidy(() => {
    const v = randomLike(key, p);
    const e = 2 ** Math.round(Math.log2(eps ?? defaultFdStep(p, v)));
    const plus = mapTree(p, (x, i) => tf.add(x, tf.mul(leaves(v)[i], e)));
    const minus = mapTree(p, (x, i) => tf.sub(x, tf.mul(leaves(v)[i], e)));
    const applied = mapTree(plus, (xp, i) => tf.div(tf.sub(xp, leaves(minus)[i]), 2 * e));
    const lin = linearize(f, p);
    try {
      const jv = lin.jvp(applied).dataSync();
      const fp = f(plain, plus).dataSync(), fm = f(plain, minus).dataSync();
      const fx = tf.norm(lin.output).dataSync()[0];
      let num = 0, den = 0;
      for (let i = 0; i < fp.length; i++) {
        const fd = (fp[i] - fm[i]) / (2 * e);
        num += (jv[i] - fd) ** 2;
        den += fd ** 2;
      }
      return Math.max(0, Math.sqrt(num) - (fx * 1.2e-7) / e) / Math.max(Math.sqrt(den), 1e-30);
    } finally {
      lin.dispose();
    }
  });

/** |⟨u, J·v⟩ − ⟨Jᵀ·u, v⟩| / (‖u‖‖J·v‖ + ‖Jᵀu‖‖v‖): zero up to float32 rounding for exact transposes. */
export const adjointError = <P extends Params>(f: DslFn<P>, p: P, key: Key): number =>
  tf.tidy(() => {
    const [kv, ku] = split(key);
    const v = randomLike(kv, p);
    const lin = linearize(f, p);
    try {
      const jv = lin.jvp(v);
      const u = tf.tensor(normal(ku, jv.size), jv.shape);
      const jtu = lin.vjp(u);
      const lhs = tf.sum(tf.mul(u, jv)).dataSync()[0];
      const rhs = vdot(jtu, v).dataSync()[0];
      const scale = tf.norm(u).dataSync()[0] * tf.norm(jv).dataSync()[0] +
        Math.sqrt(vdot(jtu, jtu).dataSync()[0]) * Math.sqrt(vdot(v, v).dataSync()[0]);
      return Math.abs(lhs - rhs) / Math.max(scale, 1e-30);
    } finally {
      lin.dispose();
    }
  });

/**
 * Error of Jᵀ·u against tf.grads of ⟨u, f(p)⟩ through the plain interpreter, relative to
 * ‖tape‖ + 1e-2·‖u‖·‖Jᵀw‖/‖w‖ for an independent random w. The second term is the size Jᵀ·u has
 * for a typical cotangent: when u happens to make Jᵀu cancel (logSoftmax with u nearly parallel to
 * the ones vector), both sides keep float32 rounding at that typical scale, while a wrong rule
 * still errs by O(1) of it.
 */
export const vjpTapeError = <P extends Params>(f: DslFn<P>, p: P, key: Key): number =>
  tf.tidy(() => {
    const lin = linearize(f, p);
    try {
      const [ku, kw] = split(key);
      const u = tf.tensor(normal(ku, lin.output.size), lin.output.shape);
      const w = tf.tensor(normal(kw, lin.output.size), lin.output.shape);
      const mine = leaves(lin.vjp(u)).flatMap((t) => [...t.dataSync()]);
      const jtw = lin.vjp(w);
      const typical = Math.sqrt(vdot(jtw, jtw).dataSync()[0]) *
        tf.norm(u).dataSync()[0] / Math.max(tf.norm(w).dataSync()[0], 1e-30);
      const ps = leaves(p);
      const grads = tf.grads((...xs: tf.Tensor[]) => {
        const rebuilt = mapTree(p, (_x, i) => xs[i]);
        return tf.sum(tf.mul(u, f(plain, rebuilt)));
      })(ps);
      const tape = grads.flatMap((t) => [...t.dataSync()]);
      const { diff, size } = diffAndSize(mine, tape);
      return diff / Math.max(size + 1e-2 * typical, 1e-30);
    } finally {
      lin.dispose();
    }
  });
