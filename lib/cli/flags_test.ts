import { assert } from "../../tests/_util/deps.ts";
import {
  flag,
  FlagError,
  oneOf,
  parseFlags,
  PositiveIntFlag,
  UnitIntervalFlag,
  usage,
} from "./flags.ts";
import { BooleanFlag } from "./flags.ts";

const SPECS = {
  steps: flag(PositiveIntFlag, 10, "number of steps"),
  keepProb: flag(UnitIntervalFlag, 0.5, "probability to keep"),
  model: flag(oneOf(["mlp", "convnet"] as const), "mlp" as "mlp" | "convnet", "model"),
  resume: flag(BooleanFlag, false, "resume a run"),
};

Deno.test("flags: defaults, typed values, help", () => {
  const d = parseFlags([], SPECS);
  assert.deepEqual(d, {
    kind: "config",
    config: { steps: 10, keepProb: 0.5, model: "mlp", resume: false },
  });
  const p = parseFlags(
    ["--steps", "7", "--keepProb=0.25", "--model", "convnet", "--resume"],
    SPECS,
  );
  assert.deepEqual(p, {
    kind: "config",
    config: { steps: 7, keepProb: 0.25, model: "convnet", resume: true },
  });
  assert.deepEqual(parseFlags(["--help"], SPECS), { kind: "help" });
  assert.match(
    usage("eval", "Trains.", SPECS),
    /--keepProb <value>\n.*number in \[0, 1\].*default: 0.5/,
  );
});

Deno.test("flags: a bad value names the flag, the value and what was expected", () => {
  const bad = (argv: string[], re: RegExp) =>
    assert.throws(() => parseFlags(argv, SPECS), (err: unknown) => {
      assert.ok(err instanceof FlagError);
      assert.equal(err.exitCode, 2);
      assert.match(err.message, re);
      return true;
    });
  bad(["--steps", "0"], /--steps: invalid value "0": expected a positive integer/);
  bad(["--steps", "1.5"], /--steps: invalid value "1.5"/);
  bad(["--keepProb", "2"], /--keepProb: invalid value "2": expected a number in \[0, 1\]/);
  bad(["--model", "vgg"], /--model: invalid value "vgg": expected a mlp \| convnet/);
  bad(["--nope", "1"], /Unknown option '--nope'.*Known flags: --steps/);
  bad(["--steps"], /--steps/);
});

Deno.test("flags: a task exits 2 on a bad flag and prints usage on --help", async () => {
  const run = async (args: string[]) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--frozen",
        new URL("../../tasks/train.ts", import.meta.url).pathname,
        ...args,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    return {
      code: out.code,
      text: new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr),
    };
  };
  const help = await run(["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.text, /Usage: deno task train/);
  const bad = await run(["--seed", "abc"]);
  assert.equal(bad.code, 2);
  assert.match(bad.text, /--seed: invalid value "abc": expected a positive integer/);
});
