/**
 * The pure half of `tools/spread.ts`: run configurations (backend, BLAS threads, BLAS core type,
 * repeat), the environment each one runs under, the statistics of a set of runs (median and
 * min–max of final and best test accuracy and best training loss) and which runs follow the same
 * trajectory bit for bit (a hash of every logged loss and test figure), rendered as Markdown.
 * @module
 */
import { formatSig, markdownTable } from "../lib/report/mod.ts";
import type { EvalRecord, StepRecord } from "../lib/train/logs.ts";

/** One way of running the same command: backend, and for `native` the BLAS's threads and core. */
export interface RunConfig {
  /** As written on the command line (`native:t2:SkylakeX`). */
  readonly spec: string;
  readonly backend: string;
  /** OPENBLAS_NUM_THREADS; null: the library's default (the cores). */
  readonly threads: number | null;
  /** OPENBLAS_CORETYPE (a DYNAMIC_ARCH build's kernel set); null: the library's own choice. */
  readonly core: string | null;
  /** A repeat of the same configuration in its own directory (1: the first run). */
  readonly repeat: number;
}

/** Backends a configuration may name (`auto` is not one: a spread names what it ran). */
export const SPREAD_BACKENDS = ["native", "wasm", "cpu", "tensorflow", "tensorflow-gpu"] as const;

/**
 * Parses `backend[:t<threads>][:<core>][:r<repeat>]`, e.g. `native:t1`, `native:t4:SkylakeX`,
 * `wasm`, `wasm:r2`. Threads and core apply to `native` only.
 * @throws Error naming the configuration and what was expected.
 */
export const parseConfig = (spec: string): RunConfig => {
  const [backend, ...parts] = spec.trim().split(":");
  const fail = (why: string): never => {
    throw new Error(
      `--configs: bad configuration ${JSON.stringify(spec)}: ${why}; expected ` +
        `backend[:t<threads>][:<OpenBLAS core>][:r<repeat>] with backend one of ` +
        SPREAD_BACKENDS.join(" | "),
    );
  };
  if (!(SPREAD_BACKENDS as readonly string[]).includes(backend)) fail(`unknown backend`);
  let threads: number | null = null, core: string | null = null, repeat = 1;
  for (const p of parts) {
    const again = () => fail(`repeated part ${JSON.stringify(p)}`);
    if (/^t\d+$/.test(p)) threads = threads === null ? Number(p.slice(1)) : again();
    else if (/^r\d+$/.test(p)) repeat = repeat === 1 ? Number(p.slice(1)) : again();
    else if (/^[A-Za-z][A-Za-z0-9]*$/.test(p)) core = core === null ? p : again();
    else fail(`unexpected part ${JSON.stringify(p)}`);
  }
  if (threads !== null && threads < 1) fail("threads must be at least 1");
  if (repeat < 1) fail("the repeat must be at least 1");
  if (backend !== "native" && (threads !== null || core !== null)) {
    fail("BLAS threads and core apply to the native backend only");
  }
  return { spec: spec.trim(), backend, threads, core, repeat };
};

/** The configuration's directory name (`native-t2-SkylakeX`, `wasm-r2`). */
export const configDir = (c: RunConfig): string =>
  [
    c.backend,
    c.threads === null ? null : `t${c.threads}`,
    c.core,
    c.repeat === 1 ? null : `r${c.repeat}`,
  ].filter((p) => p !== null).join("-");

/** What a configuration needs to run on a machine with `cores` cores. */
export interface ConfigEnv {
  /** Variables to set. */
  readonly set: Record<string, string>;
  /** Variables to remove from the inherited environment. */
  readonly unset: readonly string[];
}

/**
 * The environment of a configuration: OPENBLAS_NUM_THREADS and OPENBLAS_CORETYPE as asked (these
 * and the other variables that change OpenBLAS's threads or blocking are removed when not asked,
 * so an inherited value cannot change what a configuration means), and,
 * when it asks for more BLAS threads than `cores` (OpenBLAS caps its threads at the cores it sees),
 * the `fakeNproc` preload library with FAKE_NPROC, and the LSTM row threads (bit-identical for
 * any count) at the real cores.
 * @throws Error when more threads than cores are asked and no preload library is given.
 */
