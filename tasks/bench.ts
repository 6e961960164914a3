/**
 * `deno task bench`: timing rows on the chosen backend, printed as a table; `--json FILE` also
 * writes them as a JSON array of `{ name, backend, medianMs, minMs, maxMs, runs }`.
 * Suites live in `tasks/bench/*.ts` and are listed in `SUITES`.
 * @module
 */
import { backendFlag, runCli } from "./_cli.ts";
import { flag, NonNegativeIntFlag, PositiveIntFlag, StringFlag } from "../lib/cli/flags.ts";
import { type BenchRow, type BenchSuite, formatTable } from "../lib/bench/harness.ts";
import { SUITES } from "./bench/suites.ts";

export const SPECS = {
  backend: backendFlag,
  runs: flag(PositiveIntFlag, 5, "timed runs per row"),
  warmup: flag(NonNegativeIntFlag, 1, "untimed warm-up runs per row"),
  filter: flag(StringFlag, "*", "run only rows whose name contains this text ('*' = all)"),
  json: flag(StringFlag, "-", "also write the rows as JSON to this file ('-' = don't)"),
};

if (import.meta.main) {
  await runCli("bench", "Times gradients, G·v products, CG solves and steps.", SPECS, async (c) => {
    const rows: BenchRow[] = [];
    const opts = {
      runs: c.runs,
      warmup: c.warmup,
      filter: c.filter === "*" ? "" : c.filter,
    };
    for (const suite of SUITES as readonly BenchSuite[]) {
      const got = await suite.run(opts);
      rows.push(...got);
      for (const r of got) console.error(`  ${r.name}: ${r.medianMs.toFixed(2)} ms`);
    }
    console.log(formatTable(rows));
    if (c.json !== "-") {
      await Deno.writeTextFile(c.json, JSON.stringify(rows, null, 2) + "\n");
      console.error(`wrote ${rows.length} rows to ${c.json}`);
    }
  });
}
