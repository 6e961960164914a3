/**
 * SVG line plots for training curves (loss or accuracy against steps or seconds), as plain strings:
 * no DOM, no dependencies, viewable in any browser and convertible with `rsvg-convert`.
 *
 * `linePlot` draws axes with "nice" ticks (steps of 1, 2 or 5 × 10^k; decades on a log axis), grid
 * lines, tick labels, axis labels, a title and a legend to the right of the plot area, one `<path>`
 * per series (`data-series` names it) in the Okabe–Ito colour-blind-safe palette (dashed after the
 * eighth series). Points with a non-finite coordinate (or y ≤ 0 on a log axis) are skipped and
 * break the line; a lone point shows as a dot. `plotGrid` lays several plots out in columns in one
 * SVG.
 * @module
 */

/** One curve. */
export interface Series {
  /** The legend entry. */
  readonly name: string;
  /** The curve's (x, y) points, in drawing order. */
  readonly points: readonly (readonly [number, number])[];
  /** Overrides the palette colour. */
  readonly color?: string;
}

/** What `linePlot` draws. */
export interface LinePlotOptions {
  /** A title above the plot. */
  readonly title?: string;
  /** The x axis's label. */
  readonly xLabel: string;
  /** The y axis's label. */
  readonly yLabel: string;
  /** The curves. */
  readonly series: readonly Series[];
  /** Logarithmic y axis (for losses); non-positive values are skipped. */
  readonly logY?: boolean;
  /** Width in pixels (default 640). */
  readonly width?: number;
  /** Height in pixels (default 400). */
  readonly height?: number;
  /** A fixed x range instead of the data's (lines outside are clipped). */
  readonly xDomain?: readonly [number, number];
  /** A fixed y range instead of the data's (lines outside are clipped). */
  readonly yDomain?: readonly [number, number];
}

/** Okabe & Ito's palette (minus yellow, which is hard to see on white), in drawing order. */
export const PALETTE = [
  "#0072B2",
  "#D55E00",
  "#009E73",
  "#CC79A7",
  "#E69F00",
  "#56B4E9",
  "#000000",
] as const;
const DASHES = ["", "6 3", "2 3", "8 3 2 3"];

/** Escapes text for XML content and attribute values. */
export const escapeXml = (s: string): string =>
  s.replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;" })[c]!,
  );

const round = (v: number): number => Math.round(v * 100) / 100;
const clean = (v: number): number => Number(v.toPrecision(12));

/**
 * About `count` evenly spaced round values (step 1, 2 or 5 × 10^k) whose first is ≤ lo and whose
 * last is ≥ hi. A zero-width range is widened first.
 */