export const configEnv = (c: RunConfig, cores: number, fakeNproc: string): ConfigEnv => {
  const set: Record<string, string> = {};
  const unset = [
    "MLHF_BACKEND",
    "OPENBLAS_NUM_THREADS",
    "GOTO_NUM_THREADS",
    "OPENBLAS_CORETYPE",
    "OPENBLAS_BLOCK_FACTOR",
    "FAKE_NPROC",
  ];
  if (c.threads !== null) set.OPENBLAS_NUM_THREADS = String(c.threads);
  if (c.core !== null) set.OPENBLAS_CORETYPE = c.core;
  if (c.threads !== null && c.threads > cores) {
    if (!fakeNproc) {
      throw new Error(
        `--configs: ${c.spec} asks for ${c.threads} BLAS threads on a machine with ${cores} ` +
          `cores, where OpenBLAS would run ${cores}: build tools/fake_nproc.c and pass ` +
          `--fake-nproc path/to/fake_nproc.so`,
      );
    }
    set.LD_PRELOAD = fakeNproc;
    set.FAKE_NPROC = String(c.threads);
    set.MLHF_THREADS = String(Math.min(cores, 8));
  }
  return { set, unset: unset.filter((k) => !(k in set)) };
};

/**
 * A 53-bit hash (cyrb53) of every step's minibatch loss and every evaluation's train loss, test
 * loss and test accuracy, as 14 hex digits: two runs with equal hashes followed the same
 * trajectory bit for bit (JSON numbers round-trip exactly).
 */
export const trajectoryHash = (
  steps: readonly Pick<StepRecord, "loss">[],
  evals: readonly Pick<EvalRecord, "train_loss" | "test_loss" | "test_accuracy">[],
): string => {
  const text = JSON.stringify([
    steps.map((s) => s.loss),
    evals.map((e) => [e.train_loss, e.test_loss, e.test_accuracy]),
  ]);
  let h1 = 0xdeadbeef, h2 = 0x41c6ce57;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(16).padStart(14, "0");
};

/** One row of a comparison report's table: the optimizer's settings and the run's status. */
export interface ReportRow {
  readonly settings: string;
  readonly status: string;
}

/**
 * The settings and status columns of a comparison's `report.md` (its first table), by optimizer
 * label, in the table's order. Cells escaped as `\|` stay inside their cell.
 */
export const reportRows = (markdown: string): Map<string, ReportRow> => {
  const out = new Map<string, ReportRow>();
  const lines = markdown.split("\n");
  const head = lines.findIndex((l) => /^\|\s*optimizer\s*\|/.test(l));
  if (head < 0) return out;
  const cells = (l: string) =>
    l.trim().replace(/^\||\|$/g, "").split(/(?<!\\)\|/).map((c) => c.trim().replaceAll("\\|", "|"));
  const names = cells(lines[head]);
  const at = (row: string[], name: string) => row[names.indexOf(name)] ?? "";
  for (const line of lines.slice(head + 2)) {
    if (!line.startsWith("|")) break;
    const row = cells(line);
    out.set(row[0], { settings: at(row, "settings"), status: at(row, "status") });
  }
  return out;
};

/** One optimizer's run in one configuration and seed. */
export interface SpreadRow {
  readonly config: string;
  readonly seed: number;
  readonly label: string;
  /** As the report prints them ("lr=1 cg-iter=2 …"). */
  readonly settings: string;
  readonly status: string;
  readonly steps: number;
  readonly finalTestAccuracy: number;
  readonly bestTestAccuracy: number;
  readonly bestTrainLoss: number;
  readonly finalTestLoss: number;
  /** The largest finite minibatch loss of any step (a blow-up shows here). */
  readonly peakLoss: number;
  readonly hash: string;
}

