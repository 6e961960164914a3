/**
 * Fault injection (issue 20, point 5): `deno task eval` and `deno task train` run as child
 * processes are killed with SIGKILL once their logs reach a step drawn from a seeded PRNG, resumed
 * with `--resume`, and compared with an uninterrupted run of the same command: every log record and
 * every tensor, number and string of the final checkpoint and meta-weights file must be equal bit
 * for bit, except the fields listed in `EXCLUDED`, which measure wall-clock time (or name the
 * process that wrote the file) and so differ between any two runs, killed or not.
 *
 * The kill points come from `MLHF_KILL_SEED` (default 20) and are printed, so a failure can be
 * replayed; other seeds draw other points.
 * @module
 */
import { join } from "node:path";
import { assert } from "./_util/deps.ts";
import { useTestBackend } from "./_util/backend.ts";
import { tf } from "../lib/_deps.ts";
import { keyFromSeed, stream } from "../lib/prng.ts";
import { readCsv, readJsonl } from "../lib/run/logger.ts";
import { decodeTree, type TreeValue } from "../lib/run/tensor_file.ts";
import { disposeTensorsIn, loadCheckpoint } from "../lib/run/checkpoint.ts";

await useTestBackend();

const KILL_SEED = Number(Deno.env.get("MLHF_KILL_SEED") ?? 20);
const TASKS = new URL("../tasks/", import.meta.url).pathname;

/**
 * Fields that legitimately differ between two runs of the same command, by file; everything else
 * must be equal bit for bit. A path is `/`-separated from the record or file root.
 */
const EXCLUDED = {
  /** `step_ms` and `eval_ms`: wall time of one step or evaluation; `time_s`: their running sum
   * (the training-time clock, which the checkpoint carries over a resume but which is measured). */
  evalLog: ["step_ms", "eval_ms", "time_s"],
  /** `savedAt`: when the file was written; `timeS`: the training-time clock (as `time_s`). */
  evalCheckpoint: ["meta/savedAt", "value/timeS"],
  /** Wall-clock seconds since the run started (carried over a resume, but measured). */
  trainLog: ["wallSeconds"],
  /** `savedAt`: when the file was written; `elapsedSeconds`: wall-clock seconds of the run. */
  trainCheckpoint: ["meta/savedAt", "value/elapsedSeconds"],
  /** The wall-clock seconds, and the command line of the process that wrote the file (the
   * resumed one's has `--resume` and another `--out`). */
  metaWeights: ["meta/provenance/wallSeconds", "meta/provenance/command"],
};

// ---------------------------------------------------------------------------------------------
// Child processes

/** Starts `deno task <task>` (stdout and stderr collected, so a full pipe never blocks it). */
const spawnTask = (task: "eval" | "train", args: readonly string[]) => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--frozen", join(TASKS, `${task}.ts`), ...args],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const output = child.output();
  let exited = false;
  output.finally(() => (exited = true)).catch(() => {});
  return { child, output, exited: () => exited };
};

/** Runs a task to its end; its stderr, or an error with it when it fails. */
const runTask = async (task: "eval" | "train", args: readonly string[]): Promise<string> => {
  const out = await spawnTask(task, args).output;
  const stderr = new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`deno task ${task} ${args.join(" ")} failed:\n${stderr}`);
  return stderr;
};

/** The number of non-empty lines of a file holding `needle` (0 while it does not exist). */
const countLines = async (path: string, needle = ""): Promise<number> => {
  try {
    return (await Deno.readTextFile(path)).split("\n").filter((l) => l.trim() && l.includes(needle))
      .length;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return 0;
    throw e;
  }
};

/**
 * Starts a task, watches `progress()` (steps logged so far) every few milliseconds and sends
 * SIGKILL as soon as it reaches `target`; returns the steps logged when the process was dead.
 */
