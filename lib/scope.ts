/** Memory scopes for values that are not tensors. @module */
import { tf } from "./_deps.ts";

/**
 * Runs fn in a `tf.tidy` scope and returns its (non-tensor) result: every tensor fn creates is
 * disposed, whatever fn returns (numbers, typed arrays, plain objects of numbers).
 */
export const tidyValue = <T>(fn: () => T): T => {
  let out!: T;
  tf.tidy(() => {
    out = fn();
  });
  return out;
};