export const niceTicks = (lo: number, hi: number, count = 6): number[] => {
  if (!(Number.isFinite(lo) && Number.isFinite(hi))) throw new RangeError("niceTicks: non-finite");
  if (hi < lo) [lo, hi] = [hi, lo];
  if (hi === lo) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  const raw = (hi - lo) / Math.max(1, count - 1);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  const step = (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * mag;
  const first = Math.floor(clean(lo / step)), last = Math.ceil(clean(hi / step));
  return Array.from({ length: last - first + 1 }, (_, i) => clean((first + i) * step));
};

/**
 * Ticks for a log axis over [lo, hi] (lo > 0): powers of ten when the range spans 2.5 decades or
 * more (every k-th decade to stay under ~9 ticks); otherwise 1, 2, 5 × 10^k, or every integer
 * multiple of 10^k when that gives fewer than four ticks. The first tick is ≤ lo, the last ≥ hi.
 */
export const logTicks = (lo: number, hi: number): number[] => {
  if (!(lo > 0 && hi > 0 && Number.isFinite(lo) && Number.isFinite(hi))) {
    throw new RangeError(`logTicks: expected a positive finite range, got [${lo}, ${hi}]`);
  }
  if (hi < lo) [lo, hi] = [hi, lo];
  if (hi === lo) [lo, hi] = [lo / 2, hi * 2];
  const dLo = Math.floor(Math.log10(lo) + 1e-9), dHi = Math.ceil(Math.log10(hi) - 1e-9);
  if (Math.log10(hi / lo) >= 2.5) {
    const every = Math.ceil((dHi - dLo) / 8);
    const start = Math.floor(dLo / every) * every;
    const out: number[] = [];
    for (let d = start; d < dHi + every; d += every) out.push(clean(10 ** d));
    return out;
  }
  const within = (mantissas: readonly number[]): number[] => {
    const all: number[] = [];
    for (let d = dLo - 1; d <= dHi; d++) for (const m of mantissas) all.push(clean(m * 10 ** d));
    const first = all.findLastIndex((v) => v <= lo * (1 + 1e-9));
    const last = all.findIndex((v) => v >= hi * (1 - 1e-9));
    return all.slice(Math.max(0, first), last + 1);
  };
  const coarse = within([1, 2, 5]);
  return coarse.length >= 4 ? coarse : within([1, 2, 3, 4, 5, 6, 7, 8, 9]);
};

/** A tick label: plain for 1e-3 ≤ |v| < 1e6 (and 0), exponent notation otherwise ("1e-4"). */
export const formatTick = (v: number): string => {
  const a = Math.abs(v);
  if (v === 0 || (a >= 1e-3 && a < 1e6)) return String(clean(v));
  return v.toExponential().replace("e+", "e").replace(/\.?0+e/, "e");
};

interface Axis {
  readonly ticks: number[];
  readonly lo: number;
  readonly hi: number;
  readonly log: boolean;
}

const makeAxis = (values: number[], log: boolean, domain?: readonly [number, number]): Axis => {
  if (domain) {
    const [lo, hi] = domain;
    const ticks = (log ? logTicks(lo, hi) : niceTicks(lo, hi)).filter((v) =>
      v >= Math.min(lo, hi) * (1 - 1e-9) && v <= Math.max(lo, hi) * (1 + 1e-9)
    );
    return { ticks, lo: Math.min(lo, hi), hi: Math.max(lo, hi), log };
  }
  const lo = values.length ? Math.min(...values) : log ? 0.1 : 0;
  const hi = values.length ? Math.max(...values) : log ? 1 : 1;
  const ticks = log ? logTicks(lo, hi) : niceTicks(lo, hi);
  return { ticks, lo: ticks[0], hi: ticks[ticks.length - 1], log };
};

/** Position in [0, 1] of v on the axis. */
const along = (a: Axis, v: number): number =>
  a.log
    ? (Math.log10(v) - Math.log10(a.lo)) / (Math.log10(a.hi) - Math.log10(a.lo))
    : (v - a.lo) / (a.hi - a.lo);

const CHAR_WIDTH = 6.6; // average width of a 11–12 px sans-serif character, for layout

/** Whether a point can be drawn. */
const drawable = (x: number, y: number, logY: boolean): boolean =>
  Number.isFinite(x) && Number.isFinite(y) && (!logY || y > 0);

/** Stable id prefix from the plot's text, so several plots can share one document. */
const idFor = (o: LinePlotOptions): string => {
  let h = 0x811c9dc5;
  for (const c of `${o.title}|${o.xLabel}|${o.yLabel}|${o.series.map((s) => s.name).join("|")}`) {
    h = Math.imul(h ^ c.charCodeAt(0), 0x01000193);
  }
  return `plot-${(h >>> 0).toString(36)}`;
};

/** The plot's elements (no `<svg>` wrapper), drawn in a width × height box at the origin. */
const plotBody = (o: LinePlotOptions, width: number, height: number, id: string): string => {
  const logY = o.logY ?? false;
  const series = o.series.map((s) => ({
    ...s,
    points: s.points.filter(([x, y]) => drawable(x, y, logY)),
  }));
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1]));
  const xAxis = makeAxis(xs, false, o.xDomain);
  const yAxis = makeAxis(ys, logY, o.yDomain);
  const yLabels = yAxis.ticks.map(formatTick);
  const legendWidth = o.series.length
    ? 40 + Math.max(...o.series.map((s) => s.name.length)) * CHAR_WIDTH
    : 0;
  const left = 30 + Math.max(...yLabels.map((l) => l.length), 1) * CHAR_WIDTH + 8;
  const right = legendWidth ? legendWidth + 16 : 20;
  const top = o.title ? 36 : 16, bottom = 52;
  const w = Math.max(40, width - left - right), h = Math.max(40, height - top - bottom);
  const px = (x: number) => round(left + along(xAxis, x) * w);
  const py = (y: number) => round(top + h - along(yAxis, y) * h);
  const out: string[] = [];

  out.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`);
  if (o.title) {
    out.push(
      `<text class="title" x="${round(left + w / 2)}" y="22" text-anchor="middle" ` +
        `font-size="14" font-weight="bold">${escapeXml(o.title)}</text>`,
    );
  }
  out.push(
    `<defs><clipPath id="${id}-clip"><rect x="${left}" y="${top}" width="${round(w)}" ` +
      `height="${round(h)}"/></clipPath></defs>`,
  );
  // Grid and ticks.
  const grid: string[] = [], labels: string[] = [];
  for (const v of xAxis.ticks) {
    const x = px(v);
    grid.push(`<line x1="${x}" y1="${top}" x2="${x}" y2="${round(top + h)}"/>`);
    labels.push(
      `<text class="tick x-tick" data-value="${v}" x="${x}" y="${round(top + h + 16)}" ` +
        `text-anchor="middle">${escapeXml(formatTick(v))}</text>`,
    );
  }
  yAxis.ticks.forEach((v, i) => {
    const y = py(v);
    grid.push(`<line x1="${left}" y1="${y}" x2="${round(left + w)}" y2="${y}"/>`);
    labels.push(
      `<text class="tick y-tick" data-value="${v}" x="${round(left - 6)}" y="${round(y + 4)}" ` +
        `text-anchor="end">${escapeXml(yLabels[i])}</text>`,
    );
  });
  out.push(`<g class="grid" stroke="#e3e3e3" stroke-width="1">${grid.join("")}</g>`);
  out.push(
    `<rect class="frame" x="${left}" y="${top}" width="${round(w)}" height="${round(h)}" ` +
      `fill="none" stroke="#555555" stroke-width="1"/>`,
  );
  out.push(`<g class="ticks" font-size="11" fill="#333333">${labels.join("")}</g>`);
  // Axis labels.
  out.push(
    `<text class="x-label" x="${round(left + w / 2)}" y="${round(top + h + 40)}" ` +
      `text-anchor="middle" font-size="12">${escapeXml(o.xLabel)}</text>`,
  );
  const yMid = round(top + h / 2);
  out.push(
    `<text class="y-label" x="16" y="${yMid}" transform="rotate(-90 16 ${yMid})" ` +
      `text-anchor="middle" font-size="12">${escapeXml(o.yLabel)}${logY ? " (log)" : ""}</text>`,
  );
  // Series.
  const style = (i: number, s: Series) => {
    const color = s.color ?? PALETTE[i % PALETTE.length];
    const dash = DASHES[Math.floor(i / PALETTE.length) % DASHES.length];
    return { color, dash: dash ? ` stroke-dasharray="${dash}"` : "" };
  };
  const paths = o.series.map((s, i) => {
    const { color, dash } = style(i, s);
    return `<path class="series" data-series="${escapeXml(s.name)}" d="${
      pathData(s.points, px, py, logY)
    }" fill="none" stroke="${color}" stroke-width="1.75" stroke-linejoin="round" ` +
      `stroke-linecap="round"${dash}/>`;
  });
  out.push(`<g clip-path="url(#${id}-clip)">${paths.join("")}</g>`);
  if (xs.length === 0) {
    out.push(
      `<text class="no-data" x="${round(left + w / 2)}" y="${yMid}" text-anchor="middle" ` +
        `font-size="12" fill="#777777">no data</text>`,
    );
  }
  // Legend.
  if (o.series.length) {
    const lx = round(left + w + 16);
    const entries = o.series.map((s, i) => {
      const { color, dash } = style(i, s);
      const y = top + 8 + i * 18;
      return `<g class="legend-entry"><line x1="${lx}" y1="${y}" x2="${lx + 22}" y2="${y}" ` +
        `stroke="${color}" stroke-width="2.5"${dash}/><text x="${lx + 28}" y="${y + 4}" ` +
        `font-size="11">${escapeXml(s.name)}</text></g>`;
    });
    out.push(`<g class="legend">${entries.join("")}</g>`);
  }
  return out.join("\n");
};

