/**
 * The backend the test suite runs on: `MLHF_TEST_BACKEND` (default `cpu`, deterministic and
 * complete), activated once per test process with the project's gradient fixes.
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
