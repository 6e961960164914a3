/**
 * Every primitive's R-forward rule against central finite differences, its transpose against the
 * adjoint identity ⟨u, J·v⟩ = ⟨Jᵀ·u, v⟩, and Jᵀ·u against TF.js's own reverse mode, on fast-check
 * random shapes, strides and paddings. One row per op with its input domain and tolerance, like
 * JAX's LAX_GRAD_OPS. Kinked ops (relu, max-pool) get inputs kept away from their kinks and a small
 * FD step (docs/tfjs-notes.md#finite-differences-across-kinks).
 * @module
 */
import { tf } from "../lib/_deps.ts";
import { fc } from "./_util/deps.ts";
import { useTestBackend } from "./_util/backend.ts";
import { withNoLeaks } from "./_util/numeric.ts";
import { adjointError, jvpError, vjpTapeError } from "./_util/gradcheck.ts";
import { keyFromSeed, split } from "../lib/prng.ts";
import { ROWS } from "./_util/jvp_rules.ts";

await useTestBackend();

for (const row of ROWS) {
  Deno.test(`jvp rule: ${row.name}`, async () => {
    await withNoLeaks(() =>
      fc.assert(
        fc.property(row.arb, fc.integer({ min: 0, max: 2 ** 30 }), (make, k) => {
          const c = make();
          try {
            const [k1, k2, k3] = split(keyFromSeed(k), 3);
            const fd = jvpError(c.f, c.p, k1, c.eps);
            if (!(fd <= row.fdTol)) {
              throw new Error(`${row.name}: J·v vs finite differences: rel. error ${fd}`);
            }
            const adj = adjointError(c.f, c.p, k2);
            if (!(adj <= 1e-4)) throw new Error(`${row.name}: adjoint identity: rel. error ${adj}`);
            if (!row.noTape) {
              const tape = vjpTapeError(c.f, c.p, k3);
              if (!(tape <= 1e-4)) {
                throw new Error(`${row.name}: Jᵀu vs TF.js reverse mode: rel. error ${tape}`);
              }
            }
          } finally {
            tf.dispose(c.p);
          }
        }),
        { numRuns: 12 },
      ), row.name);
  });
}
