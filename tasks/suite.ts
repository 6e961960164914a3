/**
 * `deno task suite`: the held-out benchmark (README "Held-out suite"): every task of the suite ×
 * every optimizer family and grid point × every seed, one resumable run each, then `report.md`,
 * `runs.csv`, `summary.csv` and `profile.svg`. `--tasks`, `--optimizers`, `--seeds` and `--steps`
 * cut it down (CI runs two tasks for a few steps). Divergences are results here (a grid's large
 * learning rates are meant to find them): the command exits 0 once the report is written.
 * @module
 */
import { join } from "node:path";
import { backendFlag, ensureWritableDir, runCli } from "./_cli.ts";
import { type BackendChoice, describeChoice } from "../lib/backend/select.ts";
import {
  BooleanFlag,
  flag,
  FlagError,
  NonNegativeIntFlag,
  oneOf,
  parseDigits,
  StringFlag,
} from "../lib/cli/flags.ts";
import { type SuiteName, SUITES } from "../lib/train/suite/heldout.ts";
import { runSuite } from "../lib/train/suite/run_suite.ts";

const names = (text: string): string[] =>
  text.split(",").map((s) => s.trim()).filter((s) => s.length);

export const SPECS = {
  backend: backendFlag,
  suite: flag(
    oneOf(Object.keys(SUITES) as SuiteName[]),
    "heldout" as SuiteName,
    "the suite (tasks, optimizer families and grids: lib/train/suite/heldout.ts)",
  ),
  tasks: flag(StringFlag, "", "only these tasks, comma-separated (empty: all)", "task names"),
  optimizers: flag(
    StringFlag,
    "",
    "only these optimizer families, comma-separated (empty: all; adam sets the target)",
    "family names",
  ),
  seeds: flag(StringFlag, "1,2,3", "seeds, comma-separated", "positive integers"),
  steps: flag(NonNegativeIntFlag, 0, "steps per task (0: each task's own)"),
  "eval-every": flag(NonNegativeIntFlag, 0, "evaluate every this many steps (0: each task's own)"),
  "eval-examples": flag(NonNegativeIntFlag, 2000, "test examples per evaluation (0: all)"),
  "meta-weights": flag(
    StringFlag,
    "weights/mlhf-mix.mlhf",
    "MLHF's meta-weights file, or untrained",
    "a path or untrained",
  ),
  out: flag(StringFlag, "", "output directory (empty: runs/suite-<suite>-<time>)", "a path"),
  resume: flag(BooleanFlag, false, "continue the suite in --out, reusing finished runs"),
};

const SUMMARY = "Runs the held-out benchmark: tasks no meta-training saw, each against tuned " +
  "first-order methods, HF, K-FAC and MLHF with its ablations, over seeds; writes report.md, " +
  "runs.csv, summary.csv and profile.svg.";

/** The seeds of `--seeds`; a FlagError naming the bad entry. */
export const parseSeeds = (text: string): number[] =>
  names(text).map((s) => {
    const n = parseDigits(s);
    if (n === undefined || n < 1) {
      throw new FlagError(`--seeds: '${s}' is not a positive integer (e.g. --seeds 1,2,3)`);
    }
    return n;
  });

const commandLine = (argv: readonly string[]): string =>
  [
    "deno task suite",
    ...argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`)),
  ].join(" ");

const run = async (
  c: { -readonly [K in keyof typeof SPECS]: typeof SPECS[K]["default"] },
  backend: BackendChoice,
  argv: readonly string[],
): Promise<void> => {
  const seeds = parseSeeds(c.seeds);
  if (c.resume && !c.out) throw new FlagError("--resume: needs --out (the suite to resume)");
  const out = c.out ||
    join(
      "runs",
      `suite-${c.suite}-${
        new Date().toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15)
      }`,
    );
  await ensureWritableDir("out", out);
  const t0 = performance.now();
  const r = await runSuite({
    out,
    suite: c.suite,
    tasks: names(c.tasks),
    families: names(c.optimizers),
    seeds,
    steps: c.steps,
    evalEvery: c["eval-every"],
    evalExamples: c["eval-examples"],
    metaWeights: c["meta-weights"],
    resume: c.resume,
    command: commandLine(argv),
    backend: describeChoice(backend).replace(/^backend: /, ""),
  });
  console.log(
    `${r.runs.length} runs over ${r.summaries.length} tasks in ${
      ((performance.now() - t0) / 1000).toFixed(1)
    } s\nreport:  ${r.reportPath}\nprofile: ${r.profilePath}`,
  );
};

if (import.meta.main) {
  await runCli("suite", SUMMARY, SPECS, (c, backend) => run(c, backend, Deno.args));
}
