/**
 * A stop-gradient without a host read: `tf.clone` run with the gradient tape paused.
 * @module
 */
import { tf } from "../_deps.ts";

/**
 * A copy with no autodiff history: `tf.clone` run with the gradient tape paused (the engine's
 * `gradientDepth`, which decides whether an op is recorded, set to 0 for the one op), so
 * `tf.grads` sees no path through it. A stop-gradient without a host read (webgpu under Deno has
 * no synchronous read).
 */
export const detach = <T extends tf.Tensor>(t: T): T => {
  const state = (tf.engine() as unknown as { state: { gradientDepth: number } }).state;
  const depth = state.gradientDepth;
  state.gradientDepth = 0;
  try {
    return tf.clone(t);
  } finally {
    state.gradientDepth = depth;
  }
};
