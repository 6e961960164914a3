import { tf } from "../lib/_deps.ts";
import { fc } from "../tests/_util/deps.ts";
import { useTestBackend } from "../tests/_util/backend.ts";
import { withNoLeaks } from "../tests/_util/numeric.ts";
import {
  conv2dFilterGrad,
  conv2dForward,
  conv2dInputGrad,
  extractPatches,
  scatterPatches,
  windowGeometry,
} from "./windows.ts";

await useTestBackend();

const shapes = fc.record({
  n: fc.integer({ min: 1, max: 2 }),
  h: fc.integer({ min: 2, max: 8 }),
  w: fc.integer({ min: 2, max: 8 }),
  ci: fc.integer({ min: 1, max: 3 }),
  co: fc.integer({ min: 1, max: 3 }),
  k: fc.integer({ min: 1, max: 3 }),
  s: fc.integer({ min: 1, max: 3 }),
  pad: fc.constantFrom("same" as const, "valid" as const),
}).filter((c) => c.pad === "same" || (c.h >= c.k && c.w >= c.k));

/**
 * |⟨a, b⟩ − ⟨c, d⟩| relative to ‖a‖‖b‖ + ‖c‖‖d‖: float32 rounding of an inner product scales with
 * the norms (Cauchy–Schwarz), not with the often much smaller, cancelling inner product itself.
 */
const adjointGap = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor, d: tf.Tensor) => {
  const l = tf.sum(tf.mul(a, b)).dataSync()[0], r = tf.sum(tf.mul(c, d)).dataSync()[0];
  const n = (t: tf.Tensor) => tf.norm(t).dataSync()[0];
  return Math.abs(l - r) / Math.max(n(a) * n(b) + n(c) * n(d), 1e-12);
};

Deno.test("windows: scatterPatches is the transpose of extractPatches", async () => {
  await withNoLeaks(() =>
    fc.assert(
      fc.property(shapes, ({ n, h, w, ci, k, s, pad }) =>
        tf.tidy(() => {
          const g = windowGeometry(h, w, [k, k], [s, s], pad);
          const x = tf.randomNormal([n, h, w, ci]) as tf.Tensor4D;
          const ps = extractPatches(x, g);
          const us = ps.map((p) => tf.randomNormal(p.shape) as tf.Tensor4D);
          const lhs = ps.reduce((acc, p, i) => acc + tf.sum(tf.mul(p, us[i])).dataSync()[0], 0);
          const rhs = tf.sum(tf.mul(x, scatterPatches(us, g))).dataSync()[0];
          if (!(Math.abs(lhs - rhs) <= 1e-4 * Math.max(1, Math.abs(lhs)))) {
            throw new Error(`${lhs} vs ${rhs}`);
          }
        })),
      { numRuns: 40 },
    )
  );
});

Deno.test("windows: conv2d input and filter gradients satisfy the adjoint identity (incl. stride > kernel)", async () => {
  await withNoLeaks(() =>
    fc.assert(
      fc.property(shapes, ({ n, h, w, ci, co, k, s, pad }) =>
        tf.tidy(() => {
          const x = tf.randomNormal([n, h, w, ci]) as tf.Tensor4D;
          const f = tf.randomNormal([k, k, ci, co]) as tf.Tensor4D;
          const y = conv2dForward(x, f, [s, s], pad);
          const u = tf.randomNormal(y.shape) as tf.Tensor4D;
          const dx = conv2dInputGrad(u, f, x.shape, [s, s], pad);
          const dw = conv2dFilterGrad(x, u, f.shape, [s, s], pad);
          const ex = adjointGap(u, y, dx, x), ew = adjointGap(u, y, dw, f);
          if (!(ex < 1e-4 && ew < 1e-4)) throw new Error(`input ${ex}, filter ${ew}`);
        })),
      { numRuns: 60 },
    )
  );
});

Deno.test("windows: conv2dForward equals an explicitly padded VALID conv (TF SAME semantics)", async () => {
  await withNoLeaks(() =>
    fc.assert(
      fc.property(shapes, ({ n, h, w, ci, co, k, s, pad }) =>
        tf.tidy(() => {
          const x = tf.randomNormal([n, h, w, ci]) as tf.Tensor4D;
          const f = tf.randomNormal([k, k, ci, co]) as tf.Tensor4D;
          const g = windowGeometry(h, w, [k, k], [s, s], pad);
          const ref = tf.conv2d(
            tf.pad(x, [[0, 0], [g.h.padBefore, g.h.padAfter], [g.w.padBefore, g.w.padAfter], [
              0,
              0,
            ]]),
            f,
            s,
            "valid",
          );
          const y = conv2dForward(x, f, [s, s], pad);
          if (y.shape.join() !== ref.shape.join()) {
            throw new Error(`shape ${y.shape} vs ${ref.shape}`);
          }
          const e = tf.max(tf.abs(tf.sub(y, ref))).dataSync()[0];
          if (!(e < 1e-4)) throw new Error(`max abs difference ${e}`);
        })),
      { numRuns: 60 },
    )
  );
});
