/**
 * Run logs: a JSONL logger (one JSON object per line) and a CSV writer, each appending one record
 * per `log` call with a single write to the file (nothing is buffered in the process).
 *
 * Both are resumable. Opening an existing file appends to it; a partial last line (a crash in the
 * middle of a write) is dropped first; with `truncateAfterStep: N` the file is cut before the first
 * record whose step is greater than N, so a run resumed from the checkpoint of step N does not log
 * steps twice. Such rewrites are atomic. `overwrite: true` starts a new file instead.
 *
 * JSONL writes NaN and ±Infinity as the strings "NaN", "Infinity" and "-Infinity" (JSON has no
 * such numbers); `readJsonl` turns them back into numbers. The CSV header comes from the first
 * record's keys in order; a record with a key not seen before adds a column at the end (the file
 * is rewritten once with the wider header); missing values are empty cells; cells are quoted as
 * RFC 4180 says.
 * @module
 */
import { tf } from "../_deps.ts";
import { writeFileAtomic, writeFileAtomicSync } from "./atomic.ts";

/** One log record: a flat object of numbers, strings, booleans (JSONL also takes nested JSON). */
export type LogRecord = Readonly<Record<string, unknown>>;

/** Options shared by `openJsonl` and `openCsv`. */
export interface OpenLogOptions {
  /** Start a new, empty file even if one exists (default: append to it). */
  readonly overwrite?: boolean;
  /** When resuming from step N: drop the records from the first one whose step exceeds N. */
  readonly truncateAfterStep?: number;
  /** The record field holding the step (default "step"). */
  readonly stepKey?: string;
}

/** An open log file. */
export interface RecordLogger {
  /** The log file's path. */
  readonly path: string;
  /** Appends one record (written to the file before this returns). */
  log(record: LogRecord): void;
  /** Closes the file. */
  close(): void;
}

const encoder = new TextEncoder();

const readTextIfExists = async (path: string): Promise<string | null> => {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
};

const openForAppend = (path: string): Deno.FsFile =>
  Deno.openSync(path, { write: true, append: true, create: true });

const writeAllSync = (file: Deno.FsFile, text: string): void => {
  const bytes = encoder.encode(text);
  for (let done = 0; done < bytes.length;) done += file.writeSync(bytes.subarray(done));
};

/** Index of the first record whose step exceeds `limit` (records without a step never do). */
const firstAfter = <R>(records: readonly R[], stepOf: (r: R) => number, limit?: number): number => {
  if (limit === undefined) return records.length;
  const i = records.findIndex((r) => stepOf(r) > limit);
  return i < 0 ? records.length : i;
};

const checkRecord = (record: LogRecord, where: string): void => {
  if (record === null || typeof record !== "object" || Array.isArray(record)) {
    throw new TypeError(`${where}: a record must be an object, got ${JSON.stringify(record)}`);
  }
};

// ---------------------------------------------------------------------------------------------
// JSONL

const jsonReplacer = (key: string, value: unknown): unknown => {
  if (typeof value === "number" && !Number.isFinite(value)) return String(value);
  if (value instanceof tf.Tensor) {
    throw new TypeError(`log record field "${key}" is a tensor; log a number (await x.data())`);
  }
  if (typeof value === "bigint") return Number(value);
  return value;
};

const reviveNonFinite = (_key: string, value: unknown): unknown =>
  value === "NaN"
    ? NaN
    : value === "Infinity"
    ? Infinity
    : value === "-Infinity"
    ? -Infinity
    : value;

/** One record as its JSONL line (with the newline). */
export const jsonlLine = (record: LogRecord): string => `${JSON.stringify(record, jsonReplacer)}\n`;

/** The complete lines of a JSONL text (a last line without its newline is partial: dropped). */
const completeLines = (text: string): string[] => {
  const lines = text.split("\n");
  lines.pop(); // "" after a final newline, or a partial line
  return lines;
};

const parseJsonLines = (text: string, path: string): LogRecord[] =>
  completeLines(text).flatMap((line, i) => {
    if (line.trim() === "") return [];
    try {
      return [JSON.parse(line, reviveNonFinite) as LogRecord];
    } catch (e) {
      throw new SyntaxError(`${path}: line ${i + 1}: not valid JSON: ${(e as Error).message}`);
    }
  });

/** Reads the complete records of a JSONL file (a partial last line is ignored). */
export const readJsonl = async (path: string): Promise<LogRecord[]> =>
  parseJsonLines(await Deno.readTextFile(path), path);

const stepOfRecord = (stepKey: string) => (r: LogRecord): number =>
  typeof r[stepKey] === "number" ? r[stepKey] as number : -Infinity;

/** Opens (creating, resuming or overwriting) a JSONL log. */
export const openJsonl = async (
  path: string,
  { overwrite = false, truncateAfterStep, stepKey = "step" }: OpenLogOptions = {},
): Promise<RecordLogger> => {
  const text = overwrite ? "" : await readTextIfExists(path);
  if (text !== null) {
    const lines = completeLines(text);
    const records = lines.map((line, i) => {
      if (truncateAfterStep === undefined || line.trim() === "") return {};
      try {
        return JSON.parse(line) as LogRecord;
      } catch (e) {
        throw new SyntaxError(`${path}: line ${i + 1}: not valid JSON: ${(e as Error).message}`);
      }
    });
    const kept = lines.slice(0, firstAfter(records, stepOfRecord(stepKey), truncateAfterStep));
    const next = kept.map((l) => `${l}\n`).join("");
    if (overwrite || next !== text) await writeFileAtomic(path, next);
  }
  const file = openForAppend(path);
  return {
    path,
    log: (record) => {
      checkRecord(record, path);
      writeAllSync(file, jsonlLine(record));
    },
    close: () => file.close(),
  };
};