const killAt = async (
  task: "eval" | "train",
  args: readonly string[],
  progress: () => Promise<number>,
  target: number,
): Promise<number> => {
  const p = spawnTask(task, args);
  const deadline = Date.now() + 120_000;
  while ((await progress()) < target) {
    if (p.exited()) {
      const out = await p.output;
      throw new Error(
        `deno task ${task} ended (code ${out.code}) before step ${target} could be reached:\n${
          new TextDecoder().decode(out.stderr)
        }`,
      );
    }
    if (Date.now() > deadline) {
      p.child.kill("SIGKILL");
      await p.output;
      throw new Error(`deno task ${task} did not reach step ${target} in 120 s`);
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  p.child.kill("SIGKILL");
  const out = await p.output;
  assert.equal(out.signal, "SIGKILL", `deno task ${task} was not killed (code ${out.code})`);
  return await progress();
};

/** `n` distinct integers in [lo, hi], drawn from the seed (ascending). */
const drawKillPoints = (seed: number, lo: number, hi: number, n: number): number[] => {
  const r = stream(keyFromSeed(seed));
  const points = new Set<number>();
  while (points.size < Math.min(n, hi - lo + 1)) points.add(lo + Math.floor(r() * (hi - lo + 1)));
  return [...points].sort((a, b) => a - b);
};

// ---------------------------------------------------------------------------------------------
// Comparisons (every difference is collected, then reported at once)

const without = (r: Readonly<Record<string, unknown>>, excluded: readonly string[]) =>
  Object.fromEntries(Object.entries(r).filter(([k]) => !excluded.includes(k)));

/** Compares two JSONL logs record by record, ignoring the `excluded` fields. */
const compareJsonl = async (
  ref: string,
  got: string,
  excluded: readonly string[],
): Promise<string[]> => {
  const [a, b] = [await readJsonl(ref), await readJsonl(got)];
  const diffs: string[] = [];
  if (a.length !== b.length) diffs.push(`${got}: ${b.length} records, expected ${a.length}`);
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    try {
      assert.deepEqual(without(b[i], excluded), without(a[i], excluded));
    } catch {
      diffs.push(
        `${got}: record ${i + 1} is ${JSON.stringify(b[i])}, expected ${JSON.stringify(a[i])}`,
      );
    }
  }
  return diffs;
};

/** Compares two CSV logs cell by cell (as written: the text of each number), ignoring columns. */
const compareCsv = async (
  ref: string,
  got: string,
  excluded: readonly string[],
): Promise<string[]> => {
  const [a, b] = [await readCsv(ref), await readCsv(got)];
  const diffs: string[] = [];
  if (a.columns.join() !== b.columns.join()) {
    diffs.push(`${got}: columns ${b.columns}, expected ${a.columns}`);
  }
  if (a.rows.length !== b.rows.length) {
    diffs.push(`${got}: ${b.rows.length} rows, expected ${a.rows.length}`);
  }
  for (let i = 0; i < Math.min(a.rows.length, b.rows.length); i++) {
    const [x, y] = [without(a.rows[i], excluded), without(b.rows[i], excluded)];
    if (JSON.stringify(x) !== JSON.stringify(y)) {
      diffs.push(`${got}: row ${i + 1} is ${JSON.stringify(y)}, expected ${JSON.stringify(x)}`);
    }
  }
  return diffs;
};

/** The bytes of a tensor's values. */
const bytesOf = (x: tf.Tensor): Uint8Array => {
  const v = x.dataSync() as Float32Array | Int32Array;
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
};

/** The paths where two decoded trees differ (tensors: dtype, shape and bytes; numbers: Object.is). */
const treeDiffs = (a: unknown, b: unknown, path: string, excluded: Set<string>): string[] => {
  if (excluded.has(path)) return [];
  if (a instanceof tf.Tensor || b instanceof tf.Tensor) {
    if (!(a instanceof tf.Tensor && b instanceof tf.Tensor)) return [`${path}: tensor vs not`];
    if (a.dtype !== b.dtype || a.shape.join() !== b.shape.join()) {
      return [`${path}: ${b.dtype}[${b.shape}], expected ${a.dtype}[${a.shape}]`];
    }
    const [x, y] = [bytesOf(a), bytesOf(b)];
    const i = x.findIndex((v, j) => v !== y[j]);
    return i < 0 ? [] : [`${path}: bytes differ from byte ${i} (element ${Math.floor(i / 4)})`];
  }
  if (a !== null && b !== null && typeof a === "object" && typeof b === "object") {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
    return keys.flatMap((k) =>
      treeDiffs(
        (a as Record<string, unknown>)[k],
        (b as Record<string, unknown>)[k],
        `${path}/${k}`,
        excluded,
      )
    );
  }
  return Object.is(a, b) ? [] : [`${path}: ${JSON.stringify(b)}, expected ${JSON.stringify(a)}`];
};

/** Compares two tensor files (header `meta` and tree `value`), ignoring the `excluded` paths. */
const compareTensorFiles = async (
  ref: string,
  got: string,
  excluded: readonly string[],
): Promise<string[]> => {
  const a = decodeTree(await Deno.readFile(ref), ref);
  const b = decodeTree(await Deno.readFile(got), got);
  try {
    const root = { kind: a.kind, meta: a.meta, value: a.value };
    const present = excluded.filter((p) =>
      p.split("/").reduce<unknown>((o, k) => (o as Record<string, unknown>)?.[k], root) !==
        undefined
    );
    assert.deepEqual(present, excluded, `${ref}: an excluded field is missing (stale list?)`);
    return treeDiffs(
      root,
      { kind: b.kind, meta: b.meta, value: b.value },
      "",
      new Set(
        excluded.map((p) => `/${p}`),
      ),
    ).map((d) => `${got}: ${d}`);
  } finally {
    disposeTensorsIn(a.value as TreeValue);
    disposeTensorsIn(b.value as TreeValue);
  }
};

/** The files under `dir` (relative paths, sorted), leaving out hidden ones: a write killed
 * half-way leaves its `.<name>.<id>.tmp` behind, which is harmless and not the run's output. */
const listFiles = async (dir: string, sub = ""): Promise<string[]> => {
  const out: string[] = [];
  for await (const e of Deno.readDir(join(dir, sub))) {
    if (e.name.startsWith(".")) continue;
    const rel = sub ? `${sub}/${e.name}` : e.name;
    out.push(...(e.isDirectory ? await listFiles(dir, rel) : [rel]));
  }
  return out.sort();
};

const compareFileLists = async (ref: string, got: string): Promise<string[]> => {
  const [a, b] = [await listFiles(ref), await listFiles(got)];
  return a.join() === b.join() ? [] : [`${got}: files ${b.join(", ")}, expected ${a.join(", ")}`];
};

const assertNoDiffs = (diffs: string[], what: string) =>
  assert.ok(
    diffs.length === 0,
    `${what} differs from the uninterrupted run in ${diffs.length} place(s):\n${
      diffs.slice(0, 12).join("\n")
    }${diffs.length > 12 ? "\n…" : ""}`,
  );

// ---------------------------------------------------------------------------------------------
// deno task eval

/** MLHF (the shipped meta-weights) then K-FAC (inverting at steps 0 and 5) on the MLP, 8 steps
 * each, evaluating every 4 and checkpointing every 3 steps, so that a kill loses steps, resumes
 * mid-window and before or after an inversion, and a kill in K-FAC's run resumes after MLHF's
 * finished one. */
const EVAL_LABELS = ["mlhf", "kfac"];
const EVAL_STEPS = 8;
const evalArgs = (out: string) => [
  "--backend",
  "cpu",
  "--compare",
  "mlhf,kfac:invert-every=5",
  "--steps",
  String(EVAL_STEPS),
  "--batch-size",
  "32",
  "--shuffle-buffer",
  "200",
  "--eval-every",
  "4",
  "--eval-examples",
  "100",
  "--checkpoint-every",
  "3",
  "--out",
  out,
];

const evalStepsLogged = (out: string) => async () => {
  let n = 0;
  for (const l of EVAL_LABELS) n += await countLines(join(out, l, "log.jsonl"), '"kind":"step"');
  return n;
};

const checkpointSteps = async (out: string): Promise<string> => {
  const parts: string[] = [];
  for (const l of EVAL_LABELS) {
    const ck = await loadCheckpoint(join(out, l, "checkpoint"), "train");
    if (ck) disposeTensorsIn(ck.payload);
    parts.push(`${l} ${ck ? `step ${ck.step}` : "none"}`);
  }
  return parts.join(", ");
};

Deno.test({
  name: "kill -9 mid `deno task eval`, then --resume: logs and checkpoints equal bit for bit",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "mlhf-kill-eval-" });
    try {
      const ref = join(dir, "ref");
      await runTask("eval", evalArgs(ref));
      const total = EVAL_LABELS.length * EVAL_STEPS;
      assert.equal(await evalStepsLogged(ref)(), total);
      const points = drawKillPoints(KILL_SEED, 1, total - 1, 3);
      console.log(`eval: seed ${KILL_SEED}: kill points (steps of ${total}): ${points.join(", ")}`);
      for (const point of points) {
        const out = join(dir, `killed-at-${point}`);
        const died = await killAt("eval", evalArgs(out), evalStepsLogged(out), point);
        console.log(
          `  killed at ${point}: ${died} steps logged, checkpoints ${await checkpointSteps(out)}`,
        );
        await runTask("eval", [...evalArgs(out), "--resume"]);
        const diffs = await compareFileLists(ref, out);
        for (const l of EVAL_LABELS) {
          const [a, b] = [join(ref, l), join(out, l)];
          diffs.push(
            ...await compareJsonl(join(a, "log.jsonl"), join(b, "log.jsonl"), EXCLUDED.evalLog),
          );
          for (const f of ["steps.csv", "evals.csv"]) {
            diffs.push(...await compareCsv(join(a, f), join(b, f), EXCLUDED.evalLog));
          }
          diffs.push(
            ...await compareTensorFiles(
              join(a, "checkpoint", "train.bin"),
              join(b, "checkpoint", "train.bin"),
              EXCLUDED.evalCheckpoint,
            ),
          );
        }
        assertNoDiffs(diffs, `eval killed at step ${point} (seed ${KILL_SEED})`);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

// ---------------------------------------------------------------------------------------------
// deno task train

/** Meta-training the 4-unit MLP, T = 2, 8 iterations, a checkpoint every 2, half the windows
 * ending the trajectory (so the replay buffer is in play). */
const TRAIN_ITERATIONS = 8;
const TRAIN_CHECKPOINT_EVERY = 2;
const trainArgs = (out: string) => [
  "--backend",
  "wasm",
  "--mlp-hidden",
  "4",
  "--batch-size",
  "16",
  "--meta-roll-back",
  "2",
  "--iterations",
  String(TRAIN_ITERATIONS),
  "--checkpoint-every",
  String(TRAIN_CHECKPOINT_EVERY),
  "--keep-prob",
  "0.5",
  "--seed",
  "3",
  "--out",
  out,
];

Deno.test({
  name: "kill -9 mid `deno task train`, then --resume: log, checkpoint, meta-weights bit for bit",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "mlhf-kill-train-" });
    try {
      const ref = join(dir, "ref");
      await runTask("train", trainArgs(ref));
      const log = (out: string) => join(out, "meta_train.jsonl");
      assert.equal(await countLines(log(ref)), TRAIN_ITERATIONS);
      // After the first checkpoint (a run killed before it has nothing to resume: --resume says
      // so), before the last iteration.
      const points = drawKillPoints(KILL_SEED, TRAIN_CHECKPOINT_EVERY + 1, TRAIN_ITERATIONS - 1, 3);
      console.log(
        `train: seed ${KILL_SEED}: kill points (iterations of ${TRAIN_ITERATIONS}): ${
          points.join(", ")
        }`,
      );
      for (const point of points) {
        const out = join(dir, `killed-at-${point}`);
        const died = await killAt("train", trainArgs(out), () => countLines(log(out)), point);
        const stderr = await runTask("train", [...trainArgs(out), "--resume"]);
        const from = /resuming at iteration (\d+)/.exec(stderr)?.[1];
        assert.ok(from, `the resumed run did not say where it resumed:\n${stderr}`);
        console.log(`  killed at ${point}: ${died} iterations logged, resumed at ${from}`);
        const diffs = [
          ...await compareFileLists(ref, out),
          ...await compareJsonl(log(ref), log(out), EXCLUDED.trainLog),
          ...await compareTensorFiles(
            join(ref, "meta-train.bin"),
            join(out, "meta-train.bin"),
            EXCLUDED.trainCheckpoint,
          ),
          ...await compareTensorFiles(
            join(ref, "meta-weights.mlhf"),
            join(out, "meta-weights.mlhf"),
            EXCLUDED.metaWeights,
          ),
        ];
        assertNoDiffs(diffs, `train killed at iteration ${point} (seed ${KILL_SEED})`);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
