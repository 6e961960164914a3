/**
 * The fields in which two settings records (JSON values) differ, for the one-line error of a
 * resume under other settings: nested objects are compared field by field, so a changed learning
 * rate reads `settings.lr: checkpoint 0.01, now 0.5`, not two whole records.
 * @module
 */

const isRecord = (u: unknown): u is Record<string, unknown> =>
  typeof u === "object" && u !== null && !Array.isArray(u);

/**
 * `path: <was> <old>, now <new>` for each leaf field that differs between `old` and `now` (dotted
 * paths into nested objects; arrays and other values compared whole, as JSON); `was` names where
 * `old` comes from (default `checkpoint`).
 */
export const differences = (
  old: unknown,
  now: unknown,
  path = "",
  was = "checkpoint",
): string[] => {
  if (isRecord(old) && isRecord(now)) {
    return [...new Set([...Object.keys(old), ...Object.keys(now)])].flatMap((k) =>
      differences(old[k], now[k], path ? `${path}.${k}` : k, was)
    );
  }
  const a = JSON.stringify(old) ?? "(absent)", b = JSON.stringify(now) ?? "(absent)";
  return a === b ? [] : [`${path || "(value)"}: ${was} ${a}, now ${b}`];
};
