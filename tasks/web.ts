/**
 * `deno task web [--out DIR] [--train N] [--test N]`: builds the browser page (README "In the
 * browser") into one static folder (default `runs/web/site`): `main.js` (web/main.ts bundled by
 * `deno bundle --platform browser`), `index.html`, `style.css`, the shipped meta-weights
 * `mlhf-mnist.mlhf`, TF.js's wasm binaries under `wasm/`, and `mnist-subset.bin`, the first N
 * training (default 5000) and test (default 1000) images of the embedded MNIST
 * (lib/data/mnist_subset.ts). Serve it with `deno task serve`.
 * @module
 */
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { readMnist } from "../lib/data/mnist.ts";
import { encodeMnistSubset } from "../lib/data/mnist_subset.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const WASM_FILES = [
  "tfjs-backend-wasm.wasm",
  "tfjs-backend-wasm-simd.wasm",
  "tfjs-backend-wasm-threaded-simd.wasm",
];

/** What `buildSite` needs. */
export interface SiteOptions {
  /** The output folder (created; existing files are replaced). */
  readonly out: string;
  /** Training images in the subset. */
  readonly train: number;
  /** Test images in the subset. */
  readonly test: number;
}

/** Bundles web/main.ts for the browser into `file`; throws with deno's output on failure. */
export const bundlePage = async (file: string): Promise<void> => {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["bundle", "--frozen", "--platform", "browser", "--minify", "-o", file, "web/main.ts"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!r.success) {
    const text = new TextDecoder().decode(r.stderr) + new TextDecoder().decode(r.stdout);
    throw new Error(`deno bundle web/main.ts failed (exit ${r.code}):\n${text}`);
  }
};

/** MNIST's first `train` training and `test` test images as the page's subset file. */
export const mnistSubsetBytes = async (train: number, test: number): Promise<Uint8Array> => {
  const [tr, te] = [await readMnist("train"), await readMnist("test")];
  const [h, w] = tr.shape;
  const take = (s: typeof tr, n: number, split: string) => {
    if (n > s.labels.length) {
      throw new RangeError(`--${split}: ${n} images asked, MNIST ${split} has ${s.labels.length}`);
    }
    return { pixels: s.pixels.slice(0, n * h * w), labels: Uint8Array.from(s.labels.slice(0, n)) };
  };
  return encodeMnistSubset({
    height: h,
    width: w,
    train: take(tr, train, "train"),
    test: take(te, test, "test"),
  });
};

/** Builds the site (see the module doc). */
export const buildSite = async (o: SiteOptions): Promise<void> => {
  await Deno.mkdir(join(o.out, "wasm"), { recursive: true });
  await bundlePage(join(o.out, "main.js"));
  for (const f of ["index.html", "style.css"]) {
    await Deno.copyFile(join(ROOT, "web", f), join(o.out, f));
  }
  await Deno.copyFile(join(ROOT, "weights", "mlhf-mnist.mlhf"), join(o.out, "mlhf-mnist.mlhf"));
  const wasmDir = join(ROOT, "node_modules", "@tensorflow", "tfjs-backend-wasm", "dist");
  for (const f of WASM_FILES) await Deno.copyFile(join(wasmDir, f), join(o.out, "wasm", f));
  await Deno.writeFile(join(o.out, "mnist-subset.bin"), await mnistSubsetBytes(o.train, o.test));
};

const parseArgs = (args: readonly string[]): SiteOptions => {
  const o = { out: "runs/web/site", train: 5000, test: 1000 };
  for (let i = 0; i < args.length; i++) {
    const [flag, value] = [args[i], args[i + 1]];
    if (flag === "--help" || flag === "-h") {
      console.log(
        "usage: deno task web [--out DIR (runs/web/site)] [--train N (5000)] [--test N (1000)]",
      );
      Deno.exit(0);
    }
    if (!["--out", "--train", "--test"].includes(flag)) {
      throw new Error(`${flag}: unknown flag, expected --out, --train or --test`);
    }
    if (value === undefined) throw new Error(`${flag}: missing value`);
    i++;
    if (flag === "--out") o.out = value;
    else {
      const n = Number(value);
      if (!(Number.isInteger(n) && n >= 1)) {
        throw new Error(`${flag}: expected a positive integer, got '${value}'`);
      }
      o[flag === "--train" ? "train" : "test"] = n;
    }
  }
  return o;
};

if (import.meta.main) {
  try {
    const o = parseArgs(Deno.args);
    const t0 = performance.now();
    await buildSite(o);
    console.log(
      `built ${o.out} in ${
        ((performance.now() - t0) / 1000).toFixed(1)
      } s: serve it with \`deno task serve --dir ${o.out}\``,
    );
  } catch (e) {
    console.error(`deno task web: ${(e as Error).message}`);
    Deno.exit(2);
  }
}
