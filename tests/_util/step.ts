/**
 * `trainStep` for tests that run inside `tf.tidy` (which takes no async function) on a backend with
 * synchronous reads (cpu, wasm, native): the same device step, read with `dataSync`. Library code
 * uses the asynchronous `trainStep` (webgpu under Deno has no synchronous read).
 * @module
 */
import type { Params } from "../../lib/tree.ts";
import {
  type StepInputs,
  type StepResult,
  stepResult,
  type StepTensors,
  trainStepDevice,
} from "../../lib/train/step.ts";

/** Reads a step's numbers synchronously (and frees `read`), like `readStep`. */
export const readStepSync = <P extends Params, S>(t: StepTensors<P, S>): StepResult<P, S> => {
  const values = t.read.dataSync();
  t.read.dispose();
  return stepResult(t, values);
};

/** One training step read synchronously (tests only; see the module doc). */
export const trainStepSync = <P extends Params, S>(i: StepInputs<P, S>): StepResult<P, S> =>
  readStepSync(trainStepDevice(i));
