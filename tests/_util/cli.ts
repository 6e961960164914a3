/**
 * Running a task (`tasks/*.ts`) as a subprocess in CLI tests, and reading its one error line.
 * @module
 */
import { assert } from "./deps.ts";

/** What a task's process printed and its exit code. */
export interface TaskOutput {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `deno run -A --frozen tasks/<task>.ts ...args`; a run that spins past `timeoutMs` is killed,
 * so the test fails instead of hanging.
 */
export const runTask = async (
  task: string,
  args: readonly string[],
  timeoutMs = 120_000,
): Promise<TaskOutput> => {
  const path = new URL(`../../tasks/${task}.ts`, import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--frozen", path, ...args],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(timeoutMs),
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
};

/** The one `error:` line of stderr (asserting there is exactly one). */
export const errorLine = (stderr: string): string => {
  const lines = stderr.split("\n").filter((l) => l.startsWith("error:"));
  assert.equal(lines.length, 1, stderr);
  return lines[0];
};
