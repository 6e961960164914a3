/**
 * The browser page (README "In the browser"): the site builds, its bundle holds no Deno-only code,
 * and in a real headless Chromium (driven by puppeteer-core, in its own process:
 * tests/_util/web_driver.ts) 30 steps of MLHF and Adam on the MLP
 * lower both losses, draw both series, and log no console error; a corrupt meta-weights file gives
 * a clear message, not a blank page, and the message stays shown while the others train. The screenshot is written to `runs/web-test/screenshot.png`.
 * The browser tests are ignored (the name says why) when no Chromium binary is found
 * (`MLHF_CHROMIUM`, else `chromium`, `chromium-browser`, `google-chrome` on PATH).
 * @module
 */
import { assert } from "./_util/deps.ts";
import type { DriverReport } from "./_util/web_driver.ts";
import { buildSite } from "../tasks/web.ts";
import { staticHandler } from "../tasks/serve.ts";

const OUT = "runs/web-test";
const SITE = `${OUT}/site`;

const findChromium = (): string | null => {
  const env = Deno.env.get("MLHF_CHROMIUM");
  if (env) return env;
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    for (const name of ["chromium", "chromium-browser", "google-chrome"]) {
      try {
        if (Deno.statSync(`${dir}/${name}`).isFile) return `${dir}/${name}`;
      } catch { /* not here */ }
    }
  }
  return null;
};
const CHROMIUM = findChromium();
const NO_CHROMIUM = CHROMIUM
  ? ""
  : " (ignored: no chromium binary; apt-get install chromium, or set MLHF_CHROMIUM)";

let built: Promise<void> | null = null;
/** Builds the site once per test process (a smaller MNIST subset keeps it quick). */
const site = (): Promise<void> => built ??= buildSite({ out: SITE, train: 2000, test: 500 });

Deno.test("web: the browser bundle holds no Deno-only code (Deno., dlopen, node:/npm: imports)", async () => {
  await site();
  const js = await Deno.readTextFile(`${SITE}/main.js`);
  assert.ok(js.length > 100_000, `${SITE}/main.js: only ${js.length} characters`);
  const forbidden: [string, RegExp][] = [
    ["Deno.", /\bDeno\./g],
    ["dlopen", /dlopen/g],
    ["a node: specifier", /["'`]node:/g],
    ["an npm: specifier", /["'`]npm:/g],
  ];
  for (const [what, re] of forbidden) {
    const hits = [...js.matchAll(re)].map((m) =>
      js.slice(Math.max(0, m.index! - 60), m.index! + 60)
    );
    assert.deepEqual(hits, [], `${SITE}/main.js contains ${what}`);
  }
  for (
    const f of [
      "index.html",
      "style.css",
      "mlhf-mnist.mlhf",
      "mnist-subset.bin",
      "wasm/tfjs-backend-wasm-simd.wasm",
    ]
  ) {
    assert.ok((await Deno.stat(`${SITE}/${f}`)).size > 0, `${SITE}/${f} is empty`);
  }
});

Deno.test("web: serve gives each file its content type and 404 outside the site", async () => {
  await site();
  const handle = staticHandler(SITE);
  const get = (path: string) => handle(new Request(`http://127.0.0.1${path}`));
  const types: Record<string, string> = {
    "/": "text/html; charset=utf-8",
    "/main.js": "text/javascript; charset=utf-8",
    "/style.css": "text/css; charset=utf-8",
    "/wasm/tfjs-backend-wasm.wasm": "application/wasm",
    "/mlhf-mnist.mlhf": "application/octet-stream",
  };
  for (const [path, type] of Object.entries(types)) {
    const r = await get(path);
    await r.body?.cancel();
    assert.equal(r.status, 200, path);
    assert.equal(r.headers.get("content-type"), type, path);
  }
  for (const path of ["/nothing.js", "/../deno.json", "/%2e%2e/deno.json"]) {
    const r = await get(path);
    await r.body?.cancel();
    assert.equal(r.status, 404, path);
  }
});

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

Deno.test({
  name: `web: in Chromium, 30 steps of MLHF and Adam on the MLP lower both losses${NO_CHROMIUM}`,
  ignore: !CHROMIUM,
  fn: async () => {
    await site();
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--frozen", "tests/_util/web_driver.ts", SITE, CHROMIUM!, OUT],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = new TextDecoder().decode(r.stdout).trim();
    const err = new TextDecoder().decode(r.stderr);
    assert.equal(r.code, 0, `web_driver.ts exited ${r.code}:\n${err}\n${out}`);
    const { state: s, errors, chart, digits, broken } = JSON.parse(
      out.split("\n").at(-1)!,
    ) as DriverReport;
    assert.equal(s.error, null);
    assert.equal(s.status, "done");
    assert.deepEqual(errors, []);
    assert.ok(["webgpu", "webgl", "wasm", "cpu"].includes(s.backend), `backend ${s.backend}`);
    for (const label of ["mlhf", "adam"]) {
      const ls = s.losses[label];
      assert.equal(ls.length, 30, `${label}: ${ls.length} losses`);
      assert.ok(ls.every(Number.isFinite), `${label}: a loss is not finite: ${ls}`);
      assert.ok(
        mean(ls.slice(-5)) < mean(ls.slice(0, 5)),
        `${label}: the loss did not fall (first 5 ${ls.slice(0, 5)}, last 5 ${ls.slice(-5)})`,
      );
      assert.deepEqual(s.accuracy[label].map(([step]) => step), [0, 10, 20, 30]);
      assert.ok(s.stepMs[label] > 0, `${label}: step time ${s.stepMs[label]}`);
    }
    // MLHF (trained meta-weights) is far ahead of Adam at its default η after 30 steps.
    assert.ok(mean(s.losses.mlhf.slice(-5)) < 1.5, `mlhf: last losses ${s.losses.mlhf.slice(-5)}`);
    // The chart: one curve per optimizer, each with its legend entry.
    assert.ok(chart.legend.includes("mlhf") && chart.legend.includes("adam"), `${chart.legend}`);
    assert.ok(chart.curves >= 2, `${chart.curves} curves`);
    assert.equal(digits, 8);
    // A corrupt meta-weights file: a clear message naming it; MLHF is disabled, the page works
    // (Adam trains), and the message stays shown through the run that leaves MLHF out.
    assert.equal(broken.hidden, false);
    assert.match(broken.text, /meta-weights could not be loaded: mlhf-mnist\.mlhf: /);
    assert.match(broken.error ?? "", /meta-weights could not be loaded: mlhf-mnist\.mlhf: /);
    assert.equal(broken.mlhfDisabled, true);
    assert.equal(broken.status, "done");
    assert.deepEqual(Object.keys(broken.losses), ["adam"]);
    assert.equal(broken.losses.adam.length, 2);
  },
});
