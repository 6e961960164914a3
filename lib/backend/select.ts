/**
 * Backend selection: `auto | tensorflow-gpu | webgpu | tensorflow | native | wasm | cpu`.
 *
 * Measured pitfalls this module encodes (docs/tfjs-notes.md#backend-selection):
 * - `tf.setBackend` reports failure by its return value, not by throwing: always check it.
 * - A native tfjs-node package whose import fails can leave its kernels registered, so at most one
 *   native package is imported per process, and under `auto` only one whose binding is on disk.
 * - `IS_NODE=false` silences the cpu banner but breaks wasm: set only when cpu is chosen.
 * @module
 */
import { importNativeTfjs, importWasmBackend, tf } from "../_deps.ts";
import { installGradientFixes } from "./gradient_fixes.ts";
import { loadWebgpu } from "./webgpu.ts";
import { registerWebGpuKernels } from "./webgpu/register.ts";

/** Names accepted by `--backend` and `MLHF_BACKEND`. */
export const BACKEND_NAMES = [
  "auto",
  "tensorflow-gpu",
  "webgpu",
  "tensorflow",
  "native",
  "wasm",
  "cpu",
] as const;
/** A name accepted by `--backend`, `MLHF_BACKEND` and {@link selectBackend}. */
export type BackendName = typeof BACKEND_NAMES[number];

/** What `selectBackend` decided, and why each other candidate was skipped. */
export interface BackendChoice {
  /** The requested name (`auto` or an explicit backend). */
  readonly requested: BackendName;
  /** The name the caller asked for that is now active (never `auto`). */
  readonly chosen: Exclude<BackendName, "auto">;
  /** TF.js's own backend name (`tensorflow`, `webgpu`, `native`, `wasm`, `cpu`). */
  readonly tfBackend: string;
  /** Candidates that were tried or considered and skipped, with the reason. */
  readonly skipped: ReadonlyArray<{ readonly name: string; readonly reason: string }>;
}

/** Thrown when an explicitly requested backend cannot be used. */
export class BackendError extends Error {
  /** The error's name (`BackendError`). */
  override name = "BackendError";
}

const INSTALL_HELP: Record<"tfjs-node" | "tfjs-node-gpu", string> = {
  "tfjs-node":
    "install it where its install script can download libtensorflow: `deno install --allow-scripts=npm:@tensorflow/tfjs-node npm:@tensorflow/tfjs-node@4.22.0`, then run with --allow-ffi (or -A); see README 'Native TensorFlow backends'",
  "tfjs-node-gpu":
    "on a CUDA machine run `deno install --allow-scripts=npm:@tensorflow/tfjs-node-gpu npm:@tensorflow/tfjs-node-gpu@4.22.0` (needs network access for libtensorflow 2.9.1 and CUDA 11.2/cuDNN 8.1), then run with --allow-ffi (or -A); see README 'Native TensorFlow backends'",
};

/** Where a tfjs-node package's compiled binding would be, if the package is installed locally. */
const nativeBindingPresent = (pkg: "tfjs-node" | "tfjs-node-gpu"): string | null => {
  const dir = `${Deno.cwd()}/node_modules/@tensorflow/${pkg}`;
  try {
    Deno.statSync(`${dir}/package.json`);
  } catch {
    return `not installed (no node_modules/@tensorflow/${pkg})`;
  }
  try {
    for (const entry of Deno.readDirSync(`${dir}/lib`)) {
      if (!entry.isDirectory || !entry.name.startsWith("napi-v")) continue;
      try {
        Deno.statSync(`${dir}/lib/${entry.name}/tfjs_binding.node`);
        return null;
      } catch { /* look further */ }
    }
  } catch { /* no lib dir */ }
  return "installed but its native binding (tfjs_binding.node) is missing: its install script did not run";
};

const trySet = async (name: string): Promise<boolean> => {
  try {
    return await tf.setBackend(name);
  } catch {
    return false;
  }
};

const loadNative = async (pkg: "tfjs-node" | "tfjs-node-gpu"): Promise<string | null> => {
  try {
    await importNativeTfjs(pkg);
  } catch (e) {
    return `import failed: ${(e as Error).message.split("\n")[0]}`;
  }
  return (await trySet("tensorflow")) ? null : "tf.setBackend('tensorflow') returned false";
};

const loadPure = async (name: "wasm" | "cpu"): Promise<string | null> => {
  if (name === "wasm") {
    try {
      await importWasmBackend();
    } catch (e) {
      return `import failed: ${(e as Error).message.split("\n")[0]}`;
    }
    return (await trySet("wasm")) ? null : "tf.setBackend('wasm') returned false";
  }
  tf.env().set("IS_NODE", false); // silences the Node banner; only safe once wasm is not wanted
  return (await trySet("cpu")) ? null : "tf.setBackend('cpu') returned false";
};

/**
 * Loads and activates the BLAS-backed backend. Its module is imported only here, when `native` is
 * tried: importing the library opens no FFI library and loads no BLAS.
 */
const loadNativeBlas = async (): Promise<string | null> => {
  let tryRegisterNative: () => string | null;
  try {
    ({ tryRegisterNative } = await import("./native/register.ts"));
  } catch (e) {
    return `import failed: ${(e as Error).message.split("\n")[0]}`;
  }
  const why = tryRegisterNative();
  if (why) return why;
  return (await trySet("native")) ? null : "tf.setBackend('native') returned false";
};

