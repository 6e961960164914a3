/**
 * Registers the provider of the BLAS-backed `native` backend (issue 9). Until it exists, the
 * provider reports why it cannot load, and `auto` falls through to wasm.
 * @module
 */
import { setNativeBackendProvider } from "../select.ts";

setNativeBackendProvider({
  tryRegister: () => Promise.resolve("not implemented yet (issue 9)"),
});
