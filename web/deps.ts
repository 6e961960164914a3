// Inline npm: specifiers are this file's purpose: the page's browser-only packages, pinned.
// deno-lint-ignore-file no-import-prefix
/**
 * The page's third-party modules that the library does not use: TF.js's WebGPU backend (imported
 * on demand, it registers itself) and the wasm backend's `setWasmPaths`. Kept at TF.js 4.22.0,
 * the library's version (`lib/_deps.ts`), so they share its tfjs-core instance.
 * @module
 */
/** Loads the WebGPU backend (registers `webgpu` with the engine on import). */
export const importWebGpuBackend = (): Promise<unknown> =>
  import("npm:@tensorflow/tfjs-backend-webgpu@4.22.0");

/** Loads the wasm backend and returns it (for `setWasmPaths`). */
export const importWasmBackend = (): Promise<{ setWasmPaths: (prefix: string) => void }> =>
  import("npm:@tensorflow/tfjs-backend-wasm@4.22.0");
