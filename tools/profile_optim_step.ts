/**
 * Where a step of the `optim/cudaConvnet b128` bench rows spends its time, kernel by kernel: the
 * models' CUDA-convnet (through `ops/` and the project's kernels) with SGD, MLHF K = 4, HF with a
 * fixed λ (K = 20) or K-FAC as the bench builds them (random meta-weights, batch 128, 32×32×3; the
 * first steps untimed), under `tf.profile` on the native backend. Prints the wall time per step, then
 * the kernels' time per step by name and by name and input shapes (nested scopes, "unnamed", repeat
 * their kernels' time).
 *
 * Usage: deno run -A --frozen tools/profile_optim_step.ts [sgd|mlhf|hf-fixed|kfac] [steps=2]
 * @module
 */
import { selectBackend } from "../mod.ts";
import { tf } from "../lib/_deps.ts";
import { keyFromSeed } from "../lib/prng.ts";
import type { Params } from "../lib/tree.ts";
import { softmaxCrossEntropy } from "../ops/losses.ts";
import { disposeState, type GradientTransformation } from "../lib/optim/base.ts";
import { sgd } from "../lib/optim/alias.ts";
import { mlhf } from "../lib/optim/mlhf/optimizer.ts";
import { hessianFree } from "../lib/optim/hessian_free.ts";
import { kfac } from "../lib/optim/kfac.ts";
import { trainStep } from "../lib/train/step.ts";
import { cudaConvnetBenchProblem } from "../tasks/bench/optim.ts";
import { printLargest, profileSteps } from "./_kernel_profile.ts";

const OPTIMIZERS = ["sgd", "mlhf", "hf-fixed", "kfac"] as const;
const which = (Deno.args[0] ?? "mlhf") as (typeof OPTIMIZERS)[number];
const steps = Number(Deno.args[1] ?? 2);
if (!OPTIMIZERS.includes(which)) {
  throw new Error(`optimizer: one of ${OPTIMIZERS.join(", ")}, got '${which}'`);
}
await selectBackend("native");
const { model, init, kinds, meta, batch } = cudaConvnetBenchProblem();
// deno-lint-ignore no-explicit-any
const opt: GradientTransformation<any, Params> = which === "sgd"
  ? sgd({ learningRate: 0.1 })
  : which === "mlhf"
  ? mlhf({ metaWeights: meta, kinds, learningRate: 2, cgIterations: 4 })
  : which === "hf-fixed"
  ? hessianFree({ learningRate: 1e-2, damping: 5e-3, cgIterations: 20 })
  : kfac({});
const state = opt.init(init.params);
const step = async () => {
  const r = await trainStep({
    model: model.apply,
    lossFn: softmaxCrossEntropy,
    optimizer: opt,
    params: init.params,
    state,
    batch,
    key: keyFromSeed(9),
    keepPrevious: true,
  });
  disposeState(r.state, state);
  tf.dispose([r.params, r.aux] as unknown as tf.TensorContainer);
};
for (let i = 0; i < 2; i++) await step();
const { wallMs, byShape } = await profileSteps(step, steps);
const byName = new Map<string, number>();
for (const [k, t] of byShape) byName.set(k.split(" ")[0], (byName.get(k.split(" ")[0]) ?? 0) + t);
console.log(`${which}: ${wallMs.toFixed(1)} ms a step (wall, under tf.profile)`);
printLargest(byName, 20);
console.log("by input shapes:");
printLargest(byShape, 25);