/** Median, minimum and maximum of the finite values (NaN each when there are none). */
export interface Range {
  readonly n: number;
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

/** The median and range of the finite values among `xs`. */
export const range = (xs: readonly number[]): Range => {
  const f = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (!f.length) return { n: 0, median: NaN, min: NaN, max: NaN };
  const m = Math.floor(f.length / 2);
  return {
    n: f.length,
    median: f.length % 2 ? f[m] : (f[m - 1] + f[m]) / 2,
    min: f[0],
    max: f[f.length - 1],
  };
};

/** "median (min–max)", or the median alone when min and max print the same. */
const formatRange = (r: Range, f: (x: number) => string): string => {
  if (!r.n) return "–";
  return f(r.min) === f(r.max) ? f(r.median) : `${f(r.median)} (${f(r.min)}–${f(r.max)})`;
};

/** "92.30 (91.12–92.36)" in percent with 2 decimals, or one value when all print the same. */
export const formatPercentRange = (r: Range): string =>
  formatRange(r, (x) => Number.isFinite(x) ? (x * 100).toFixed(2) : "NaN");

/** "0.2484 (0.2462–0.2628)" with 4 significant digits, or one value when all print the same. */
export const formatLossRange = (r: Range): string => formatRange(r, (x) => formatSig(x));

/** Groups of configurations that share a trajectory hash, biggest first: "{a, b} {c}". */
export const sameBits = (rows: readonly SpreadRow[]): string => {
  const groups = new Map<string, string[]>();
  for (const r of rows) groups.set(r.hash, [...(groups.get(r.hash) ?? []), r.config]);
  return [...groups.values()]
    .sort((a, b) => b.length - a.length)
    .map((g) => `{${g.join(", ")}}`)
    .join(" ");
};

const unique = <T>(xs: readonly T[]): T[] => [...new Set(xs)];

const counts = (xs: readonly string[]): string =>
  unique(xs).map((x) => `${xs.filter((y) => y === x).length} ${x}`).join(", ");

const statsCells = (rows: readonly SpreadRow[]) => [
  formatPercentRange(range(rows.map((r) => r.finalTestAccuracy))),
  formatPercentRange(range(rows.map((r) => r.bestTestAccuracy))),
  formatLossRange(range(rows.map((r) => r.bestTrainLoss))),
];

/** How often one optimizer beat another in the runs they share (same seed and configuration). */
export interface PairCount {
  readonly a: string;
  readonly b: string;
  /** Runs where both have a figure. */
  readonly runs: number;
  /** Runs where a's final test accuracy is higher than b's (ties count for neither). */
  readonly finalHigher: number;
  readonly bestHigher: number;
  /** Runs where a's best training loss is lower than b's. */
  readonly lossLower: number;
}

/** Every pair of optimizers (in order of first appearance), compared run by run. */
export const pairCounts = (rows: readonly SpreadRow[]): PairCount[] => {
  const labels = unique(rows.map((r) => r.label));
  const key = (r: SpreadRow) => `${r.config}\u0000${r.seed}`;
  const out: PairCount[] = [];
  for (const [i, a] of labels.entries()) {
    for (const b of labels.slice(i + 1)) {
      const bs = new Map(rows.filter((r) => r.label === b).map((r) => [key(r), r]));
      const pairs = rows.filter((r) => r.label === a && bs.has(key(r))).map((r) => [
        r,
        bs.get(key(r))!,
      ]);
      const count = (f: (x: SpreadRow, y: SpreadRow) => boolean) =>
        pairs.filter(([x, y]) => f(x, y)).length;
      out.push({
        a,
        b,
        runs: pairs.length,
        finalHigher: count((x, y) => x.finalTestAccuracy > y.finalTestAccuracy),
        bestHigher: count((x, y) => x.bestTestAccuracy > y.bestTestAccuracy),
        lossLower: count((x, y) => x.bestTrainLoss < y.bestTrainLoss),
      });
    }
  }
  return out;
};

/**
 * The summary's tables: per optimizer over every run; per optimizer and seed across the
 * configurations (with the groups of configurations that agree bit for bit); per optimizer and
 * configuration across the seeds; each pair of optimizers run by run; and every run.
 */
export const spreadTables = (rows: readonly SpreadRow[]): string => {
  const labels = unique(rows.map((r) => r.label));
  const seeds = unique(rows.map((r) => r.seed)).sort((a, b) => a - b);
  const configs = unique(rows.map((r) => r.config));
  const of = (label: string) => rows.filter((r) => r.label === label);
  const stat = ["final test acc %", "best test acc %", "best train loss"];
  const all = markdownTable(
    ["optimizer", "settings", "runs", ...stat, "distinct trajectories", "status"],
    labels.map((l) => {
      const rs = of(l);
      return [
        l,
        unique(rs.map((r) => r.settings)).join(" / "),
        `${rs.length} (${unique(rs.map((r) => r.seed)).length} seeds × ${
          unique(rs.map((r) => r.config)).length
        } configs)`,
        ...statsCells(rs),
        String(unique(rs.map((r) => r.hash)).length),
        counts(rs.map((r) => r.status)),
      ];
    }),
    ["left", "left", "left", "right", "right", "right", "right", "left"],
  );
  const perSeed = markdownTable(
    ["optimizer", "seed", ...stat, "configurations with the same bits"],
    labels.flatMap((l) =>
      seeds.map((s) => of(l).filter((r) => r.seed === s)).filter((rs) => rs.length).map((rs) => [
        l,
        String(rs[0].seed),
        ...statsCells(rs),
        sameBits(rs),
      ])
    ),
    ["left", "right", "right", "right", "right", "left"],
  );
  const perConfig = markdownTable(
    ["optimizer", "configuration", ...stat, "seeds"],
    labels.flatMap((l) =>
      configs.map((c) => of(l).filter((r) => r.config === c)).filter((rs) => rs.length).map((
        rs,
      ) => [l, rs[0].config, ...statsCells(rs), rs.map((r) => r.seed).join(", ")])
    ),
    ["left", "left", "right", "right", "right", "left"],
  );
  const every = markdownTable(
    [
      "optimizer",
      "configuration",
      "seed",
      "final test acc",
      "best test acc",
      "best train loss",
      "peak minibatch loss",
      "steps",
      "status",
      "trajectory",
    ],
    rows.map((r) => [
      r.label,
      r.config,
      String(r.seed),
      formatPercentRange(range([r.finalTestAccuracy])),
      formatPercentRange(range([r.bestTestAccuracy])),
      formatLossRange(range([r.bestTrainLoss])),
      formatSig(r.peakLoss),
      String(r.steps),
      r.status,
      r.hash,
    ]),
    ["left", "left", "right", "right", "right", "right", "right", "right", "left", "left"],
  );
  return [
    "## Every run pooled (seeds × configurations)\n",
    all,
    "\n## Across configurations, one seed at a time\n",
    "Configurations in one brace followed the same trajectory bit for bit (every minibatch loss " +
    "and test figure equal).\n",
    perSeed,
    "\n## Across seeds, one configuration at a time\n",
    perConfig,
    ...(labels.length > 1
      ? [
        "\n## Paired: A against B in the runs they share (same seed and configuration)\n",
        markdownTable(
          [
            "A",
            "B",
            "runs",
            "A's final test acc higher",
            "A's best test acc higher",
            "A's best train loss lower",
          ],
          pairCounts(rows).map((p) => [
            p.a,
            p.b,
            String(p.runs),
            String(p.finalHigher),
            String(p.bestHigher),
            String(p.lossLower),
          ]),
          ["left", "left", "right", "right", "right", "right"],
        ),
      ]
      : []),
    "\n## Every run\n",
    every,
  ].join("\n");
};
