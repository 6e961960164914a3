/**
 * Benchmark rows: the median, min and max wall time of a function over several runs, each run
 * ending with a read of its result (so asynchronous backends are timed to completion).
 * Timings belong here and in `deno task bench`, never in pass/fail tests.
 * @module
 */
import { tf } from "../_deps.ts";

/** One benchmark result, as written by `deno task bench --json FILE`. */
export interface BenchRow {
  readonly name: string;
  readonly backend: string;
  readonly medianMs: number;
  readonly minMs: number;
  readonly maxMs: number;
  readonly runs: number;
  /** Optional extra facts (e.g. GFLOP/s, ratio to a baseline row). */
  readonly note?: string;
}

/** A named group of rows; `run` may skip rows the backend cannot do (returning fewer rows). */
export interface BenchSuite {
  readonly name: string;
  run(opts: BenchOptions): Promise<BenchRow[]>;
}

export interface BenchOptions {
  /** Timed runs per row (after warmup). */
  readonly runs: number;
  readonly warmup: number;
  /** A filter on row names (substring); empty = all. */
  readonly filter: string;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/**
 * An asynchronous function to time (`tf.tidy` takes none): it frees its own intermediates and
 * returns the tensors to read back and dispose. See {@link untidied}.
 */
export interface Untidied {
  /** The function. */
  readonly untidied: () => Promise<tf.TensorContainer>;
}

/** Marks an asynchronous function for {@link measure} (e.g. a step that awaits a read). */
export const untidied = (f: () => Promise<tf.TensorContainer>): Untidied => ({ untidied: f });

/** What can be timed: a synchronous function (run inside `tf.tidy`) or an {@link Untidied} one. */
export type Timed = (() => tf.TensorContainer) | Untidied;

/**
 * Times `fn` (which returns tensors to read back and dispose): `warmup` untimed runs, then `runs`
 * timed ones. Tensors `fn` creates are disposed after each run.
 */
export const measure = async (
  name: string,
  fn: Timed,
  opts: Pick<BenchOptions, "runs" | "warmup">,
  note?: string,
): Promise<BenchRow> => {
  const [row] = await measureInterleaved([[name, fn]], opts);
  return note ? { ...row, note } : row;
};

/**
 * One run of `fn` as the bench times it: tidied (unless untidied), its result read back, then
 * disposed; returns its milliseconds (also `tools/profile_optim_step.ts`, which profiles a row's run).
 */
export const timeOnce = async (fn: Timed): Promise<number> => {
  const t0 = performance.now();
  const out = typeof fn === "function" ? tf.tidy(fn) : await fn.untidied();
  const ts: tf.Tensor[] = [];
  const collect = (c: tf.TensorContainer): void => {
    if (c instanceof tf.Tensor) ts.push(c);
    else if (Array.isArray(c)) c.forEach(collect);
    else if (c && typeof c === "object") Object.values(c).forEach(collect);
  };
  collect(out);
  await Promise.all(ts.map((t) => t.data()));
  const dt = performance.now() - t0;
  ts.forEach((t) => t.dispose());
  return dt;
};

/**
 * Times several functions in alternation (a, b, a, b, …; `warmup` untimed rounds first), so that a
 * slow phase of a shared machine hits all of them alike and their ratios stay meaningful.
 */
export const measureInterleaved = async (
  fns: ReadonlyArray<readonly [string, Timed]>,
  { runs, warmup }: Pick<BenchOptions, "runs" | "warmup">,
): Promise<BenchRow[]> => {
  for (let i = 0; i < warmup; i++) for (const [, fn] of fns) await timeOnce(fn);
  const times: number[][] = fns.map(() => []);
  for (let i = 0; i < runs; i++) {
    for (const [k, [, fn]] of fns.entries()) times[k].push(await timeOnce(fn));
  }
  return fns.map(([name], k) => ({
    name,
    backend: tf.getBackend(),
    medianMs: median(times[k]),
    minMs: Math.min(...times[k]),
    maxMs: Math.max(...times[k]),
    runs,
  }));
};

/** A plain-text table of rows. */
export const formatTable = (rows: readonly BenchRow[]): string => {
  const head = ["name", "backend", "median ms", "min ms", "max ms", "runs", "note"];
  const body = rows.map((r) => [
    r.name,
    r.backend,
    r.medianMs.toFixed(2),
    r.minMs.toFixed(2),
    r.maxMs.toFixed(2),
    String(r.runs),
    r.note ?? "",
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd();
  return [line(head), line(widths.map((w) => "-".repeat(w))), ...body.map(line)].join("\n");
};
