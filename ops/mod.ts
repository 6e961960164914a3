/**
 * The tensor DSL: the `Nn` interface models are written against, its two interpreters (`plain`,
 * `linearize`), the primitive ops with their R-forward and transpose rules, and the losses with
 * their output Hessian products.
 * @module
 */
export * from "./types.ts";
export * from "./nn.ts";
export * from "./interpret.ts";
export * from "./losses.ts";
/** Every primitive op with its primal, R-forward (JVP) and transpose rules, by family. */
export * as primitives from "./_primitives.ts";
