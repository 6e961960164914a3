/**
 * Shared entry-point plumbing for `deno task train | eval | bench`: flag decoding with a clear
 * one-line message, --help, backend selection with its one-line report, and the exit codes:
 * 0 every run finished; 1 a run diverged or failed; 2 bad input (a flag, a data file, a weights
 * or checkpoint file, an output directory that cannot be written).
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
import { BooleanFlag, flag, oneOf, PositiveIntFlag } from "../lib/cli/flags.ts";
import { MpiMissingError, openCommunicator } from "../lib/distributed/communicator.ts";
import { type DataParallel, DEFAULT_CHECK_EVERY } from "../lib/distributed/data_parallel.ts";
import { DataError } from "../lib/data/errors.ts";
import { TensorFileError } from "../lib/run/tensor_file.ts";
import { dirname, resolve } from "node:path";

/** The `--backend` flag every task accepts (also read from MLHF_BACKEND). */
export const backendFlag = flag(
  oneOf(BACKEND_NAMES),
  "auto" as (typeof BACKEND_NAMES)[number],
  "TF.js backend (env MLHF_BACKEND when the flag is absent)",
  `one of ${BACKEND_NAMES.join(" | ")}`,
);

/** The data-parallel flags of `eval` and `train` (README "Several machines (MPI)"). */
export const DISTRIBUTED_FLAGS = {
  distributed: flag(
    BooleanFlag,
    false,
    "data-parallel over MPI ranks, launched by mpirun -n N (eval: each rank a shard of every " +
      "batch; train: each rank its own windows, meta-gradients averaged)",
  ),
  "sync-check-every": flag(
    PositiveIntFlag,
    DEFAULT_CHECK_EVERY,
    "with --distributed: check that the ranks hold bit-identical parameters every N steps " +
      "(eval; train checks its meta-weights at each checkpoint)",
  ),
};

/**
 * Runs `f` with the job's data parallelism (undefined without --distributed); `--distributed`
 * without Open MPI is a one-line `FlagError` naming what to install. A failure's message names
 * the rank; MPI is finalized only on success (a rank that fails or dies ends the job through
 * mpirun, which names it, and never waits for its peers).
 */
export const withDataParallel = async (
  config: { distributed: boolean; "sync-check-every": number },
  f: (dp: DataParallel | undefined) => Promise<void>,
): Promise<void> => {
  if (!config.distributed) return await f(undefined);
  let comm;
  try {
    comm = openCommunicator();
  } catch (e) {
    if (e instanceof MpiMissingError) throw new FlagError(e.message);
    throw e;
  }
  try {
    await f({ comm, checkEvery: config["sync-check-every"] });
  } catch (e) {
    if (comm.size > 1 && e instanceof Error) {
      e.message = `rank ${comm.rank} of ${comm.size}: ${e.message}`;
    }
    throw e;
  }
  comm.finalize();
};

/** The exit code of a failed command: 2 for bad input (see the module doc), 1 otherwise. */
export const exitCodeOf = (e: unknown): 1 | 2 =>
  e instanceof FlagError || e instanceof DataError || e instanceof TensorFileError ? 2 : 1;

/** The OS's reason from a Deno file-system error, without the operation and path it appends. */
const osReason = (e: unknown): string => (e as Error).message.replace(/: \w+ '.*'$/s, "");

/**
 * Creates directory `dir` (and its parents) and checks that a file can be written in it; throws a
 * `FlagError` naming `--flag`, the path and the OS's reason when not.
 */
export const ensureWritableDir = async (flag: string, dir: string): Promise<void> => {
  // The outermost folder this check creates is removed again: a run creates its directory only
  // once its inputs are known to be good, so a failed start leaves nothing behind.
  let created: string | null = null;
  for (let d = resolve(dir); !(await exists(d)); d = dirname(d)) {
    created = d;
    if (dirname(d) === d) break;
  }
  try {
    await Deno.mkdir(dir, { recursive: true });
    await Deno.remove(await Deno.makeTempFile({ dir, prefix: ".write-test-" }));
  } catch (e) {
    throw new FlagError(`--${flag}: cannot write to ${JSON.stringify(dir)}: ${osReason(e)}`);
  } finally {
    if (created) await Deno.remove(created, { recursive: true }).catch(() => {});
  }
};

const exists = (path: string): Promise<boolean> => Deno.lstat(path).then(() => true, () => false);

/**
 * Runs a command: decodes flags (printing usage on --help), selects the backend, calls `run`.
 * Prints only the error's message and exits with `exitCodeOf` it.
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
    if (e instanceof FlagError) fail(command, e);
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
    fail(command, e);
  }
};

/** Prints the error (a flag error with the pointer to --help) and exits with its code. */
const fail = (command: string, e: unknown): never => {
  const hint = e instanceof FlagError ? `\n(run 'deno task ${command} --help' for usage)` : "";
  console.error(`error: ${(e as Error).message}${hint}`);
  Deno.exit(exitCodeOf(e));
};
