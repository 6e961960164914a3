/**
 * Optimizers as composable pure transforms (`init`/`update`, optax-style): the first-order
 * baselines, HF with fixed and Levenberg–Marquardt damping, K-FAC and MLHF.
 * @module
 */
export * from "./base.ts";
export * from "./transforms.ts";
export * from "./alias.ts";
export * from "./hessian_free.ts";
export * from "./kfac.ts";
export * from "./mlhf/optimizer.ts";
export * from "./guard.ts";
export * from "./finite.ts";