/**
 * Resolves the backend name from an explicit flag value, else `MLHF_BACKEND`, else `auto`.
 * Throws a `BackendError` naming the source and the accepted values when the name is unknown.
 */
export const resolveBackendName = (flag?: string): BackendName => {
  const env = flag === undefined ? Deno.env.get("MLHF_BACKEND") : undefined;
  const raw = flag ?? env ?? "auto";
  if ((BACKEND_NAMES as readonly string[]).includes(raw)) return raw as BackendName;
  const source = flag !== undefined ? "--backend" : "MLHF_BACKEND";
  throw new BackendError(
    `${source}: unknown backend '${raw}', expected one of ${BACKEND_NAMES.join(" | ")}`,
  );
};

/**
 * Activates a TF.js backend and installs the project's gradient fixes on it.
 *
 * `auto` order: tfjs-node-gpu (only when its binding is on disk), webgpu (only on a hardware
 * adapter: software ones such as llvmpipe are skipped, with the reason), tfjs-node (only when its
 * binding is on disk; at most one tfjs-node package is imported), then the native BLAS backend (`native/register.ts`, imported here when it is tried),
 * then wasm (single-threaded SIMD; ~10× faster than the
 * pure-JS cpu backend on the project's kernels, docs/tfjs-notes.md#backend-speed), then cpu. An explicit name that
 * cannot load throws a `BackendError` saying how to enable it.
 */
export const selectBackend = async (name: BackendName = "auto"): Promise<BackendChoice> => {
  const skipped: Array<{ name: string; reason: string }> = [];
  const done = (chosen: Exclude<BackendName, "auto">): BackendChoice => {
    installGradientFixes();
    return { requested: name, chosen, tfBackend: tf.getBackend(), skipped };
  };
  if (name === "tensorflow-gpu" || name === "tensorflow") {
    const pkg = name === "tensorflow-gpu" ? "tfjs-node-gpu" : "tfjs-node";
    const why = await loadNative(pkg);
    if (why) {
      throw new BackendError(
        `--backend ${name}: @tensorflow/${pkg} cannot be used (${why}). To enable it, ${
          INSTALL_HELP[pkg]
        }`,
      );
    }
    return done(name);
  }
  if (name === "webgpu") {
    const why = await loadWebgpu(false);
    if (why) {
      throw new BackendError(
        `--backend webgpu: cannot be activated (${why}). It needs a runtime with navigator.gpu (Deno 2) and a GPU driver or Mesa (Debian: apt-get install mesa-vulkan-drivers, or libegl-mesa0 libgl1-mesa-dri)`,
      );
    }
    registerWebGpuKernels(); // WGSL GEMM, convolutions, LSTM (lib/backend/webgpu/register.ts)
    return done("webgpu");
  }
  if (name === "native") {
    const why = await loadNativeBlas();
    if (why) {
      throw new BackendError(
        `--backend native: the BLAS-backed backend cannot be used (${why}). Install OpenBLAS (Debian: apt-get install libopenblas0-pthread) or set MLHF_BLAS_PATH to a library exporting cblas_sgemm, and run with --allow-ffi (or -A)`,
      );
    }
    return done("native");
  }
  if (name === "wasm" || name === "cpu") {
    const why = await loadPure(name);
    if (why) throw new BackendError(`--backend ${name}: cannot be activated (${why})`);
    return done(name);
  }
  // auto
  let nativeTried = false;
  for (
    const [bname, pkg] of [["tensorflow-gpu", "tfjs-node-gpu"], [
      "tensorflow",
      "tfjs-node",
    ]] as const
  ) {
    if (bname === "tensorflow") { // webgpu comes right after tfjs-node-gpu, on hardware only
      const whyGpu = await loadWebgpu(true);
      if (!whyGpu) {
        registerWebGpuKernels(); // WGSL GEMM, convolutions, LSTM (lib/backend/webgpu/register.ts)
        return done("webgpu");
      }
      skipped.push({ name: "webgpu", reason: whyGpu });
    }
    if (nativeTried) {
      skipped.push({
        name: bname,
        reason: "another native package was already probed in this process",
      });
      continue;
    }
    const absent = nativeBindingPresent(pkg);
    if (absent) {
      skipped.push({ name: bname, reason: absent });
      continue;
    }
    nativeTried = true;
    const why = await loadNative(pkg);
    if (!why) return done(bname);
    skipped.push({ name: bname, reason: why });
  }
  for (const bname of ["native", "wasm", "cpu"] as const) {
    const why = bname === "native" ? await loadNativeBlas() : await loadPure(bname);
    if (!why) return done(bname);
    skipped.push({ name: bname, reason: why });
  }
  throw new BackendError(
    `--backend auto: no backend could be activated: ${
      skipped.map((s) => `${s.name}: ${s.reason}`).join("; ")
    }`,
  );
};

/** The one line `auto` prints: which backend it chose and why the others were skipped. */
export const describeChoice = (c: BackendChoice): string => {
  const skip = c.skipped.length
    ? ` (skipped: ${c.skipped.map((s) => `${s.name}: ${s.reason}`).join("; ")})`
    : "";
  return `backend: ${c.chosen}${c.requested === "auto" ? " [auto]" : ""}${skip}`;
};