/** SVG path data for the drawable points, a new subpath after each skipped point. */
const pathData = (
  points: readonly (readonly [number, number])[],
  px: (x: number) => number,
  py: (y: number) => number,
  logY: boolean,
): string => {
  const parts: string[] = [];
  let run = 0;
  for (const [x, y] of points) {
    if (!drawable(x, y, logY)) {
      if (run === 1) parts.push("h0"); // a lone point: a dot (round caps)
      run = 0;
      continue;
    }
    parts.push(`${run === 0 ? "M" : "L"}${px(x)} ${py(y)}`);
    run++;
  }
  if (run === 1) parts.push("h0");
  return parts.join(" ");
};

const svgOpen = (width: number, height: number): string =>
  `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" ` +
  `viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">`;

const checkSize = (width: number, height: number): void => {
  if (!(width > 0 && height > 0 && Number.isFinite(width) && Number.isFinite(height))) {
    throw new RangeError(`plot size must be positive and finite, got ${width} × ${height}`);
  }
};

/** One line plot as a standalone SVG document. */
export const linePlot = (options: LinePlotOptions): string => {
  const width = options.width ?? 640, height = options.height ?? 400;
  checkSize(width, height);
  return `${svgOpen(width, height)}\n${plotBody(options, width, height, idFor(options))}\n</svg>\n`;
};

