/**
 * The spread of a comparison: runs one `deno task eval` command over seeds × configurations
 * (backend, OpenBLAS threads and core type) and tabulates final and best test accuracy and best
 * training loss per optimizer, with median and min–max, and which runs agree bit for bit:
 *
 *   deno run -A --frozen tools/spread.ts --out runs/spread/default --seeds 1,2,3 \
 *     --configs native:t1,native:t2,wasm -- --compare mlhf,adam
 *
 * Everything after `--` goes to `tasks/eval.ts` (not --seed, --backend, --out or --resume, which
 * this tool sets). Each run goes to `<out>/<config>/seed<s>/` with its output in
 * `<out>/<config>/seed<s>.log`; a run whose `report.md` exists is reused, a started one is
 * resumed, so the command can be rerun to add seeds or configurations. The summary, over the
 * configurations and seeds asked for, goes to `<out>/spread.md` and `<out>/spread.json`.
 * `--merge a,b --out c` tabulates the runs of earlier outputs together (e.g. an ablation against
 * the shipped weights, run by run), `--only` keeps some optimizers.
 *
 * Configurations: `backend[:t<threads>][:<OpenBLAS core>][:r<repeat>]` (see `spread_summary.ts`);
 * `native:t8` on a machine with fewer cores needs `--fake-nproc` (tools/fake_nproc.c).
 * @module
 */
import { basename, join } from "node:path";
import { flag, FlagError, parseFlags, StringFlag, usage } from "../lib/cli/flags.ts";
import { BooleanFlag } from "../lib/cli/flags.ts";
import { loadBlas } from "../lib/backend/native/blas.ts";
import { readRunLogs } from "../lib/train/logs.ts";
import { runStats } from "../lib/train/report.ts";
import { exists } from "../lib/run/files.ts";
import {
  configDir,
  configEnv,
  parseConfig,
  type ReportRow,
  reportRows,
  type RunConfig,
  type SpreadRow,
  spreadTables,
  trajectoryHash,
} from "./spread_summary.ts";

const SPECS = {
  out: flag(StringFlag, "", "directory of the runs and the summary", "a path"),
  seeds: flag(StringFlag, "1,2,3", "seeds to run", "comma-separated positive integers"),
  configs: flag(
    StringFlag,
    "native:t1,native:t2,wasm",
    "configurations to run each seed under",
    "comma-separated backend[:t<threads>][:<OpenBLAS core>][:r<repeat>]",
  ),
  "fake-nproc": flag(
    StringFlag,
    "",
    "LD_PRELOAD library that reports FAKE_NPROC cores (tools/fake_nproc.c), for more BLAS " +
      "threads than cores",
    "a path to a .so",
  ),
  "summary-only": flag(BooleanFlag, false, "only tabulate the runs already in --out"),
  merge: flag(
    StringFlag,
    "",
    "tabulate together the runs of these earlier --out directories (their spread.json) instead " +
      "of running; labels become <directory name>/<label>",
    "comma-separated paths",
  ),
  only: flag(
    StringFlag,
    "",
    "tabulate only these optimizer labels, in this order (empty: all)",
    "comma-separated labels",
  ),
  "blas-info": flag(BooleanFlag, false, "print the BLAS this process loads as JSON and exit"),
};

const SUMMARY = "Runs one `deno task eval` command over seeds × configurations and tabulates the " +
  "spread of its results. Eval flags follow `--`.";

const RESERVED = ["--seed", "--backend", "--out", "--resume"];

const fail = (message: string): never => {
  console.error(`error: ${message}\n(run 'deno run -A tools/spread.ts --help' for usage)`);
  Deno.exit(2);
};

const parseSeeds = (text: string): number[] => {
  const seeds = text.split(",").map((s) => s.trim());
  if (!seeds.every((s) => /^[1-9]\d*$/.test(s))) {
    fail(`--seeds: invalid value ${JSON.stringify(text)}: expected comma-separated positive ints`);
  }
  return [...new Set(seeds.map(Number))];
};

/** The BLAS a process sees under a configuration's environment, from a child process. */
const blasInfo = async (env: Record<string, string>, unset: readonly string[]) => {
  const cmd = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--frozen", new URL(import.meta.url).pathname, "--blas-info"],
    env: withEnv(env, unset),
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  });
  const r = await cmd.output();
  const text = new TextDecoder().decode(r.stdout).trim();
  return r.success ? text : `unknown (${new TextDecoder().decode(r.stderr).trim()})`;
};

