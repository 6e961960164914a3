/**
 * The browser page (README "In the browser"): the site builds, its bundle holds no Deno-only code,
 * and in a real headless Chromium (driven by puppeteer-core) 30 steps of MLHF and Adam on the MLP
 * lower both losses, draw both series, and log no console error; a corrupt meta-weights file gives
 * a clear message, not a blank page. The screenshot is written to `runs/web-test/screenshot.png`.
 * The browser tests are ignored (the name says why) when no Chromium binary is found
 * (`MLHF_CHROMIUM`, else `chromium`, `chromium-browser`, `google-chrome` on PATH).
 * @module
 */
import { assert, puppeteer } from "./_util/deps.ts";
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

/** The served site; `/broken/` is the same site with a corrupt meta-weights file. */
const serveForTest = (): { server: Deno.HttpServer<Deno.NetAddr>; url: string } => {
  const handle = staticHandler(SITE);
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const url = new URL(req.url);
    if (!url.pathname.startsWith("/broken/")) return handle(req);
    if (url.pathname === "/broken/mlhf-mnist.mlhf") {
      return new Response(new TextEncoder().encode("not a tensor file"));
    }
    return handle(new Request(new URL(url.pathname.slice(7), url), { method: req.method }));
  });
  return { server, url: `http://127.0.0.1:${server.addr.port}/` };
};

interface PageState {
  status: string;
  backend: string;
  losses: Record<string, number[]>;
  accuracy: Record<string, [number, number][]>;
  stepMs: Record<string, number>;
  error: string | null;
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

Deno.test({
  name: `web: in Chromium, 30 steps of MLHF and Adam on the MLP lower both losses${NO_CHROMIUM}`,
  ignore: !CHROMIUM,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    await site();
    const { server, url } = serveForTest();
    const browser = await puppeteer.launch({
      executablePath: CHROMIUM!,
      headless: true,
      args: ["--no-sandbox", "--window-size=1200,900"],
    });
    try {
      const page = await browser.newPage();
      await page.setViewport({ width: 1200, height: 900 });
      const errors: string[] = [];
      page.on("console", (m) => {
        if (m.type() === "error") errors.push(`console.error: ${m.text()}`);
      });
      page.on("pageerror", (e) => errors.push(`page error: ${(e as Error).message ?? e}`));
      await page.goto(
        `${url}?autostart=1&model=mlp&optimizers=mlhf,adam&steps=30&batch=64&evalEvery=10`,
      );
      await page.waitForFunction(
        () =>
          ["done", "error"].includes((globalThis as { mlhfWeb?: PageState }).mlhfWeb?.status ?? ""),
        { timeout: 80_000, polling: 250 },
      );
      const s = await page.evaluate(() =>
        (globalThis as unknown as { mlhfWeb: PageState }).mlhfWeb
      );
      await page.screenshot({ path: `${OUT}/screenshot.png`, fullPage: true });
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
      assert.ok(
        mean(s.losses.mlhf.slice(-5)) < 1.5,
        `mlhf: last losses ${s.losses.mlhf.slice(-5)}`,
      );
      // The chart: one curve per optimizer, each with its legend entry.
      const chart = await page.$eval("#loss-chart", (el) => ({
        legend: [...el.querySelectorAll("text")].map((t) => t.textContent),
        curves: el.querySelectorAll("polyline, path").length,
      }));
      assert.ok(chart.legend.includes("mlhf") && chart.legend.includes("adam"), `${chart.legend}`);
      assert.ok(chart.curves >= 2, `${chart.curves} curves`);
      const digits = await page.$$eval("#digits figure", (fs) => fs.length);
      assert.equal(digits, 8);

      // A corrupt meta-weights file: a clear message naming it, and the page still works.
      const broken = await browser.newPage();
      await broken.goto(`${url}broken/`);
      await broken.waitForFunction(
        () => (globalThis as { mlhfWeb?: PageState }).mlhfWeb?.status === "error",
        { timeout: 30_000 },
      );
      const box = await broken.$eval("#error", (el) => ({
        text: el.textContent ?? "",
        hidden: (el as unknown as { hidden: boolean }).hidden,
      }));
      assert.equal(box.hidden, false);
      assert.match(box.text, /meta-weights could not be loaded: mlhf-mnist\.mlhf: /);
      const mlhfBox = await broken.$eval(
        "input[name=use][value=mlhf]",
        (el) => (el as unknown as { disabled: boolean }).disabled,
      );
      assert.equal(mlhfBox, true);
    } finally {
      await browser.close();
      await server.shutdown();
    }
  },
});