// ---------------------------------------------------------------------------------------------
// CSV

/** A value as CSV cell text (before quoting): empty for null/undefined, JSON for objects. */
export const csvCell = (value: unknown, key = "value"): string => {
  if (value === null || value === undefined) return "";
  if (value instanceof tf.Tensor) {
    throw new TypeError(`log record field "${key}" is a tensor; log a number (await x.data())`);
  }
  if (typeof value === "object") return JSON.stringify(value, jsonReplacer);
  return String(value);
};

/** Quotes a cell when it holds a comma, a quote, a line break or outer spaces (RFC 4180). */
export const escapeCsv = (cell: string): string =>
  /[",\r\n]/.test(cell) || cell !== cell.trim() ? `"${cell.replaceAll('"', '""')}"` : cell;

/** One CSV line (with the newline). */
export const csvLine = (cells: readonly string[]): string => `${cells.map(escapeCsv).join(",")}\n`;

/**
 * Parses CSV text (RFC 4180: quoted cells may hold commas, quotes and line breaks; LF or CRLF).
 * `complete` is false when the text ends inside a row (no final line break): that last row is
 * then partial.
 */
export const parseCsv = (text: string): { rows: string[][]; complete: boolean } => {
  const rows: string[][] = [];
  let row: string[] = [], cell = "", quoted = false, started = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c !== '"') cell += c;
      else if (text[i + 1] === '"') cell += text[i++];
      else quoted = false;
    } else if (c === '"') {
      quoted = started = true;
    } else if (c === ",") {
      row.push(cell);
      cell = "";
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      row.push(cell);
      rows.push(row);
      row = [];
      cell = "";
      started = false;
      continue;
    } else cell += c;
    started = true;
  }
  const complete = !started && row.length === 0 && cell === "";
  if (!complete) rows.push([...row, cell]);
  return { rows, complete };
};

/** Reads a CSV file's header and complete rows (a partial last row is ignored). */
export const readCsv = async (
  path: string,
): Promise<{ columns: string[]; rows: Record<string, string>[] }> => {
  const { rows, complete } = parseCsv(await Deno.readTextFile(path));
  if (!complete) rows.pop();
  const [columns = [], ...data] = rows;
  return {
    columns,
    rows: data.map((r) => Object.fromEntries(columns.map((c, i) => [c, r[i] ?? ""]))),
  };
};

const csvText = (columns: readonly string[], rows: readonly string[][]): string =>
  columns.length
    ? csvLine(columns) +
      rows.map((r) => csvLine(columns.map((_, i) => r[i] ?? ""))).join("")
    : "";

/** Opens (creating, resuming or overwriting) a CSV log. */
export const openCsv = async (
  path: string,
  { overwrite = false, truncateAfterStep, stepKey = "step" }: OpenLogOptions = {},
): Promise<RecordLogger> => {
  let columns: string[] = [];
  const text = overwrite ? "" : await readTextIfExists(path);
  if (text !== null) {
    const { rows, complete } = parseCsv(text);
    if (!complete) rows.pop();
    const [header = [], ...data] = rows;
    const stepColumn = header.indexOf(stepKey);
    if (truncateAfterStep !== undefined && data.length && stepColumn < 0) {
      throw new RangeError(
        `${path}: cannot truncate after step ${truncateAfterStep}: no "${stepKey}" column`,
      );
    }
    const stepOf = (r: string[]) =>
      r[stepColumn] === undefined || r[stepColumn] === "" ? -Infinity : Number(r[stepColumn]);
    const kept = data.slice(0, firstAfter(data, stepOf, truncateAfterStep));
    columns = header;
    const next = csvText(columns, kept);
    if (overwrite || next !== text) await writeFileAtomic(path, next);
  }
  let file = openForAppend(path);
  const widen = (added: readonly string[]): void => {
    const { rows } = parseCsv(Deno.readTextFileSync(path));
    columns = [...columns, ...added];
    file.close();
    writeFileAtomicSync(path, csvText(columns, rows.slice(1)));
    file = openForAppend(path);
  };
  return {
    path,
    log: (record) => {
      checkRecord(record, path);
      const keys = Object.keys(record);
      const cells = keys.map((k) => csvCell(record[k], k)); // validates before any write
      if (columns.length === 0) {
        if (keys.length === 0) return; // nothing to write, and no header to take from it
        columns = keys;
        writeAllSync(file, csvLine(columns));
      } else {
        const added = keys.filter((k) => !columns.includes(k));
        if (added.length) widen(added);
      }
      const byKey = new Map(keys.map((k, i) => [k, cells[i]]));
      writeAllSync(file, csvLine(columns.map((c) => byKey.get(c) ?? "")));
    },
    close: () => file.close(),
  };
};