const withEnv = (set: Record<string, string>, unset: readonly string[]) => {
  const env = Deno.env.toObject();
  for (const k of unset) delete env[k];
  return { ...env, ...set };
};

/** A stream into an open file that leaves it open (two of them may share the file). */
const sink = (file: Deno.FsFile) =>
  new WritableStream<Uint8Array>({
    write: async (chunk) => {
      for (let done = 0; done < chunk.length;) done += await file.write(chunk.subarray(done));
    },
  });

/** Runs `tasks/eval.ts` for one configuration and seed unless its report exists. */
const runOne = async (
  c: RunConfig,
  seed: number,
  dir: string,
  evalArgs: readonly string[],
  env: { set: Record<string, string>; unset: readonly string[] },
): Promise<string> => {
  if (await exists(join(dir, "report.md"))) return "reused";
  const resume = await exists(dir);
  const evalTs = new URL("../tasks/eval.ts", import.meta.url).pathname;
  const args = [
    "run",
    "-A",
    "--frozen",
    evalTs,
    "--backend",
    c.backend,
    "--seed",
    String(seed),
    "--out",
    dir,
    ...(resume ? ["--resume"] : []),
    ...evalArgs,
  ];
  const log = await Deno.open(`${dir}.log`, { write: true, create: true, append: true });
  const started = performance.now();
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args,
      env: withEnv(env.set, env.unset),
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    await Promise.all([child.stdout.pipeTo(sink(log)), child.stderr.pipeTo(sink(log))]);
    const status = await child.status;
    const s = ((performance.now() - started) / 1000).toFixed(0);
    return status.success ? `${s} s` : `${s} s, exit ${status.code} (see ${dir}.log)`;
  } finally {
    log.close();
  }
};

/** The rows of one run directory: one per optimizer subdirectory with a log. */
const collect = async (config: string, seed: number, dir: string): Promise<SpreadRow[]> => {
  const reportPath = join(dir, "report.md");
  const report = (await exists(reportPath))
    ? reportRows(await Deno.readTextFile(reportPath))
    : new Map<string, ReportRow>();
  const labels: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isDirectory && await exists(join(dir, e.name, "log.jsonl"))) labels.push(e.name);
  }
  const order = [...report.keys()];
  labels.sort((a, b) =>
    (order.indexOf(a) + 1 || Infinity) - (order.indexOf(b) + 1 || Infinity) || a.localeCompare(b)
  );
  const rows: SpreadRow[] = [];
  for (const label of labels) {
    const { steps, evals } = await readRunLogs(join(dir, label));
    const s = runStats({ label, settings: {}, status: "", steps, evals });
    const finite = steps.map((x) => x.loss).filter(Number.isFinite);
    rows.push({
      config,
      seed,
      label,
      settings: report.get(label)?.settings ?? "",
      status: report.get(label)?.status ?? "no report",
      steps: s.steps,
      finalTestAccuracy: s.finalTestAccuracy,
      bestTestAccuracy: s.bestTestAccuracy,
      bestTrainLoss: s.bestTrainLoss,
      finalTestLoss: s.finalTestLoss,
      peakLoss: finite.length ? Math.max(...finite) : NaN,
      hash: trajectoryHash(steps, evals),
    });
  }
  return rows;
};

const cpuModel = async (): Promise<string> => {
  try {
    const info = await Deno.readTextFile("/proc/cpuinfo");
    return info.match(/^model name\s*:\s*(.*)$/m)?.[1] ?? "unknown";
  } catch {
    return "unknown";
  }
};

