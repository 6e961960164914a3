/**
 * The layering of the code: every non-test `.ts` file belongs to a unit (a folder, or a single file
 * of `lib/`), every unit to a floor of {@link FLOORS}, and a relative import (static
 * `import … from`, `export … from`, `import "…"` and dynamic `import("…")`) may only go to the
 * same floor or a lower one. Units must not import each other in a cycle, on one floor either.
 * A file in no unit is an error too: a new folder gets its floor here. A module whose name starts
 * with `_` is private to its unit (only `lib/_deps.ts`, the home of third-party specifiers, is
 * shared). Each failure names the importing file and the import.
 *
 * Test code is not checked as an importer (`*_test.ts`, `_test*.ts` helpers, `tests/`,
 * `testdata/`): tests reach into every floor.
 * @module
 */
import { assert } from "./_util/deps.ts";

/** The floors, top first: a unit may import units of its own floor and of the floors below. */
const FLOORS: ReadonlyArray<{ readonly name: string; readonly units: readonly string[] }> = [
  {
    name: "entry points (the library surface, tasks, tools, test support, the browser page)",
    units: ["mod.ts", "tasks/", "tools/", "tests/", "web/"],
  },
  { name: "training runs", units: ["lib/train/"] },
  { name: "meta-training", units: ["lib/meta/"] },
  {
    name: "optimizers, models, backends, data, benches",
    units: ["lib/optim/", "models/", "lib/backend/", "lib/distributed/", "lib/data/", "lib/bench/"],
  },
  { name: "run infrastructure", units: ["lib/run/", "lib/report/", "lib/cli/"] },
  { name: "curvature and solvers", units: ["lib/curvature/", "lib/solvers/"] },
  { name: "the tensor DSL", units: ["ops/"] },
  {
    name: "parameter trees, kinds, keys, kernel names",
    units: ["lib/tree.ts", "lib/param_kinds.ts", "lib/prng.ts", "lib/kernels.ts", "lib/scope.ts"],
  },
  { name: "third-party packages", units: ["lib/_deps.ts", "lib/tfjs.ts"] },
];

const ROOT = new URL("..", import.meta.url);
const SKIP_DIRS = new Set(["node_modules", "runs", "results", "weights"]);

/** True for test code, which is not checked as an importer. */
const isTestFile = (path: string): boolean => {
  const base = path.split("/").at(-1)!;
  return base.endsWith("_test.ts") || base.startsWith("_test") || path.startsWith("tests/") ||
    path.includes("/testdata/");
};

/** The repository's `.ts` files, relative to the root, sorted. */
const tsFiles = (dir = ""): string[] => {
  const out: string[] = [];
  for (const e of Deno.readDirSync(new URL(dir || ".", ROOT))) {
    if (e.name.startsWith(".") || SKIP_DIRS.has(e.name)) continue;
    const path = dir + e.name;
    if (e.isDirectory) out.push(...tsFiles(`${path}/`));
    else if (e.isFile && e.name.endsWith(".ts")) out.push(path);
  }
  return out.sort();
};

const IMPORT_PATTERNS = [
  // import … from "…", export … from "…" (also multi-line lists and `import type`)
  /(?:^|[\s;}])(?:import|export)\s[^"'`;]*?\bfrom\s*["'](\.\.?\/[^"']+)["']/g,
  /(?:^|[\s;}])import\s*["'](\.\.?\/[^"']+)["']/g, // import "…" (for its effect)
  /\bimport\s*\(\s*["'](\.\.?\/[^"']+)["']\s*\)/g, // import("…")
];

/** The relative specifiers a source imports, in order of appearance per pattern. */
const relativeImports = (source: string): string[] =>
  IMPORT_PATTERNS.flatMap((re) => [...source.matchAll(re)].map((m) => m[1]));

