/**
 * Number formatting for reports, tables and progress lines: significant digits, compact numbers,
 * durations (ms, h:mm:ss) and percentages. Non-finite values print as "NaN", "Inf" and "-Inf".
 * @module
 */

const nonFinite = (x: number): string => (Number.isNaN(x) ? "NaN" : x > 0 ? "Inf" : "-Inf");

/**
 * `x` with `digits` significant digits, in fixed notation for 1e-3 ≤ |x| < 1e6 (never rounding
 * away integer digits: 12345.6 → "12346") and in exponent notation outside it ("1.23e-4").
 * Trailing zeros are kept so columns line up ("1.500").
 */
export const formatSig = (x: number, digits = 4): string => {
  if (!Number.isFinite(x)) return nonFinite(x);
  if (!(Number.isInteger(digits) && digits >= 1 && digits <= 21)) {
    throw new RangeError(`formatSig: digits must be an integer in [1, 21], got ${digits}`);
  }
  if (x === 0) return (0).toFixed(digits - 1);
  const a = Math.abs(x);
  if (a < 1e-3 || a >= 1e6) return x.toExponential(digits - 1).replace("e+", "e");
  const magnitude = Math.floor(Math.log10(a));
  const fixed = x.toFixed(Math.max(0, digits - 1 - magnitude));
  // Rounding can carry into a new digit (9.9996 → "10.000"): drop the extra decimal then.
  const carried = Math.abs(Number(fixed)) >= 10 ** (magnitude + 1);
  return carried ? x.toFixed(Math.max(0, digits - 2 - magnitude)) : fixed;
};

/** Removes trailing zeros after a decimal point ("1.500" → "1.5", "2.000e-4" → "2e-4"). */
const trimZeros = (s: string): string =>
  s.replace(/(\.\d*?)0+(?=$|e)/, "$1").replace(/\.(?=$|e)/, "");

/**
 * A short form for logs and progress lines: integers below 1e6 as they are ("4096"), other numbers
 * with `digits` significant digits and no trailing zeros ("0.1235", "1.5", "3.2e-5", "1.2e7").
 */
export const formatCompact = (x: number, digits = 4): string => {
  if (!Number.isFinite(x)) return nonFinite(x);
  if (Number.isInteger(x) && Math.abs(x) < 1e6) return String(x);
  return trimZeros(formatSig(x, digits));
};

/** A duration in milliseconds with a fitting unit: "850 µs", "12.3 ms", "4.56 s", "1:02:03". */
export const formatMs = (ms: number): string => {
  if (!Number.isFinite(ms)) return nonFinite(ms);
  const a = Math.abs(ms);
  if (a < 1) return `${trimZeros(formatSig(ms * 1000, 3))} µs`;
  if (a < 1000) return `${trimZeros(formatSig(ms, 3))} ms`;
  if (a < 60_000) return `${trimZeros(formatSig(ms / 1000, 3))} s`;
  return formatDuration(ms / 1000);
};

/** Seconds as h:mm:ss ("0:00:07", "12:34:56"), rounded to whole seconds. */
export const formatDuration = (seconds: number): string => {
  if (!Number.isFinite(seconds)) return "--:--:--";
  const s = Math.round(Math.abs(seconds));
  const hms = `${Math.floor(s / 3600)}:${String(Math.floor(s / 60) % 60).padStart(2, "0")}:${
    String(s % 60).padStart(2, "0")
  }`;
  return seconds < 0 && s > 0 ? `-${hms}` : hms;
};

/** A fraction as a percentage with `decimals` decimals: 0.9123 → "91.2%". */
export const formatPercent = (fraction: number, decimals = 1): string =>
  Number.isFinite(fraction) ? `${(fraction * 100).toFixed(decimals)}%` : nonFinite(fraction);