const main = async (argv: readonly string[]) => {
  const cut = argv.indexOf("--");
  const own = cut < 0 ? argv : argv.slice(0, cut), evalArgs = cut < 0 ? [] : argv.slice(cut + 1);
  let config;
  try {
    const parsed = parseFlags(own, SPECS);
    if (parsed.kind === "help") {
      console.log(
        usage("spread", SUMMARY, SPECS).replace(
          "deno task spread [flags]",
          "deno run -A --frozen tools/spread.ts [flags] -- [eval flags]",
        ),
      );
      return;
    }
    config = parsed.config;
  } catch (e) {
    if (e instanceof FlagError) fail(e.message);
    throw e;
  }
  if (config["blas-info"]) {
    const r = loadBlas();
    console.log(r.ok ? `${r.blas.config ?? r.blas.path}, ${r.blas.threads} threads` : r.reason);
    return;
  }
  if (!config.out) fail("--out: a directory is required");
  const only = config.only ? config.only.split(",").map((l) => l.trim()) : [];
  const keep = (rows: SpreadRow[]) =>
    only.length ? only.flatMap((l) => rows.filter((r) => r.label === l)) : rows;
  const command = [
    "deno run -A --frozen tools/spread.ts",
    ...argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`)),
  ].join(" ");
  if (config.merge) {
    const setup = [`- Command: \`${command}\``];
    const rows: SpreadRow[] = [];
    for (const dir of config.merge.split(",").map((d) => d.trim())) {
      const path = join(dir, "spread.json");
      if (!await exists(path)) fail(`--merge: ${path} does not exist (run spread.ts there first)`);
      const earlier = JSON.parse(await Deno.readTextFile(path));
      rows.push(
        ...(earlier.rows as SpreadRow[]).map((r) => ({
          ...r,
          label: `${basename(dir)}/${r.label}`,
        })),
      );
      setup.push(`- ${basename(dir)}: \`${earlier.command}\``);
    }
    await writeSummary(config.out, "Spread of merged runs", setup, keep(rows), { command });
    return;
  }
  const reserved = evalArgs.find((a) => RESERVED.includes(a.split("=")[0]));
  if (reserved) fail(`${reserved} after --: spread.ts sets it per run (use --seeds, --configs)`);
  const seeds = parseSeeds(config.seeds);
  let configs: RunConfig[] = [];
  try {
    configs = config.configs.split(",").map(parseConfig);
  } catch (e) {
    fail((e as Error).message);
  }
  const cores = navigator.hardwareConcurrency;
  const envs = new Map<RunConfig, ReturnType<typeof configEnv>>();
  for (const c of configs) {
    try {
      envs.set(c, configEnv(c, cores, config["fake-nproc"]));
    } catch (e) {
      fail((e as Error).message);
    }
  }
  const blas: Record<string, string> = {};
  for (const c of configs.filter((c) => c.backend === "native")) {
    const env = envs.get(c)!;
    blas[configDir(c)] = await blasInfo(env.set, env.unset);
  }
  if (!config["summary-only"]) {
    const total = configs.length * seeds.length;
    let i = 0;
    for (const seed of seeds) {
      for (const c of configs) {
        const dir = join(config.out, configDir(c), `seed${seed}`);
        await Deno.mkdir(join(config.out, configDir(c)), { recursive: true });
        const what = await runOne(c, seed, dir, evalArgs, envs.get(c)!);
        console.error(`[${++i}/${total}] ${configDir(c)} seed ${seed}: ${what}`);
      }
    }
  }
  const rows: SpreadRow[] = [];
  for (const seed of seeds) {
    for (const c of configs) {
      const dir = join(config.out, configDir(c), `seed${seed}`);
      if (await exists(dir)) rows.push(...await collect(configDir(c), seed, dir));
    }
  }
  const setup = [
    `- Command: \`${command}\``,
    `- Each run: \`deno task eval --backend <backend> --seed <seed> --out <dir> ${
      evalArgs.join(" ")
    }\``,
    `- Machine: ${await cpuModel()}, ${cores} cores; Deno ${Deno.version.deno}`,
    ...Object.entries(blas).map(([k, v]) => `- ${k}: ${v}`),
  ];
  await writeSummary(config.out, "Spread over seeds × configurations", setup, keep(rows), {
    command,
    evalArgs,
    seeds,
    configs,
    blas,
  });
};

/** Writes `spread.md` and `spread.json` in `out` and prints the Markdown. */
const writeSummary = async (
  out: string,
  title: string,
  setup: readonly string[],
  rows: SpreadRow[],
  facts: Record<string, unknown>,
) => {
  const md = `# ${title}\n\n${setup.join("\n")}\n\n${spreadTables(rows)}`;
  await Deno.mkdir(out, { recursive: true });
  await Deno.writeTextFile(join(out, "spread.md"), md);
  await Deno.writeTextFile(
    join(out, "spread.json"),
    JSON.stringify({ ...facts, rows }, null, 1) + "\n",
  );
  console.log(md);
};

if (import.meta.main) await main(Deno.args);
