/**
 * The λ networks' meta-loss: the formula on small numbers written out here (value and gradient,
 * so both stop-gradients are checked), and the property that scaling every loss by c > 0 leaves
 * the relative meta-loss and its gradient unchanged while the raw one scales by c.
 */
import { tf } from "../_deps.ts";
import { fc } from "../../tests/_util/deps.ts";
import { useTestBackend } from "../../tests/_util/backend.ts";
import { assertAllClose, withNoLeaks } from "../../tests/_util/numeric.ts";
import { tidyValue } from "../scope.ts";
import { type MetaLossKind, windowMetaLoss } from "./meta_loss.ts";

await useTestBackend();

/**
 * M and its gradient with respect to ℓ (cut, so zero), ℓ′ and ℓ_next given as numbers; the last
 * ℓ′ is unused (no next batch for the last step).
 */
const valueAndGrads = (
  kind: MetaLossKind,
  ell: number[],
  ellPrime: number[],
  ellNext: number[],
): { value: number; dEll: number[]; dPrime: number[]; dNext: number[] } =>
  tidyValue(() => {
    // One input vector (ℓ, ℓ′, ℓ_next), so the gradient has entries for the cut ℓ too.
    const T = ell.length;
    const f = (z: tf.Tensor) => {
      const parts = tf.unstack(z) as tf.Scalar[];
      return windowMetaLoss(kind, parts.slice(0, T), parts.slice(T, 2 * T), parts.slice(2 * T));
    };
    const { value, grad } = tf.valueAndGrad(f)(tf.tensor1d([...ell, ...ellPrime, ...ellNext]));
    const g = Array.from(grad.dataSync());
    return {
      value: value.dataSync()[0],
      dEll: g.slice(0, T),
      dPrime: g.slice(T, 2 * T),
      dNext: g.slice(2 * T),
    };
  });

Deno.test("meta-loss: raw and relative on numbers written out, with their gradients", async () => {
  await withNoLeaks(() => {
    // T = 3: ℓ = (2, 8, 7), ℓ′ = (1, 10, ·), ℓ_next = (2, 10).
    const ell = [2, 8, 7], prime = [1, 10, 99], next = [2, 10];
    // raw: m = (½(1 + 2) − 2, ½(10 + 10) − 8) = (−0.5, 2); w = softmax(m).
    const e0 = Math.exp(-0.5), e1 = Math.exp(2);
    const raw = valueAndGrads("raw", ell, prime, next);
    assertAllClose(raw.value, (-0.5 * e0 + 2 * e1) / (e0 + e1), { rtol: 1e-5 }, "raw M");
    // ∂M/∂ℓ′_i = ∂M/∂ℓ_{i+1} = ½w_i (the weights are cut); ∂M/∂ℓ_i = 0 (cut).
    const w = [e0 / (e0 + e1), e1 / (e0 + e1)];
    assertAllClose(raw.dPrime, [0.5 * w[0], 0.5 * w[1], 0], { rtol: 1e-5 }, "raw ∂M/∂ℓ′");
    assertAllClose(raw.dNext, [0.5 * w[0], 0.5 * w[1]], { rtol: 1e-5 }, "raw ∂M/∂ℓ_next");
    assertAllClose(raw.dEll, [0, 0, 0], {}, "raw ∂M/∂ℓ");
    // relative: m = (−0.5/2, 2/8) = (−¼, ¼), M = ¼·tanh(¼); ∂M/∂ℓ′_i = ½w_i/ℓ_i.
    const rel = valueAndGrads("relative", ell, prime, next);
    assertAllClose(rel.value, 0.25 * Math.tanh(0.25), { rtol: 1e-5 }, "relative M");
    const v = [Math.exp(-0.25), Math.exp(0.25)].map((x, _, a) => x / (a[0] + a[1]));
    assertAllClose(rel.dPrime, [0.5 * v[0] / 2, 0.5 * v[1] / 8, 0], { rtol: 1e-5 }, "rel ∂M/∂ℓ′");
    assertAllClose(rel.dNext, [0.5 * v[0] / 2, 0.5 * v[1] / 8], { rtol: 1e-5 }, "rel ∂M/∂ℓ_next");
    assertAllClose(rel.dEll, [0, 0, 0], {}, "relative ∂M/∂ℓ");
    // T = 1: no next batch, M = 0.
    for (const kind of ["raw", "relative"] as const) {
      const m = tidyValue(() =>
        windowMetaLoss(kind, [tf.scalar(3)], [tf.scalar(2)], []).dataSync()[0]
      );
      assertAllClose(m, 0, {}, `${kind} M with T = 1`);
    }
  }, "meta-loss");
});

