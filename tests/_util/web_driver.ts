/**
 * The browser half of tests/web_page_test.ts, run in its own process (so that puppeteer, Chromium
 * and the server never live in the test runner's process): `deno run -A tests/_util/web_driver.ts
 * SITE CHROMIUM OUT_DIR`. It serves SITE, opens the page in headless Chromium, runs 30 steps of
 * MLHF and Adam on the MLP, then trains 2 steps on `/broken/` (the site with a corrupt meta-weights file),
 * writes OUT_DIR/screenshot.png and prints one JSON line: {@link DriverReport}.
 * @module
 */
import { puppeteer } from "./deps.ts";
import { staticHandler } from "../../tasks/serve.ts";

/** The page's `window.mlhfWeb`. */
export interface PageState {
  status: string;
  backend: string;
  losses: Record<string, number[]>;
  accuracy: Record<string, [number, number][]>;
  stepMs: Record<string, number>;
  error: string | null;
}

/** What the driver prints. */
export interface DriverReport {
  /** The page's state after training. */
  state: PageState;
  /** Console errors and page errors, in order. */
  errors: string[];
  /** The loss chart's legend texts and its number of curves. */
  chart: { legend: (string | null)[]; curves: number };
  /** Test digits shown. */
  digits: number;
  /** The `/broken/` page: its state, the error box's text and whether it is hidden. */
  broken: {
    status: string;
    error: string | null;
    losses: Record<string, number[]>;
    text: string;
    hidden: boolean;
    mlhfDisabled: boolean;
  };
}

/** The served site; `/broken/` is the same site with a corrupt meta-weights file. */
const serveForTest = (SITE: string): { server: Deno.HttpServer<Deno.NetAddr>; url: string } => {
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

const [SITE, CHROMIUM, OUT] = Deno.args;
if (!SITE || !CHROMIUM || !OUT) throw new Error("usage: web_driver.ts SITE CHROMIUM OUT_DIR");
const { server, url } = serveForTest(SITE);
const browser = await puppeteer.launch({
  executablePath: CHROMIUM,
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
    () => ["done", "error"].includes((globalThis as { mlhfWeb?: PageState }).mlhfWeb?.status ?? ""),
    { timeout: 80_000, polling: 250 },
  );
  const state = await page.evaluate(() =>
    (globalThis as unknown as { mlhfWeb: PageState }).mlhfWeb
  );
  await page.screenshot({ path: `${OUT}/screenshot.png`, fullPage: true });
  const chart = await page.$eval("#loss-chart", (el) => ({
    legend: [...el.querySelectorAll("text")].map((t) => t.textContent),
    curves: el.querySelectorAll("polyline, path").length,
  }));
  const digits = await page.$$eval("#digits figure", (fs) => fs.length);

  // The broken site, asked to train MLHF and Adam: Adam trains, and the load error stays shown
  // through the run (a run must not hide it: MLHF would then be silently missing).
  const bad = await browser.newPage();
  await bad.goto(
    `${url}broken/?autostart=1&model=mlp&optimizers=mlhf,adam&steps=2&batch=16&evalEvery=2`,
  );
  await bad.waitForFunction(
    () => {
      const s = (globalThis as { mlhfWeb?: PageState }).mlhfWeb;
      return s?.status === "done" ||
        (s?.status === "error" && !s.error?.startsWith("MLHF is unavailable"));
    },
    { timeout: 30_000, polling: 250 },
  );
  const badState = await bad.evaluate(() =>
    (globalThis as unknown as { mlhfWeb: PageState }).mlhfWeb
  );
  const box = await bad.$eval("#error", (el) => ({
    text: el.textContent ?? "",
    hidden: (el as unknown as { hidden: boolean }).hidden,
  }));
  const mlhfDisabled = await bad.$eval(
    "input[name=use][value=mlhf]",
    (el) => (el as unknown as { disabled: boolean }).disabled,
  );
  const broken = {
    status: badState.status,
    error: badState.error,
    losses: badState.losses,
    ...box,
    mlhfDisabled,
  };
  const report: DriverReport = { state, errors, chart, digits, broken };
  console.log(JSON.stringify(report));
} finally {
  await browser.close();
  await server.shutdown();
}
