/**
 * Registers the provider of the BLAS-backed `native` backend with backend selection (imported for
 * its effect by the task entry points). The provider loads the BLAS (`blas.ts`: `MLHF_BLAS_PATH`,
 * else OpenBLAS and the other candidates) and registers the backend (`backend.ts`); when no BLAS can
 * be opened or FFI is not permitted it returns the reason, and `--backend auto` moves on to wasm.
 * @module
 */
import { type NativeBackendProvider, setNativeBackendProvider } from "../select.ts";
import { loadBlas } from "./blas.ts";
import { registerNativeBackend } from "./backend.ts";
import {
  nativeConv2dFilterGrad,
  nativeGather,
  nativeMaxPoolArgMax,
  nativeMaxPoolGrad,
  nativeScatterAdd,
} from "./hooks.ts";
import { installWindowFastPaths } from "../../../ops/_windows.ts";
import { installNativeLstm } from "./lstm.ts";

/**
 * Makes the `native` backend available: returns null once it is registered (then
 * `tf.setBackend("native")` works), else why it cannot be.
 */
export const tryRegisterNative = (): string | null => {
  const r = loadBlas();
  if (!r.ok) return r.reason;
  try {
    registerNativeBackend(r.blas);
    // The DSL's conv and max-pool rules (and so the gradient fixes) use the native kernels.
    installWindowFastPaths({
      conv2dFilterGrad: nativeConv2dFilterGrad,
      maxPoolTranspose: nativeMaxPoolGrad,
      maxPoolArgMax: nativeMaxPoolArgMax,
      maxPoolGather: nativeGather,
      maxPoolScatter: nativeScatterAdd,
    });
    // The meta-networks' LSTM steps run as single-pass kernels (lib/optim/mlhf/lstm.ts's fast paths).
    installNativeLstm(r.blas);
  } catch (e) {
    return `registering the native backend failed: ${(e as Error).message}`;
  }
  return null;
};

/** The provider `selectBackend` consults for `native` (and for `auto`). */
export const nativeBackendProvider: NativeBackendProvider = {
  tryRegister: () => Promise.resolve(tryRegisterNative()),
};

setNativeBackendProvider(nativeBackendProvider);