/**
 * M and ∇_φ M for losses that depend on a parameter vector φ, all multiplied by c: ℓ_i = c·b_i,
 * ℓ′_i = c·softplus(p_i + φ_i), ℓ_{i+1} = c·softplus(q_i + φ_{T−1+i}) (i < T−1; the last ℓ′ is
 * unused).
 */
interface Losses {
  b: number[];
  p: number[];
  q: number[];
  phi: number[];
}
const scaledWindow = (
  kind: MetaLossKind,
  c: number,
  { b, p, q, phi }: Losses,
): { value: number; grad: number[] } =>
  tidyValue(() => {
    const n = q.length;
    const f = (x: tf.Tensor) => {
      const ell = b.map((v) => tf.scalar(c * v));
      const prime = p.map((v, i) =>
        tf.mul(c, tf.softplus(tf.add(v, i < n ? x.gather([i]).reshape([]) : 0))) as tf.Scalar
      );
      const next = q.map((v, i) =>
        tf.mul(c, tf.softplus(tf.add(v, x.gather([n + i]).reshape([])))) as tf.Scalar
      );
      return windowMetaLoss(kind, ell, prime, next);
    };
    const { value, grad } = tf.valueAndGrad(f)(tf.tensor1d(phi));
    return { value: value.dataSync()[0], grad: Array.from(grad.dataSync()) };
  });

/** The same in float64 on the host, written out: m_i, w = softmax(m), M = Σ w_i m_i, ∂M/∂φ. */
const reference = (
  kind: MetaLossKind,
  c: number,
  { b, p, q, phi }: Losses,
): { value: number; grad: number[] } => {
  const n = q.length;
  const softplus = (x: number) => Math.log1p(Math.exp(x));
  const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
  const per = kind === "relative" ? b.map((v) => 1 / (c * v)) : b.map(() => 1);
  const m = q.map((_, i) =>
    (0.5 * c * (softplus(p[i] + phi[i]) + softplus(q[i] + phi[n + i])) - c * b[i]) * per[i]
  );
  const top = Math.max(...m);
  const e = m.map((v) => Math.exp(v - top));
  const w = e.map((v) => v / e.reduce((a, x) => a + x, 0));
  const grad = [
    ...q.map((_, i) => w[i] * per[i] * 0.5 * c * sigmoid(p[i] + phi[i])),
    ...q.map((_, i) => w[i] * per[i] * 0.5 * c * sigmoid(q[i] + phi[n + i])),
  ];
  return { value: m.reduce((a, v, i) => a + w[i] * v, 0), grad };
};

Deno.test("meta-loss: scaling every loss by c leaves the relative M and ∇M unchanged; the raw m_i scale by c", () => {
  const pos = fc.double({ min: 0.05, max: 5, noNaN: true });
  const real = fc.double({ min: -2, max: 2, noNaN: true });
  fc.assert(
    fc.property(
      fc.integer({ min: 2, max: 6 }).chain((T) =>
        fc.record({
          b: fc.array(pos, { minLength: T, maxLength: T }),
          p: fc.array(real, { minLength: T, maxLength: T }),
          q: fc.array(real, { minLength: T - 1, maxLength: T - 1 }),
          phi: fc.array(real, { minLength: 2 * (T - 1), maxLength: 2 * (T - 1) }),
        })
      ),
      fc.double({ min: -3, max: 3, noNaN: true }),
      (losses, logC) => {
        const c = 10 ** logC;
        // float32: ½(ℓ′ + ℓ_next) − ℓ cancels, so the tolerance is 1e-3 of the largest entry.
        const tol = (xs: number[]) => ({
          rtol: 1e-3,
          atol: 1e-3 * Math.max(...xs.map(Math.abs)),
        });
        const check = (kind: MetaLossKind, scale: number) => {
          const got = scaledWindow(kind, scale, losses);
          const want = reference(kind, scale, losses);
          assertAllClose(got.value, want.value, tol([want.value]), `${kind} M (c = ${scale})`);
          assertAllClose(got.grad, want.grad, tol(want.grad), `${kind} ∇M (c = ${scale})`);
          return got;
        };
        // relative: the same value and gradient at every scale.
        const rel1 = check("relative", 1), relC = check("relative", c);
        assertAllClose(relC.value, rel1.value, tol([rel1.value]), "relative M, c vs 1");
        assertAllClose(relC.grad, rel1.grad, tol(rel1.grad), "relative ∇M, c vs 1");
        // raw: each m_i is c times its value at c = 1, so M and ∇M grow with c (the softmax weights
        // sharpen as well, so M(c) = c·Σ softmax(c·m⁽¹⁾)_i m⁽¹⁾_i, checked by the reference).
        check("raw", 1);
        check("raw", c);
      },
    ),
    { numRuns: 40, seed: 16 },
  );
});
