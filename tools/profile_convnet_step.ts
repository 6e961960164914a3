/**
 * Where a CUDA-convnet SGD step's time goes, kernel by kernel: the `kernels/convnet SGD step` bench
 * row (plain TF.js ops, batch 128, 32×32×3) under `tf.profile`, on the backend named by the first
 * argument (default `native`). Prints the wall time per step and the kernels by time per step,
 * grouped by name and input shapes (nested scopes, "unnamed scope", repeat their kernels' time).
 *
 * Usage: deno run -A --frozen tools/profile_convnet_step.ts [native|wasm|cpu] [steps=5]
 * @module
 */
import { selectBackend } from "../mod.ts";
import { tf } from "../lib/_deps.ts";
import { convnetLoss, type ConvnetParams, initConvnet } from "../tasks/bench/native.ts";
import { printLargest, profileSteps } from "./_kernel_profile.ts";

const backend = Deno.args[0] ?? "native";
const steps = Number(Deno.args[1] ?? 5);
await selectBackend(backend as Parameters<typeof selectBackend>[0]);
const p0 = initConvnet(1);
const vars = Object.fromEntries(
  Object.entries(p0).map(([k, t]) => [k, tf.variable(t as tf.Tensor, true, `profile_${k}`)]),
) as unknown as Record<keyof ConvnetParams, tf.Variable>;
const x = tf.randomUniform([128, 32, 32, 3], 0, 1, "float32", 3) as tf.Tensor4D;
const labels = tf.randomUniform([128], 0, 10, "int32", 4) as tf.Tensor1D;
const lr = tf.scalar(0.01);
const step = async () => {
  const { value, grads } = tf.variableGrads(() =>
    convnetLoss(vars as unknown as ConvnetParams, x, labels)
  );
  for (const v of Object.values(vars)) {
    v.assign(tf.tidy(() => tf.sub(v, tf.mul(lr, grads[v.name]))));
  }
  tf.dispose(grads);
  await value.data();
  value.dispose();
};
for (let i = 0; i < 3; i++) await step();
const { wallMs, byShape } = await profileSteps(step, steps);
console.log(`${backend}: ${wallMs.toFixed(1)} ms a step (wall, under tf.profile)`);
printLargest(byShape, 25, 2);