/**
 * Several plots in one SVG, `columns` per row, each in a cell as large as the largest plot.
 *
 * @param title an optional heading above the grid.
 */
export const plotGrid = (
  plots: readonly LinePlotOptions[],
  columns = 2,
  title?: string,
): string => {
  if (!(Number.isInteger(columns) && columns >= 1)) {
    throw new RangeError(`plotGrid: columns must be a positive integer, got ${columns}`);
  }
  const cellW = Math.max(...plots.map((p) => p.width ?? 640), 1);
  const cellH = Math.max(...plots.map((p) => p.height ?? 400), 1);
  const head = title ? 36 : 0;
  const cols = Math.min(columns, Math.max(1, plots.length));
  const rows = Math.max(1, Math.ceil(plots.length / columns));
  const width = cols * cellW, height = head + rows * cellH;
  const cells = plots.map((p, i) => {
    const x = (i % columns) * cellW, y = head + Math.floor(i / columns) * cellH;
    const body = plotBody(p, p.width ?? 640, p.height ?? 400, `${idFor(p)}-${i}`);
    return `<g class="cell" transform="translate(${x} ${y})">\n${body}\n</g>`;
  });
  const heading = title
    ? `<rect x="0" y="0" width="${width}" height="${head}" fill="#ffffff"/>` +
      `<text class="grid-title" x="${width / 2}" y="24" text-anchor="middle" font-size="16" ` +
      `font-weight="bold">${escapeXml(title)}</text>\n`
    : "";
  return `${svgOpen(width, height)}\n${heading}${cells.join("\n")}\n</svg>\n`;
};
