/**
 * `mod.ts` imports cleanly from a URL: the repository is served over HTTP on 127.0.0.1 and a
 * separate Deno process, outside the repository (no deno.json, no import map, no node_modules),
 * imports `http://127.0.0.1:PORT/mod.ts` and calls exported functions; `selectBackend("auto")`
 * there loads the native backend from the same URL where the BLAS loads.
 * @module
 */
import { assert } from "./_util/deps.ts";
import { loadBlas } from "../lib/backend/native/blas.ts";
import { extname, join, normalize } from "node:path";

const ROOT = new URL("..", import.meta.url).pathname;
const TYPES: Record<string, string> = {
  ".ts": "application/typescript",
  ".js": "application/javascript",
  ".json": "application/json",
};

Deno.test({
  name: "mod.ts imports from a URL in a separate process and its functions run",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const ac = new AbortController();
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: () => {} },
      async (req) => {
        const path = normalize(decodeURIComponent(new URL(req.url).pathname));
        if (path.includes("..") || path.includes("node_modules")) {
          return new Response("no", { status: 403 });
        }
        try {
          const body = await Deno.readFile(join(ROOT, path));
          const type = TYPES[extname(path)] ?? "application/octet-stream";
          return new Response(body, { headers: { "content-type": type } });
        } catch {
          return new Response("not found", { status: 404 });
        }
      },
    );
    const port = server.addr.port;
    const dir = await Deno.makeTempDir();
    try {
      const script = `
import * as mlhf from "http://127.0.0.1:${port}/mod.ts";
const auto = await mlhf.selectBackend("auto");
const y = mlhf.tf.matMul(mlhf.tf.ones([2, 3]), mlhf.tf.ones([3, 2])).dataSync().join(",");
const choice = await mlhf.selectBackend("cpu");
const key = mlhf.prng.keyFromSeed(7);
const p = { w: mlhf.tf.ones([2, 3]), b: mlhf.tf.zeros([3]) };
console.log(JSON.stringify({ auto: auto.chosen, y, backend: choice.tfBackend, size: mlhf.size(p), key: key.length, kinds: mlhf.PARAM_KINDS.length }));
`;
      await Deno.writeTextFile(join(dir, "main.ts"), script);
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--no-lock",
          `--allow-import=127.0.0.1:${port}`,
          "--allow-read",
          "--allow-env",
          "--allow-net=127.0.0.1",
          "--allow-ffi",
          "--allow-sys",
          "main.ts",
        ],
        cwd: dir,
        stdout: "piped",
        stderr: "piped",
        env: { DENO_NO_UPDATE_CHECK: "1" },
      }).output();
      const stdout = new TextDecoder().decode(out.stdout);
      const stderr = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, stderr);
      const line = stdout.trim().split("\n").at(-1)!;
      // `auto` from a URL loads the native backend itself where the BLAS loads (as a task does).
      const auto = loadBlas().ok ? "native" : "wasm";
      assert.deepEqual(JSON.parse(line), {
        auto,
        y: "3,3,3,3",
        backend: "cpu",
        size: 9,
        key: 2,
        kinds: 6,
      });
    } finally {
      ac.abort();
      await server.finished;
      await Deno.remove(dir, { recursive: true });
    }
  },
});
