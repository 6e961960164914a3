/** sg(·): the identity whose gradient is zero (TF.js has no stop_gradient op). @module */
import { tf } from "../../_deps.ts";

const sgOp = tf.customGrad(
  ((x: tf.Tensor) => ({
    value: tf.clone(x),
    gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
  })) as unknown as Parameters<typeof tf.customGrad>[0],
);

/**
 * x with its gradient cut (docs/algorithm.md#what-is-cut: g, x_prev, r_prev and θ in the update are
 * stop-gradient).
 */
export const stopGradient = <T extends tf.Tensor>(x: T): T => sgOp(x) as T;
