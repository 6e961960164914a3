/**
 * A progress line for long loops (training steps, evaluation batches):
 *
 * `train  42% [############----------------]  420/1000  12.5 it/s  ETA 0:00:46  loss=0.1234 lr=0.01`
 *
 * `formatProgress` is pure (state and clock in, text out); `progress` does the I/O. On a terminal
 * the line is redrawn in place with `\r` (at most every `redrawMs`); otherwise (a log file, CI)
 * one plain line is printed every `intervalMs` (and every `everySteps` steps if given), so logs
 * stay readable. `done()` prints the final line with the total time.
 * @module
 */
import { formatCompact, formatDuration } from "../report/format.ts";

/** Everything a progress line shows. Times are in milliseconds. */
export interface ProgressState {
  /** Shown first (may be empty). */
  readonly label: string;
  /** Total count; 0 or less when unknown (no percent, bar or ETA then). */
  readonly total: number;
  /** The count done so far. */
  readonly done: number;
  /** When counting started. */
  readonly startTime: number;
  /** The count when counting started (a resumed run starts above 0). */
  readonly startDone: number;
  /** Extra `key=value` fields shown at the end. */
  readonly fields: Readonly<Record<string, number | string>>;
  /** Bar width in characters (default 24). */
  readonly barWidth?: number;
}

/** The rate in items per second ("12.5 it/s"), or seconds per item when slower ("3.2 s/it"). */
const formatRate = (perSecond: number): string =>
  !(perSecond > 0) || !Number.isFinite(perSecond)
    ? "-- it/s"
    : perSecond >= 1
    ? `${formatCompact(perSecond, 3)} it/s`
    : `${formatCompact(1 / perSecond, 3)} s/it`;

/** The fields as `key=value` (numbers compact). */
export const formatFields = (fields: Readonly<Record<string, number | string>>): string =>
  Object.entries(fields)
    .map(([k, v]) => `${k}=${typeof v === "number" ? formatCompact(v) : v}`)
    .join(" ");

/** The progress line for `state` at time `now` (no line break, no terminal codes). */
export const formatProgress = (state: ProgressState, now: number): string => {
  const { label, total, done, fields } = state;
  const elapsed = Math.max(0, (now - state.startTime) / 1000);
  const rate = elapsed > 0 ? (done - state.startDone) / elapsed : 0;
  const parts: string[] = label ? [label] : [];
  const finished = total > 0 && done >= total;
  if (total > 0) {
    const fraction = Math.min(1, Math.max(0, done / total));
    const width = state.barWidth ?? 24;
    const filled = Math.floor(fraction * width);
    parts.push(
      `${String(Math.floor(fraction * 100)).padStart(3)}%`,
      `[${"#".repeat(filled)}${"-".repeat(width - filled)}]`,
      `${String(done).padStart(String(total).length)}/${total}`,
    );
  } else parts.push(String(done));
  parts.push(formatRate(rate));
  if (finished) parts.push(`in ${formatDuration(elapsed)}`);
  else if (total > 0) {
    parts.push(`ETA ${rate > 0 ? formatDuration((total - done) / rate) : "--:--:--"}`);
  } else parts.push(`elapsed ${formatDuration(elapsed)}`);
  const f = formatFields(fields);
  if (f) parts.push(f);
  return parts.join("  ");
};

/** Where progress goes (stderr by default; tests pass their own). */
export interface ProgressSink {
  /** Writes text as is. */
  write(text: string): void;
  /** Whether the sink is a terminal (then the line is redrawn in place). */
  isTerminal(): boolean;
  /** Terminal width, to cut the line (redrawn lines must not wrap). */
  columns?(): number;
}

/** Options of `progress`. */
export interface ProgressOptions {
  /** Total count; 0 or less when unknown. */
  readonly total: number;
  /** Shown first in the line. */
  readonly label?: string;
  /** Not a terminal: print a line at least this often (default 10 000 ms)… */
  readonly intervalMs?: number;
  /** …and every this many steps, if given. */
  readonly everySteps?: number;
  /** Terminal: redraw at most this often (default 100 ms). */
  readonly redrawMs?: number;
  /** Bar width in characters (default 24). */
  readonly barWidth?: number;
  /** The count already done at the start (a resumed run). */
  readonly startDone?: number;
  /** Where the lines go (default: stderr). */
  readonly sink?: ProgressSink;
  /** The clock in milliseconds (default `Date.now`). */
  readonly now?: () => number;
}

/** A running progress display. */
export interface Progress {
  /** Sets the count done and the fields shown (numbers formatted compactly). */
  update(done: number, fields?: Readonly<Record<string, number | string>>): void;
  /** Prints the final line (and a line break on a terminal). Later calls do nothing. */
  done(fields?: Readonly<Record<string, number | string>>): void;
}

const encoder = new TextEncoder();

/** Standard error, written synchronously. */
export const stderrSink: ProgressSink = {
  write: (text) => {
    const bytes = encoder.encode(text);
    for (let n = 0; n < bytes.length;) n += Deno.stderr.writeSync(bytes.subarray(n));
  },
  isTerminal: () => Deno.stderr.isTerminal(),
  columns: () => {
    try {
      return Deno.consoleSize().columns;
    } catch {
      return 120;
    }
  },
};

/** Starts a progress display (see the module doc for when it prints). */
export const progress = (options: ProgressOptions): Progress => {
  const sink = options.sink ?? stderrSink;
  const now = options.now ?? Date.now;
  const tty = sink.isTerminal();
  const startTime = now();
  let state: ProgressState = {
    label: options.label ?? "",
    total: options.total,
    done: options.startDone ?? 0,
    startTime,
    startDone: options.startDone ?? 0,
    fields: {},
    barWidth: options.barWidth,
  };
  let lastTime = startTime, lastDone = state.done, finished = false;
  const draw = (t: number, final: boolean): void => {
    const line = formatProgress(state, t);
    if (tty) {
      const width = Math.max(20, (sink.columns?.() ?? 120) - 1);
      sink.write(`\r${line.slice(0, width)}\x1b[K${final ? "\n" : ""}`);
    } else sink.write(`${line}\n`);
    lastTime = t;
    lastDone = state.done;
  };
  return {
    update: (done, fields = state.fields) => {
      if (finished) return;
      state = { ...state, done, fields };
      const t = now();
      const due = tty
        ? t - lastTime >= (options.redrawMs ?? 100)
        : t - lastTime >= (options.intervalMs ?? 10_000) ||
          (options.everySteps !== undefined && done - lastDone >= options.everySteps);
      if (due) draw(t, false);
    },
    done: (fields = state.fields) => {
      if (finished) return;
      finished = true;
      state = { ...state, fields };
      draw(now(), true);
    },
  };
};