/** Resolves a relative specifier of `from` to a path relative to the root (`a/b/../c` → `a/c`). */
const resolve = (from: string, specifier: string): string => {
  const parts = from.split("/").slice(0, -1);
  for (const p of specifier.split("/")) {
    if (p === "..") parts.pop();
    else if (p !== ".") parts.push(p);
  }
  return parts.join("/");
};

/** The unit of a path (the longest matching entry of the floors), or null. */
const unitOf = (
  path: string,
  floors: typeof FLOORS = FLOORS,
): { readonly unit: string; readonly floor: number } | null => {
  let best: { unit: string; floor: number } | null = null;
  floors.forEach((f, floor) => {
    for (const unit of f.units) {
      const hit = unit.endsWith("/") ? path.startsWith(unit) : path === unit;
      if (hit && (!best || unit.length > best.unit.length)) best = { unit, floor };
    }
  });
  return best;
};

/** One import between two units. */
interface Edge {
  readonly file: string;
  readonly specifier: string;
  readonly target: string;
}

/** Upward imports and files in no unit, one message each. */
const floorViolations = (
  edges: readonly Edge[],
  floors: typeof FLOORS = FLOORS,
): string[] => {
  const out: string[] = [];
  for (const e of edges) {
    const a = unitOf(e.file, floors), b = unitOf(e.target, floors);
    if (!a) {
      out.push(`${e.file}: in no unit of FLOORS (tests/layering_test.ts); give its folder a floor`);
    } else if (!b) {
      out.push(`${e.file} imports "${e.specifier}" (${e.target}), which is in no unit of FLOORS`);
    } else if (b.floor < a.floor) {
      out.push(
        `${e.file} imports "${e.specifier}" (${e.target}): ${a.unit} (floor ${a.floor}, ` +
          `${floors[a.floor].name}) may not import ${b.unit} (floor ${b.floor}, ${
            floors[b.floor].name
          }), a higher floor`,
      );
    }
  }
  return out;
};

/** Modules shared across units although their names start with `_`. */
const SHARED_PRIVATE = new Set(["lib/_deps.ts"]);

/** Imports of another unit's private (`_`-prefixed) module, one message each. */
const privateImports = (
  edges: readonly Edge[],
  floors: typeof FLOORS = FLOORS,
): string[] =>
  edges.filter((e) =>
    e.target.split("/").at(-1)!.startsWith("_") && !SHARED_PRIVATE.has(e.target) &&
    unitOf(e.file, floors)?.unit !== unitOf(e.target, floors)?.unit
  ).map((e) =>
    `${e.file} imports "${e.specifier}" (${e.target}): a private module of ${
      unitOf(e.target, floors)?.unit ?? "another folder"
    }; import a public module of it`
  );

/** Each cycle among units (one per strongly connected component), with an import per step. */
const unitCycles = (edges: readonly Edge[], floors: typeof FLOORS = FLOORS): string[] => {
  const next = new Map<string, Map<string, Edge>>();
  for (const e of edges) {
    const a = unitOf(e.file, floors)?.unit, b = unitOf(e.target, floors)?.unit;
    if (!a || !b || a === b) continue;
    if (!next.has(a)) next.set(a, new Map());
    if (!next.get(a)!.has(b)) next.get(a)!.set(b, e);
  }
  const reaches = (from: string, to: string): string[] | null => {
    const seen = new Set([from]), queue: string[][] = [[from]];
    while (queue.length) {
      const path = queue.shift()!;
      for (const n of next.get(path.at(-1)!)?.keys() ?? []) {
        if (n === to) return [...path, n];
        if (!seen.has(n)) {
          seen.add(n);
          queue.push([...path, n]);
        }
      }
    }
    return null;
  };
  const reported = new Set<string>(), out: string[] = [];
  for (const u of [...next.keys()].sort()) {
    if (reported.has(u)) continue;
    const cycle = reaches(u, u);
    if (!cycle) continue;
    cycle.forEach((c) => reported.add(c));
    const steps = cycle.slice(1).map((b, i) => {
      const e = next.get(cycle[i])!.get(b)!;
      return `${e.file} imports "${e.specifier}"`;
    });
    out.push(`cycle ${cycle.join(" → ")}: ${steps.join("; ")}`);
  }
  return out;
};

