/**
 * A library user gets the backend a task gets: a fresh process that imports only `mod.ts` and calls
 * `selectBackend("auto")` chooses what `--backend auto` of a task chooses (`tasks/_cli.ts`, each in
 * its own process), with the same reasons for the skipped candidates; where the BLAS loads (checked
 * here with `loadBlas`) and no tfjs-node package is installed, that choice is `native`.
 * @module
 */
import { assert } from "./_util/deps.ts";
import { loadBlas } from "../lib/backend/native/blas.ts";

const ROOT = new URL("..", import.meta.url);
const here = (p: string) => new URL(p, ROOT).href;

/** Runs a script in a fresh `deno eval` at the repository root; returns its `backend: …` line. */
const choiceLine = async (script: string): Promise<string> => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--frozen", script],
    cwd: ROOT.pathname,
    env: { MLHF_BACKEND: "auto" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, text);
  const line = text.split("\n").find((l) => l.startsWith("backend: "));
  assert.ok(line, `no 'backend:' line in:\n${text}`);
  return line;
};

const tfjsNodeInstalled = ["tfjs-node", "tfjs-node-gpu"].some((pkg) => {
  try {
    Deno.statSync(new URL(`node_modules/@tensorflow/${pkg}`, ROOT));
    return true;
  } catch {
    return false;
  }
});

Deno.test("backend: mod.ts's selectBackend('auto') chooses what a task chooses", async () => {
  const library = await choiceLine(`
import * as mlhf from "${here("mod.ts")}";
console.log(mlhf.describeChoice(await mlhf.selectBackend("auto")));`);
  const task = await choiceLine(`
import { backendFlag, runCli } from "${here("tasks/_cli.ts")}";
await runCli("probe", "probe", { backend: backendFlag }, async () => {}, []);`);
  assert.equal(library, task);
  assert.match(library, /^backend: \S+ \[auto\]/);
  const blas = loadBlas();
  if (!tfjsNodeInstalled) {
    assert.match(
      library,
      blas.ok ? /^backend: native \[auto\]/ : /^backend: wasm \[auto\]/,
      blas.ok ? "the BLAS loads here" : `no BLAS here: ${blas.reason}`,
    );
  }
});
