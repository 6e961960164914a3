/**
 * The project's WGSL kernels against the cpu backend (`webgpu_kernels_check.ts`), run in a child
 * process: a software WebGPU adapter (llvmpipe) in the test runner's own process was followed by a
 * heap-corruption crash in the native oneDNN tests. Ignored, with the reason in its name, only where
 * `navigator.gpu` gives no adapter (probed in a child process too).
 */
import { assert } from "./_util/deps.ts";

const run = (args: string[]) =>
  new Deno.Command(Deno.execPath(), { args, stdout: "piped", stderr: "piped" }).output();

const probe = await run([
  "eval",
  "const a = 'gpu' in navigator ? await navigator.gpu.requestAdapter() : null;" +
  "console.log(a ? 'adapter' : 'gpu' in navigator ? 'navigator.gpu has no adapter' : 'no navigator.gpu');",
]);
const found = new TextDecoder().decode(probe.stdout).trim();
const NO_ADAPTER = found === "adapter"
  ? ""
  : ` (ignored: ${found || `probe exited ${probe.code}`})`;

Deno.test({
  name: `webgpu kernels: matmul, convolutions and LSTM steps equal the cpu backend's${NO_ADAPTER}`,
  ignore: NO_ADAPTER !== "",
  fn: async () => {
    const script = new URL("./webgpu_kernels_check.ts", import.meta.url).pathname;
    const r = await run(["run", "-A", "--frozen", script]);
    const out = new TextDecoder().decode(r.stdout), err = new TextDecoder().decode(r.stderr);
    assert.equal(r.code, 0, `webgpu_kernels_check.ts exited ${r.code}:\n${err}\n${out}`);
    assert.match(out, /^all \d+ checks passed$/m, out);
  },
});