/** Every relative import of the repository's non-test files. */
const repositoryEdges = (): Edge[] =>
  tsFiles().filter((f) => !isTestFile(f)).flatMap((file) =>
    relativeImports(Deno.readTextFileSync(new URL(file, ROOT))).map((specifier) => ({
      file,
      specifier,
      target: resolve(file, specifier),
    }))
  );

Deno.test("layering: no import goes to a higher floor or another unit's private module; no unit cycles", () => {
  const edges = repositoryEdges();
  assert.ok(edges.length > 300, `only ${edges.length} imports found: is the scan broken?`);
  const files = tsFiles().filter((f) => !isTestFile(f));
  const homeless = files.filter((f) => !unitOf(f)).map((f) => `${f}: in no unit of FLOORS`);
  const problems = [
    ...homeless,
    ...floorViolations(edges),
    ...privateImports(edges),
    ...unitCycles(edges),
  ];
  assert.deepEqual(problems, [], `\n${problems.join("\n")}`);
});

Deno.test("layering: the checker finds imports of every form, upward imports and cycles", () => {
  const src = `import { a } from "./a.ts";
import type {
  B,
} from "../b/b.ts";
export * as c from "./c.ts";
import "./d.ts";
const e = await import("../e.ts");
import { tf } from "npm:x"; // not relative
// from "./in_comment_without_import.ts"`;
  assert.deepEqual(relativeImports(src), ["./a.ts", "../b/b.ts", "./c.ts", "./d.ts", "../e.ts"]);
  assert.equal(resolve("lib/optim/mlhf/lstm.ts", "../../kernels.ts"), "lib/kernels.ts");
  assert.equal(unitOf("lib/optim/mlhf/lstm.ts")?.unit, "lib/optim/");
  assert.equal(unitOf("lib/kernels.ts")?.unit, "lib/kernels.ts");
  assert.equal(unitOf("elsewhere/x.ts"), null);
  const up: Edge = { file: "ops/conv.ts", specifier: "../models/mlp.ts", target: "models/mlp.ts" };
  const [msg] = floorViolations([up]);
  assert.match(msg, /^ops\/conv\.ts imports "\.\.\/models\/mlp\.ts" \(models\/mlp\.ts\): ops\/ /);
  const floors = [{ name: "one", units: ["p/", "q/"] }];
  const cyc = unitCycles([
    { file: "p/a.ts", specifier: "../q/b.ts", target: "q/b.ts" },
    { file: "q/b.ts", specifier: "../p/c.ts", target: "p/c.ts" },
  ], floors);
  assert.deepEqual(cyc, [
    'cycle p/ → q/ → p/: p/a.ts imports "../q/b.ts"; q/b.ts imports "../p/c.ts"',
  ]);
  assert.deepEqual(
    floorViolations([{ file: "p/a.ts", specifier: "x", target: "q/b.ts" }], floors),
    [],
  );
  const priv = (file: string, target: string) => ({ file, specifier: "x", target });
  assert.deepEqual(
    privateImports([
      priv("lib/optim/kfac/layers.ts", "ops/_windows.ts"),
      priv("ops/conv.ts", "ops/_windows.ts"),
      priv("lib/backend/native/lstm.ts", "lib/backend/native/kernels/_util.ts"),
      priv("ops/conv.ts", "lib/_deps.ts"),
    ]),
    [
      'lib/optim/kfac/layers.ts imports "x" (ops/_windows.ts): a private module of ops/; import a public module of it',
    ],
  );
  assert.ok(isTestFile("lib/backend/native/_test_util.ts") && isTestFile("models/_testing.ts"));
  assert.ok(!isTestFile("lib/optim/mlhf/lstm.ts"));
});
