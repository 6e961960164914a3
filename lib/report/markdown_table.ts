/**
 * Markdown (GitHub-flavoured) tables for reports: cells escaped (`|` → `\|`, line breaks →
 * `<br>`), columns padded so the source reads as a table too, and per-column alignment. Numbers are
 * formatted with `formatSig` unless given as strings (see `format.ts` for the other helpers).
 * @module
 */
import { formatSig } from "./format.ts";

/** Column alignment. */
export type Align = "left" | "right" | "center";

/** A cell: text, a number (4 significant digits), or empty for null/undefined. */
export type Cell = string | number | null | undefined;

/** Escapes one cell's text for a table. */
export const escapeCell = (text: string): string =>
  text.replace(/\\(?=\|)/g, "\\\\").replaceAll("|", "\\|").replace(/\r?\n/g, "<br>");

const cellText = (c: Cell): string =>
  c === null || c === undefined ? "" : typeof c === "number" ? formatSig(c) : escapeCell(c);

const rule = (align: Align | undefined, width: number): string => {
  const w = Math.max(3, width);
  if (align === "right") return `${"-".repeat(w - 1)}:`;
  if (align === "center") return `:${"-".repeat(w - 2)}:`;
  return align === "left" ? `:${"-".repeat(w - 1)}` : "-".repeat(w);
};

const pad = (s: string, width: number, align: Align | undefined): string => {
  const gap = Math.max(0, width - [...s].length);
  if (align === "right") return " ".repeat(gap) + s;
  if (align === "center") {
    return " ".repeat(Math.floor(gap / 2)) + s + " ".repeat(gap - Math.floor(gap / 2));
  }
  return s + " ".repeat(gap);
};

/**
 * A Markdown table.
 *
 * @param headers the column names.
 * @param rows one array of cells per row, each as long as `headers`.
 * @param align per-column alignment (default: none, which renders left-aligned).
 * @throws RangeError when a row or `align` does not have one entry per column.
 */
export const markdownTable = (
  headers: readonly string[],
  rows: readonly (readonly Cell[])[],
  align: readonly (Align | undefined)[] = [],
): string => {
  if (headers.length === 0) throw new RangeError("markdownTable: expected at least one column");
  if (align.length > headers.length) {
    throw new RangeError(
      `markdownTable: ${align.length} alignments for ${headers.length} columns`,
    );
  }
  rows.forEach((r, i) => {
    if (r.length !== headers.length) {
      throw new RangeError(
        `markdownTable: row ${i} has ${r.length} cells, expected ${headers.length}`,
      );
    }
  });
  const head = headers.map(escapeCell);
  const body = rows.map((r) => r.map(cellText));
  const widths = head.map((h, j) =>
    Math.max(3, [...h].length, ...body.map((r) => [...r[j]].length))
  );
  const line = (cells: string[]) =>
    `| ${cells.map((c, j) => pad(c, widths[j], align[j])).join(" | ")} |`;
  return [
    line(head),
    `| ${widths.map((w, j) => rule(align[j], w)).join(" | ")} |`,
    ...body.map(line),
  ].join("\n") + "\n";
};
