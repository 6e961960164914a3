/**
 * `deno task suite` as CI runs it (issue 16, point 7): two held-out tasks, one seed, a few steps,
 * four optimizer families (Adam, which sets the target, SGD and two MLHF rows). The run is killed
 * with SIGKILL after its tenth finished run, then resumed: every run finished before the kill is
 * reused (its log untouched), the rest run, and the report, CSVs and profile cover all of them;
 * with every checkpoint removed it resumes again from the runs' outcomes and logs, training nothing.
 * Also: an existing suite is refused without --resume, and a family list without Adam is refused.
 * @module
 */
import { join } from "node:path";
import { assert } from "./_util/deps.ts";
import { errorLine, runTask } from "./_util/cli.ts";

const BACKEND = Deno.env.get("MLHF_TEST_BACKEND") ?? "cpu";
const TASK = new URL("../tasks/suite.ts", import.meta.url).pathname;
const FAMILIES = "adam,sgd,mlhf,mlhf-no-precond";
/** Runs per task: 6 Adam and 6 SGD learning rates, two MLHF rows. */
const PER_TASK = 14;

const args = (out: string, more: string[] = [], families = FAMILIES) => [
  "--backend",
  BACKEND,
  "--tasks",
  "mlp-rotated,mlp-deep-tanh",
  "--optimizers",
  families,
  "--seeds",
  "1",
  "--steps",
  "3",
  "--eval-every",
  "2",
  "--eval-examples",
  "100",
  "--out",
  out,
  ...more,
];

/** The labels of the `suite [k/N] task seed s label: status` lines, as `task/label`. */
const doneLines = (text: string): { run: string; status: string }[] =>
  [...text.matchAll(/^suite \[\d+\/\d+\] (\S+) seed \d+ (\S+): (.*) \(\d+\.\d s\)$/gm)].map((
    m,
  ) => ({
    run: `${m[1]}/${m[2]}`,
    status: m[3],
  }));

/** Starts the suite and SIGKILLs it once `n` runs have finished; returns their stderr. */
const runUntil = async (out: string, n: number): Promise<string> => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--frozen", TASK, ...args(out)],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let text = "";
  const dec = new TextDecoder();
  const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
  for await (const chunk of child.stderr) {
    text += dec.decode(chunk, { stream: true });
    if (doneLines(text).length >= n) {
      child.kill("SIGKILL");
      break;
    }
  }
  clearTimeout(timer);
  const status = await child.status;
  assert.notEqual(status.code, 0, `the suite finished before it was killed:\n${text}`);
  return text;
};

/** Removes every `checkpoint` folder under `dir`; returns how many there were. */
const removeCheckpoints = async (dir: string): Promise<number> => {
  let n = 0;
  for await (const e of Deno.readDir(dir)) {
    if (!e.isDirectory) continue;
    const path = join(dir, e.name);
    if (e.name === "checkpoint") {
      await Deno.remove(path, { recursive: true });
      n++;
    } else n += await removeCheckpoints(path);
  }
  return n;
};

Deno.test("suite CLI: a killed two-task suite resumes without redoing finished runs and reports all", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mlhf-suite-cli-" });
  const out = join(dir, "suite");
  try {
    const killed = doneLines(await runUntil(out, 10)).slice(0, 10);
    assert.ok(killed.every((d) => d.status === "finished"), JSON.stringify(killed));
    const logPath = (run: string) =>
      join(out, run.split("/")[0], "seed-1", run.split("/")[1], "log.jsonl");
    const before = new Map<string, string>();
    for (const d of killed) before.set(d.run, await Deno.readTextFile(logPath(d.run)));

    const again = await runTask("suite", args(out));
    assert.equal(again.code, 2, again.stderr);
    assert.match(errorLine(again.stderr), /already holds a suite: pass --resume/);

    const resumed = await runTask("suite", args(out, ["--resume"]));
    assert.equal(resumed.code, 0, resumed.stderr);
    const lines = doneLines(resumed.stderr);
    assert.equal(lines.length, 2 * PER_TASK);
    const reused = lines.filter((d) => d.status === "reused (finished)").map((d) => d.run);
    assert.deepEqual(reused, killed.map((d) => d.run));
    for (const d of lines.filter((x) => !reused.includes(x.run))) {
      assert.equal(d.status, "finished", d.run);
    }
    for (const [run, log] of before) {
      assert.equal(await Deno.readTextFile(logPath(run)), log, `${run} was redone`);
    }

    const csv = (await Deno.readTextFile(join(out, "runs.csv"))).trim().split("\n");
    assert.equal(csv.length, 1 + 2 * PER_TASK);
    assert.ok(csv.slice(1).every((l) => /^(mlp-rotated|mlp-deep-tanh),/.test(l)));
    const summary = (await Deno.readTextFile(join(out, "summary.csv"))).trim().split("\n");
    assert.equal(summary.length, 1 + 2 * 4);
    const report = await Deno.readTextFile(join(out, "report.md"));
    assert.match(report, /^\| mlp-rotated +\| +\d/m);
    assert.match(report, /^\| mlp-deep-tanh +\| +\d/m);
    assert.match(report, /^## mlp-deep-tanh$/m);
    assert.match(
      report,
      /Target: \d\.\d+, the median final training loss of adam at its tuned lr=/,
    );
    const svg = await Deno.readTextFile(join(out, "profile.svg"));
    assert.ok(svg.startsWith("<svg") || svg.startsWith("<?xml"), svg.slice(0, 40));
    assert.match(svg, /Steps to target/);
    assert.match(svg, /mlhf-no-precond/);

    // Kept without its parameters (every checkpoint folder removed, as when a long suite's results
    // move to another machine), the suite resumes from the runs' outcomes and logs: nothing trains.
    const removed = await removeCheckpoints(out);
    assert.equal(removed, 2 * PER_TASK);
    const kept = await runTask("suite", args(out, ["--resume"]));
    assert.equal(kept.code, 0, kept.stderr);
    const keptLines = doneLines(kept.stderr);
    assert.equal(keptLines.length, 2 * PER_TASK);
    assert.ok(keptLines.every((d) => d.status === "reused (finished)"), kept.stderr);
    assert.equal(
      (await Deno.readTextFile(join(out, "runs.csv"))).trim().split("\n").length,
      csv.length,
    );
    assert.equal(await removeCheckpoints(out), 0);

    const noAdam = await runTask("suite", args(join(dir, "x"), [], "sgd,mlhf"));
    assert.equal(noAdam.code, 2);
    assert.match(errorLine(noAdam.stderr), /--optimizers: must include adam/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
