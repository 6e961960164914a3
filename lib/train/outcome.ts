/**
 * A run's outcome, `outcome.json` in its directory: its identity (as its checkpoint holds it), how
 * it ended (`finished` or `diverged`) and at which step. Written when a run ends, it makes the run's
 * logs final on their own: a comparison resumed in a folder whose checkpoints were removed (to keep
 * or move a long suite's results without its parameters, e.g. from one machine to the next) reuses
 * every ended run from its outcome and logs, and a diverged run is not trained again to diverge at
 * the same step. A run stopped early has no outcome (it continues from its checkpoint).
 * @module
 */
import { join } from "node:path";
import { FlagError } from "../cli/flags.ts";
import { writeFileAtomic } from "../run/atomic.ts";
import { differences } from "../run/differences.ts";
import { exists } from "../run/files.ts";

/** How a run ended. */
export interface RunOutcome {
  /** The run's identity (model, data, batch size, seed, optimizer, settings, …). */
  readonly identity: Readonly<Record<string, unknown>>;
  readonly status: "finished" | "diverged";
  /** Steps taken (finished), or the step whose loss or parameters were not finite (diverged). */
  readonly step: number;
  /** A diverged run's message (what was not finite, where the last good checkpoint is). */
  readonly message?: string;
}

/** The outcome file of a run directory. */
export const outcomePath = (runDir: string): string => join(runDir, "outcome.json");

/** Records how a run ended (atomically: a crash leaves the old file or the new one). */
export const writeRunOutcome = async (runDir: string, o: RunOutcome): Promise<void> => {
  await writeFileAtomic(outcomePath(runDir), JSON.stringify(o, null, 2) + "\n");
};

/** The run's outcome, or null when it has none; a malformed file is an error naming it. */
export const readRunOutcome = async (runDir: string): Promise<RunOutcome | null> => {
  const path = outcomePath(runDir);
  if (!(await exists(path))) return null;
  let o: Partial<RunOutcome>;
  try {
    o = JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    throw new Error(`${path}: not a run outcome (${(e as Error).message})`);
  }
  if (
    typeof o !== "object" || o === null || typeof o.identity !== "object" ||
    o.identity === null || (o.status !== "finished" && o.status !== "diverged") ||
    !Number.isInteger(o.step)
  ) {
    throw new Error(
      `${path}: not a run outcome (expected { identity: {…}, status: "finished" | "diverged", ` +
        "step: integer })",
    );
  }
  return o as RunOutcome;
};

/**
 * The outcome of the run in `runDir` when a run of `identity` capped at `steps` (0: none) can reuse
 * it instead of training: it diverged, or it finished with at least `steps` steps. Null when there
 * is no outcome or the run must go on (it finished with fewer steps than the cap now asks). An
 * outcome of another identity is refused, as a checkpoint of one is (`FlagError`, naming each
 * field that differs).
 */
export const reusableOutcome = async (
  runDir: string,
  identity: Readonly<Record<string, unknown>>,
  steps: number,
): Promise<RunOutcome | null> => {
  const o = await readRunOutcome(runDir);
  if (!o) return null;
  const differ = differences(o.identity, identity, "", "recorded");
  if (differ.length) {
    throw new FlagError(
      `--resume: ${outcomePath(runDir)} is from a run with other settings: ${differ.join("; ")}`,
    );
  }
  if (o.status === "diverged") return o;
  return steps > 0 && o.step < steps ? null : o;
};
