/**
 * TensorFlow.js, the union package `@tensorflow/tfjs` (pinned; keep in step with `TFJS_VERSION`
 * in `_deps.ts`): the library's tensors, ops, gradients and backends. `_deps.ts` exports it as the
 * namespace `tf`, which `mod.ts` re-exports so that a library user builds tensors with the same
 * TF.js instance the library registers its backends, kernels and gradient fixes on.
 * @module
 */
export * from "npm:@tensorflow/tfjs@4.22.0";
