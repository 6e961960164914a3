/**
 * `keepHeapInProcess`, each case in a fresh process (the thresholds are process-wide): with it, an
 * 8 MiB typed array comes from glibc's heap, not from a fresh mmap (`mallinfo2().hblkhd`, the bytes
 * in mmapped blocks, does not grow by it); without it (`MLHF_MALLOPT=0`) it does; registering the
 * native backend applies it.
 * @module
 */
import { assert } from "../../../tests/_util/deps.ts";
import { nativeAvailable, testName } from "./_test_util.ts";

const here = (p: string) => new URL(p, import.meta.url).href;

/** Prints the status, then whether an 8 MiB array grew glibc's mmapped bytes by ≥ 8 MiB. */
const SCRIPT = (register: boolean) => `
import { keepHeapInProcess } from "${here("./malloc.ts")}";
${register ? `import { tryRegisterNative } from "${here("./register.ts")}";` : ""}
const libc = Deno.dlopen("libc.so.6", { mallinfo2: { parameters: [], result: { struct: Array(10).fill("usize") } } });
const mmapped = () => new BigUint64Array(libc.symbols.mallinfo2().buffer)[4];
${
  register
    ? "console.log('register=' + tryRegisterNative());"
    : "console.log('status=' + keepHeapInProcess() + ' again=' + keepHeapInProcess());"
}
const before = mmapped();
const a = new Float32Array(2 << 20);
a[0] = 1;
console.log("mmapped=" + (mmapped() - before >= BigInt(a.byteLength)));
${register ? "console.log('status=' + keepHeapInProcess());" : ""}
`;

const run = async (register: boolean, env: Record<string, string> = {}) => {
  const file = await Deno.makeTempFile({ suffix: ".ts" });
  try {
    await Deno.writeTextFile(file, SCRIPT(register));
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--frozen", `--config=${here("../../../deno.json").slice(7)}`, "-A", file],
      env,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, text);
    return text;
  } finally {
    await Deno.remove(file);
  }
};

Deno.test("native malloc: large arrays come from the heap once the thresholds are raised", async () => {
  const text = await run(false);
  assert.match(text, /status=on again=on/);
  assert.match(text, /mmapped=false/);
});

Deno.test("native malloc: MLHF_MALLOPT=0 leaves glibc's defaults (a fresh mmap)", async () => {
  const text = await run(false, { MLHF_MALLOPT: "0" });
  assert.match(text, /status=off \(MLHF_MALLOPT=0\) again=off/);
  assert.match(text, /mmapped=true/);
});

Deno.test({
  name: testName("native malloc: registering the native backend raises the thresholds"),
  ignore: !nativeAvailable,
  fn: async () => {
    const text = await run(true);
    assert.match(text, /register=null/);
    assert.match(text, /status=on/);
    assert.match(text, /mmapped=false/);
  },
});
