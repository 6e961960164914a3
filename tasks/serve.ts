/**
 * `deno task serve [--dir DIR] [--port N]`: serves the built page (`deno task web`, default
 * `runs/web/site`) on http://127.0.0.1:PORT/ (default 8000; 0 picks a free port) with the right
 * content types (`application/wasm` for TF.js's wasm binaries, `text/javascript` for the bundle).
 * Only files inside DIR are served; anything else is 404.
 * @module
 */
import { extname, join, normalize, resolve, sep } from "node:path";

/** Content types by file extension. */
export const CONTENT_TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".wasm": "application/wasm",
  ".png": "image/png",
  ".svg": "image/svg+xml",
  ".mlhf": "application/octet-stream",
  ".bin": "application/octet-stream",
};

/** A request handler serving the files under `dir`. */
export const staticHandler = (dir: string): (req: Request) => Promise<Response> => {
  const root = resolve(dir);
  return async (req) => {
    if (req.method !== "GET" && req.method !== "HEAD") {
      return new Response("method not allowed", { status: 405 });
    }
    let path = decodeURIComponent(new URL(req.url).pathname);
    if (path.endsWith("/")) path += "index.html";
    const file = normalize(join(root, path));
    if (file !== root && !file.startsWith(root + sep)) {
      return new Response("not found", { status: 404 });
    }
    try {
      const body = await Deno.readFile(file);
      const type = CONTENT_TYPES[extname(file)] ?? "application/octet-stream";
      return new Response(req.method === "HEAD" ? null : body, {
        headers: { "content-type": type, "cache-control": "no-cache" },
      });
    } catch {
      return new Response(`not found: ${path}`, { status: 404 });
    }
  };
};

/** Starts the server on 127.0.0.1:`port`; `onListen` receives the port actually bound. */
export const serveSite = (
  dir: string,
  port: number,
  onListen: (port: number) => void = () => {},
): Deno.HttpServer<Deno.NetAddr> =>
  Deno.serve({
    hostname: "127.0.0.1",
    port,
    onListen: ({ port }) => onListen(port),
  }, staticHandler(dir));

const parseArgs = (args: readonly string[]): { dir: string; port: number } => {
  const o = { dir: "runs/web/site", port: 8000 };
  for (let i = 0; i < args.length; i += 2) {
    const [flag, value] = [args[i], args[i + 1]];
    if (flag !== "--dir" && flag !== "--port") {
      throw new Error(`${flag}: unknown flag, expected --dir DIR or --port N`);
    }
    if (value === undefined) throw new Error(`${flag}: missing value`);
    if (flag === "--dir") o.dir = value;
    else {
      const n = Number(value);
      if (!(Number.isInteger(n) && n >= 0 && n < 65536)) {
        throw new Error(`--port: expected an integer in 0..65535, got '${value}'`);
      }
      o.port = n;
    }
  }
  return o;
};

if (import.meta.main) {
  try {
    const o = parseArgs(Deno.args);
    await Deno.stat(join(o.dir, "index.html")).catch(() => {
      throw new Error(`${o.dir}/index.html: not found (build the page first: deno task web)`);
    });
    serveSite(
      o.dir,
      o.port,
      (port) => console.log(`serving ${o.dir} on http://127.0.0.1:${port}/`),
    );
  } catch (e) {
    console.error(`deno task serve: ${(e as Error).message}`);
    Deno.exit(2);
  }
}
