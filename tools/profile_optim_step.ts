/**
 * Where a step of the `optim/cudaConvnet b128` bench rows spends its time, kernel by kernel: the
 * models' CUDA-convnet (through `ops/` and the project's kernels) with one of the rows' optimizers,
 * the row's own step as the bench builds and runs it (`tasks/bench/optim.ts`: random meta-weights,
 * batch 128, 32×32×3; two steps untimed first), under `tf.profile` on the native backend. Prints
 * the wall time per step, then the kernels' time per step by name and by name and input shapes
 * (nested scopes, "unnamed", repeat their kernels' time).
 *
 * Usage: deno run -A --frozen tools/profile_optim_step.ts [ROW=mlhf K=4] [steps=2]
 * (ROW: a row's optimizer name, e.g. sgd, "mlhf K=4", "hf-fixed K=20", kfac)
 * @module
 */
import { selectBackend } from "../mod.ts";
import { timeOnce } from "../lib/bench/harness.ts";
import {
  cudaConvnetBenchOptimizers,
  cudaConvnetBenchProblem,
  oneStep,
} from "../tasks/bench/optim.ts";
import { printLargest, profileSteps } from "./_kernel_profile.ts";

const which = Deno.args[0] ?? "mlhf K=4";
const steps = Number(Deno.args[1] ?? 2);
await selectBackend("native");
const { model, init, kinds, meta, batch } = cudaConvnetBenchProblem();
const optimizers = cudaConvnetBenchOptimizers(meta, kinds);
const opt = optimizers.find(([name]) => name === which)?.[1];
if (!opt) {
  throw new Error(
    `optimizer: one of ${optimizers.map(([n]) => `'${n}'`).join(", ")}, got '${which}'`,
  );
}
const state = opt.init(init.params);
// The row's own step (`oneStep`), run as the bench runs it (`timeOnce`: read back, then freed).
const row = oneStep(model, init.params, opt, state, batch);
const step = async () => {
  await timeOnce(row);
};
for (let i = 0; i < 2; i++) await step();
const { wallMs, byShape } = await profileSteps(step, steps);
const byName = new Map<string, number>();
for (const [k, t] of byShape) byName.set(k.split(" ")[0], (byName.get(k.split(" ")[0]) ?? 0) + t);
console.log(`${which}: ${wallMs.toFixed(1)} ms a step (wall, under tf.profile)`);
printLargest(byName, 20);
console.log("by input shapes:");
printLargest(byShape, 25);
