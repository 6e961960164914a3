/**
 * mlhf: a meta-learned Hessian-Free optimizer (Chen, Lu & Fokoue, arXiv 1805.08462) on TensorFlow.js.
 *
 * The public surface, importable from a URL:
 * ```ts
 * import { selectBackend, tf } from "https://<host>/mod.ts";
 * await selectBackend("auto");
 * ```
 * @module
 */
export { tf } from "./lib/_deps.ts";
export * from "./lib/backend/select.ts";
export * from "./lib/tree.ts";
export * as prng from "./lib/prng.ts";
