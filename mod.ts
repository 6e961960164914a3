/**
 * mlhf: a meta-learned Hessian-Free optimizer (Chen, Lu & Fokoue, arXiv 1805.08462) on
 * TensorFlow.js. The public surface, importable from a URL:
 *
 * ```ts
 * import * as mlhf from "https://<host>/mod.ts";
 * await mlhf.selectBackend("auto");
 * const model = mlhf.models.mlp();
 * const { params, kinds } = model.init(mlhf.prng.keyFromSeed(1), [28, 28, 1]);
 * const opt = mlhf.optim.hessianFree({ learningRate: 1, damping: 0.1, cgIterations: 10 });
 * ```
 * @module
 */
export { tf } from "./lib/_deps.ts";
// The TF.js types and the DSL's types that the top-level signatures use, also by name.
export type { Scalar, Tensor, TensorContainer } from "./lib/_deps.ts";
export type {
  Apply,
  BatchNormOut,
  Linearization,
  LrnOptions,
  ModelOutput,
  Nn,
  OpDef,
  Padding,
  RecordedOp,
  Tangent,
  WindowOptions,
} from "./ops/mod.ts";
export * from "./lib/backend/select.ts";
export * from "./lib/tree.ts";
export * as prng from "./lib/prng.ts";
export { PARAM_KINDS, type ParamKind } from "./lib/param_kinds.ts";
// The DSL: interpreters, ops, losses.
export * as nn from "./ops/mod.ts";
// Curvature and solvers.
export * from "./lib/curvature/gauss_newton.ts";
export * from "./lib/solvers/cg.ts";
export * from "./lib/solvers/levenberg_marquardt.ts";
// Models, optimizers, meta-learning, training.
export * as models from "./models/mod.ts";
export * as optim from "./lib/optim/mod.ts";
export * as meta from "./lib/meta/mod.ts";
export * as train from "./lib/train/mod.ts";
// Data, run infrastructure, reports.
export * as data from "./lib/data/mod.ts";
export * as run from "./lib/run/mod.ts";
export * as report from "./lib/report/mod.ts";
