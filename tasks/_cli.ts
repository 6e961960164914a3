/**
 * Shared entry-point plumbing for `deno task train | eval | bench`: flag decoding with a clear
 * message and exit code 2 on a bad flag, --help, backend selection with its one-line report.
 * @module
 */
import {
  BACKEND_NAMES,
  type BackendChoice,
  describeChoice,
  resolveBackendName,
  selectBackend,
} from "../lib/backend/select.ts";
import { type ConfigOf, FlagError, type FlagSpecs, parseFlags, usage } from "../lib/cli/flags.ts";
import { flag, oneOf } from "../lib/cli/flags.ts";

/** The `--backend` flag every task accepts (also read from MLHF_BACKEND). */
export const backendFlag = flag(
  oneOf(BACKEND_NAMES),
  "auto" as (typeof BACKEND_NAMES)[number],
  "TF.js backend (env MLHF_BACKEND when the flag is absent)",
  `one of ${BACKEND_NAMES.join(" | ")}`,
);

/**
 * Runs a command: decodes flags (printing usage on --help), selects the backend, calls `run`.
 * Exits 2 on a bad flag and 1 on any other error, printing only the message.
 */
export const runCli = async <S extends FlagSpecs>(
  command: string,
  summary: string,
  specs: S,
  run: (config: ConfigOf<S>, backend: BackendChoice) => Promise<void>,
  argv: readonly string[] = Deno.args,
): Promise<void> => {
  let config: ConfigOf<S>;
  try {
    const parsed = parseFlags(argv, specs);
    if (parsed.kind === "help") {
      console.log(usage(command, summary, specs));
      return;
    }
    config = parsed.config;
  } catch (e) {
    if (e instanceof FlagError) {
      console.error(`error: ${e.message}\n(run 'deno task ${command} --help' for usage)`);
      Deno.exit(e.exitCode);
    }
    throw e;
  }
  try {
    const flagValue = argv.some((a) => a === "--backend" || a.startsWith("--backend="))
      ? String((config as Record<string, unknown>).backend)
      : undefined;
    const choice = await selectBackend(resolveBackendName(flagValue));
    console.error(describeChoice(choice));
    await run(config, choice);
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    Deno.exit(1);
  }
};
