import { assert } from "../../tests/_util/deps.ts";
import { BackendError, describeChoice, resolveBackendName } from "./select.ts";

Deno.test("backend: names resolve from the flag, else MLHF_BACKEND, else auto", () => {
  assert.equal(resolveBackendName("wasm"), "wasm");
  const saved = Deno.env.get("MLHF_BACKEND");
  try {
    Deno.env.set("MLHF_BACKEND", "cpu");
    assert.equal(resolveBackendName(), "cpu");
    Deno.env.set("MLHF_BACKEND", "gpu");
    assert.throws(
      () => resolveBackendName(),
      (e: unknown) =>
        e instanceof BackendError &&
        /MLHF_BACKEND: unknown backend 'gpu', expected one of auto \|/.test(e.message),
    );
    Deno.env.delete("MLHF_BACKEND");
    assert.equal(resolveBackendName(), "auto");
  } finally {
    if (saved === undefined) Deno.env.delete("MLHF_BACKEND");
    else Deno.env.set("MLHF_BACKEND", saved);
  }
  assert.throws(() => resolveBackendName("tpu"), /--backend: unknown backend 'tpu'/);
});

const script = (body: string) => `
import { selectBackend, describeChoice } from "${new URL("./select.ts", import.meta.url).href}";
${body}`;

/** Runs a selection in a fresh process: backends register globally, once per process. */
const inProcess = async (body: string, env: Record<string, string> = {}) => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--frozen", script(body)],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: out.code,
    text: new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr),
  };
};

Deno.test("backend: auto picks a pure backend here and says why natives were skipped", async () => {
  const r = await inProcess(
    `const c = await selectBackend("auto"); console.log(describeChoice(c)); console.log("tf=" + c.tfBackend);`,
  );
  assert.equal(r.code, 0, r.text);
  assert.match(r.text, /backend: (native|wasm) \[auto\] \(skipped: tensorflow-gpu: not installed/);
  assert.match(r.text, /tf=(native|wasm)/);
});

Deno.test("backend: explicit cpu and wasm activate and report their names", async () => {
  for (const name of ["cpu", "wasm"]) {
    const r = await inProcess(
      `const c = await selectBackend("${name}"); console.log("tf=" + c.tfBackend);`,
    );
    assert.equal(r.code, 0, r.text);
    assert.match(r.text, new RegExp(`tf=${name}`));
  }
});

Deno.test("backend: an explicit native TF backend that cannot load says how to install it", async () => {
  const r = await inProcess(
    `try { await selectBackend("tensorflow-gpu"); } catch (e) { console.log(e.name + ": " + e.message); }`,
  );
  assert.match(
    r.text,
    /BackendError: --backend tensorflow-gpu: @tensorflow\/tfjs-node-gpu cannot be used/,
  );
  assert.match(r.text, /deno install --allow-scripts=npm:@tensorflow\/tfjs-node-gpu/);
});

Deno.test("backend: describeChoice lists skipped candidates", () => {
  const line = describeChoice({
    requested: "auto",
    chosen: "wasm",
    tfBackend: "wasm",
    skipped: [{ name: "tensorflow", reason: "not installed" }],
  });
  assert.equal(line, "backend: wasm [auto] (skipped: tensorflow: not installed)");
});

Deno.test("backend: auto skips a software webgpu adapter, saying why", async () => {
  const r = await inProcess(`console.log(describeChoice(await selectBackend("auto")));`);
  assert.equal(r.code, 0, r.text);
  // Without a GPU: no adapter at all, or Mesa's software one (llvmpipe); with one, webgpu wins.
  assert.match(
    r.text,
    /backend: webgpu \[auto\]|; webgpu: (navigator\.gpu|the adapter '.*' is a (fallback|software))/,
  );
});

Deno.test("backend: explicit webgpu without navigator.gpu names what is missing", async () => {
  const r = await inProcess(
    `Object.defineProperty(navigator, "gpu", { value: undefined });
     try { await selectBackend("webgpu"); } catch (e) { console.log(e.name + ": " + e.message); }`,
  );
  assert.match(
    r.text,
    /BackendError: --backend webgpu: cannot be activated \(navigator\.gpu is missing/,
  );
});

Deno.test("backend: explicit webgpu activates on any adapter, or names what is missing", async () => {
  const r = await inProcess(
    `try { const c = await selectBackend("webgpu"); console.log("tf=" + c.tfBackend); }
     catch (e) { console.log(e.name + ": " + e.message); }`,
  );
  assert.match(r.text, /tf=webgpu|BackendError: --backend webgpu: cannot be activated \(.*adapter/);
});
