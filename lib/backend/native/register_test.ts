/**
 * Backend selection of the native backend, each case in a fresh process that imports only
 * `select.ts` (it loads `register.ts` itself; backends register once per process): `auto` picks
 * `native` when a BLAS loads and says so; with no loadable BLAS
 * (`MLHF_BLAS_PATH` pointing nowhere) or without FFI permission, `auto` falls back to wasm and
 * names the reason, and an explicit `--backend native` fails with how to enable it.
 * @module
 */
import { assert } from "../../../tests/_util/deps.ts";
import { nativeAvailable, testName } from "./_test_util.ts";

const here = (p: string) => new URL(p, import.meta.url).href;

const script = (body: string) => `
import { selectBackend, describeChoice } from "${here("../select.ts")}";
import { tf } from "${here("../../_deps.ts")}";
${body}`;

/** Runs a script in a fresh `deno run` with the given permission flags and environment. */
const inProcess = async (body: string, perms: string[], env: Record<string, string> = {}) => {
  const file = await Deno.makeTempFile({ suffix: ".ts" });
  try {
    await Deno.writeTextFile(file, script(body));
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--frozen",
        `--config=${new URL("../../../deno.json", import.meta.url).pathname}`,
        ...perms,
        file,
      ],
      env,
      stdout: "piped",
      stderr: "piped",
    }).output();
    return {
      code: out.code,
      text: new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr),
    };
  } finally {
    await Deno.remove(file);
  }
};

const AUTO = `const c = await selectBackend("auto"); console.log(describeChoice(c));
console.log("tf=" + tf.getBackend() + " y=" + tf.matMul(tf.ones([2, 3]), tf.ones([3, 2])).dataSync().join(","));`;

Deno.test({
  name: testName("auto picks native when a BLAS loads, and says so"),
  ignore: !nativeAvailable,
  fn: async () => {
    const r = await inProcess(AUTO, ["-A"]);
    assert.equal(r.code, 0, r.text);
    assert.match(r.text, /backend: native \[auto\] \(skipped: tensorflow-gpu: /);
    assert.match(r.text, /tf=native y=3,3,3,3/);
    assert.doesNotMatch(r.text, /Hi, looks like you are running TensorFlow\.js in Node/);
  },
});

Deno.test("native: without a loadable BLAS, auto falls back to wasm and names the reason", async () => {
  const env = { MLHF_BLAS_PATH: "/nonexistent/libnoblas.so" };
  const r = await inProcess(AUTO, ["-A"], env);
  assert.equal(r.code, 0, r.text);
  assert.match(
    r.text,
    /native: no BLAS with cblas_sgemm could be opened \(MLHF_BLAS_PATH \/nonexistent\/libnoblas\.so: /,
  );
  assert.match(r.text, /backend: wasm \[auto\]/);
  assert.match(r.text, /tf=wasm y=3,3,3,3/);
  const explicit = await inProcess(
    `try { await selectBackend("native"); } catch (e) { console.log(e.name + ": " + e.message); }`,
    ["-A"],
    env,
  );
  assert.match(
    explicit.text,
    /BackendError: --backend native: the BLAS-backed backend cannot be used/,
  );
  assert.match(explicit.text, /libnoblas\.so/);
});

Deno.test("native: without FFI permission selection says so and auto moves on", async () => {
  const r = await inProcess(AUTO, ["--allow-read", "--allow-env", "--allow-sys"]);
  assert.equal(r.code, 0, r.text);
  assert.match(r.text, /native: FFI not permitted \(run with --allow-ffi or -A\)/);
  assert.match(r.text, /backend: wasm \[auto\]/);
});
