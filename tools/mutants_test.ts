/**
 * CI runs only `deno task mutants --quick`; this keeps the other mutants usable: each one's
 * snippet must still stand exactly once in its file, or the full run stops before mutating
 * anything (a refactor of a pinned formula must move its mutant along).
 * @module
 */
import { MUTANTS, occurrences } from "./mutants.ts";

const root = new URL("../", import.meta.url);

Deno.test("mutants: every snippet occurs exactly once in its file, and its mutation differs", async () => {
  const stale: string[] = [];
  for (const m of MUTANTS) {
    const n = occurrences(await Deno.readTextFile(new URL(m.file, root)), m.from);
    if (n !== 1) stale.push(`${m.id}: ${n} occurrences in ${m.file}`);
    if (m.from === m.to) stale.push(`${m.id}: 'to' equals 'from'`);
  }
  if (stale.length) throw new Error(`stale mutants (tools/mutants.ts): ${stale.join("; ")}`);
});
