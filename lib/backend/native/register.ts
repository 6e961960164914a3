/**
 * Makes the BLAS-backed `native` backend available: loads the BLAS (`blas.ts`: `MLHF_BLAS_PATH`,
 * else OpenBLAS and the other candidates) and registers the backend with all its kernels
 * (`backend.ts`). `selectBackend` imports this module when it tries `native` (for `native` and
 * `auto`), so importing the library loads no FFI and no BLAS. When no BLAS can be opened or FFI is
 * not permitted it returns the reason, and `auto` moves on to wasm.
 * @module
 */
import { loadBlas } from "./blas.ts";
import { registerNativeBackend } from "./backend.ts";

/**
 * Makes the `native` backend available: returns null once it is registered (then
 * `tf.setBackend("native")` works), else why it cannot be.
 */
export const tryRegisterNative = (): string | null => {
  const r = loadBlas();
  if (!r.ok) return r.reason;
  try {
    registerNativeBackend(r.blas);
  } catch (e) {
    return `registering the native backend failed: ${(e as Error).message}`;
  }
  return null;
};
