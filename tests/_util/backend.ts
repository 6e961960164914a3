/**
 * The backend the test suite runs on: `MLHF_TEST_BACKEND` (default `cpu`, deterministic and
 * complete), activated once per test process with the project's gradient fixes.
 *
 * `MLHF_TEST_BACKEND=webgpu` activates webgpu, but under Deno a webgpu tensor has no synchronous
 * read (`dataSync`, `arraySync`, `bufferSync` throw): only suites that read with `await t.data()`
 * run there. tests/webgpu_check.ts compares webgpu against cpu that way, and is ignored, with the
 * reason, where {@link webgpuUnavailable} says there is no adapter.
 * @module
 */
import { type BackendName, resolveBackendName, selectBackend } from "../../lib/backend/select.ts";

let ready: Promise<string> | null = null;

/** Activates the test backend once; returns its TF.js name. */
export const useTestBackend = (): Promise<string> => {
  ready ??= (async () => {
    const name: BackendName = resolveBackendName(Deno.env.get("MLHF_TEST_BACKEND") ?? "cpu");
    return (await selectBackend(name)).tfBackend;
  })();
  return ready;
};

let webgpuProbe: Promise<string | null> | null = null;

/**
 * Null when `--backend webgpu` can be activated in this process (any adapter, llvmpipe included),
 * else why not. Leaves webgpu active when it can; callers switch backends with `tf.setBackend`.
 */
export const webgpuUnavailable = (): Promise<string | null> => {
  webgpuProbe ??= selectBackend("webgpu").then(() => null, (e) => (e as Error).message);
  return webgpuProbe;
};
