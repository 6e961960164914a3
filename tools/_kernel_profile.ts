/**
 * The profiling loop of the `tools/profile_*_step.ts` scripts: a step run `steps` times under
 * `tf.profile`, its wall time per step, and its kernels' time per step grouped by name and input
 * shapes (nested scopes, "unnamed", repeat their kernels' time), printed largest first.
 * @module
 */
import { tf } from "../lib/_deps.ts";

/** Kernel time per step by "name [shape][shape]…", and the wall time per step, in ms. */
export interface KernelProfile {
  readonly wallMs: number;
  readonly byShape: ReadonlyMap<string, number>;
}

/** Runs `step` `steps` times under `tf.profile` (after warm-up steps run by the caller). */
export const profileSteps = async (
  step: () => Promise<void>,
  steps: number,
): Promise<KernelProfile> => {
  const byShape = new Map<string, number>();
  let wall = 0;
  for (let r = 0; r < steps; r++) {
    const t0 = performance.now();
    const info = await tf.profile(step);
    wall += performance.now() - t0;
    for (const k of info.kernels) {
      const key = `${k.name} ${k.inputShapes.map((s) => `[${s}]`).join("")}`;
      byShape.set(key, (byShape.get(key) ?? 0) + Number(k.kernelTimeMs) / steps);
    }
  }
  return { wallMs: wall / steps, byShape };
};

/** The `n` largest entries of `times` (ms per step), one line each. */
export const printLargest = (times: ReadonlyMap<string, number>, n: number, digits = 1): void => {
  for (const [k, t] of [...times].sort((a, b) => b[1] - a[1]).slice(0, n)) {
    console.log(`${t.toFixed(digits).padStart(8)} ms  ${k}`);
  }
};
