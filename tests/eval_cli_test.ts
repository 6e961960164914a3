/**
 * `tasks/eval.ts` as a subprocess: bad flags exit 2 naming the flag; a short comparison on the
 * embedded MNIST (cpu backend) exits 0, prints the table and the report path and writes the
 * report; rerunning into the same directory needs --resume, which reuses the finished runs.
 */
import { assert } from "./_util/deps.ts";
import { join } from "node:path";

const DENO = Deno.execPath();
const EVAL = new URL("../tasks/eval.ts", import.meta.url).pathname;

const run = async (...args: string[]) => {
  const out = await new Deno.Command(DENO, {
    args: ["run", "-A", "--frozen", EVAL, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
};

for (
  const [argv, flag] of [
    [["--epochs", "x"], "--epochs"],
    [["--compare", "adam,lion"], "--compare"],
    [["--optimizer", "adam", "--cg-iter", "4"], "--cg-iter"],
    [["--resume"], "--resume"],
    [["--model", "vgg"], "--model"],
    [["--warp-speed", "9"], "--warp-speed"],
  ] as const
) {
  Deno.test(`eval CLI: ${argv.join(" ")} exits 2 naming ${flag}`, async () => {
    const r = await run(...argv, "--backend", "cpu");
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`error: .*${flag}`));
    assert.equal(r.stdout, "");
  });
}

Deno.test("eval CLI: a 3-step comparison on MNIST writes the report; rerun needs --resume", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mlhf-eval-cli-" });
  const out = join(dir, "cmp");
  const args = [
    "--backend",
    "cpu",
    "--compare",
    "adam,hf-fixed:cg-iter=2",
    "--steps",
    "3",
    "--eval-examples",
    "200",
    "--out",
    out,
  ];
  try {
    const r = await run(...args);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^\| adam +\| lr=0\.001 .*\| +3 \|/m);
    assert.match(
      r.stdout,
      /^\| hf-fixed +\| lr=0\.01 cg-iter=2 damping=0\.005 weight-decay=0 +\| +3 \|/m,
    );
    assert.ok(r.stdout.includes(`report: ${join(out, "report.md")}`));
    const md = await Deno.readTextFile(join(out, "report.md"));
    assert.match(md, /Command: `deno task eval --backend cpu --compare adam,hf-fixed:cg-iter=2 /);
    assert.match(md, /Backend: cpu/);
    assert.ok((await Deno.stat(join(out, "report.svg"))).isFile);
    for (const f of ["log.jsonl", "steps.csv", "evals.csv", "checkpoint/train.bin"]) {
      assert.ok((await Deno.stat(join(out, "adam", f))).isFile, f);
    }
    const again = await run(...args);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already holds a run: pass --resume/);
    const resumed = await run(...args, "--resume");
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stderr, /adam: already finished at step 3/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
