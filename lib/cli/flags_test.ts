import { assert } from "../../tests/_util/deps.ts";
import {
  flag,
  FlagError,
  givenFlags,
  IntFlag,
  NonNegativeIntFlag,
  NumberFlag,
  oneOf,
  parseFlags,
  PositiveIntFlag,
  PositiveNumberFlag,
  StringFlag,
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

/** Asserts that parsing `argv` throws a one-line FlagError (exit code 2) matching `re`. */
const refuses = (argv: string[], re: RegExp, specs: Record<string, unknown> = SPECS) =>
  assert.throws(() => parseFlags(argv, specs as typeof SPECS), (err: unknown) => {
    assert.ok(err instanceof FlagError);
    assert.equal(err.exitCode, 2);
    assert.match(err.message, re);
    assert.ok(!err.message.includes("\n"), `one line: ${err.message}`);
    return true;
  });

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
  bad(["--nope", "1"], /^--nope: unknown flag \(known flags: --steps, --keepProb/);
  bad(["--steps"], /^--steps needs a value: expected a positive integer$/);
});

Deno.test("flags: a negative number after a flag is its value; another flag is a missing value", () => {
  const NUM = {
    lr: flag(PositiveNumberFlag, 1, "learning rate"),
    shift: flag(NumberFlag, 0, "shift"),
    offset: flag(IntFlag, 0, "offset"),
    out: flag(StringFlag, "-", "output"),
    steps: flag(NonNegativeIntFlag, 0, "steps"),
  };
  const config = (argv: string[]) => {
    const p = parseFlags(argv, NUM);
    if (p.kind !== "config") throw new Error("help?");
    return p.config;
  };
  assert.deepEqual(config(["--shift", "-1.5", "--offset", "-3", "--out", "-"]), {
    lr: 1,
    shift: -1.5,
    offset: -3,
    out: "-",
    steps: 0,
  });
  assert.equal(config(["--shift", "-.5"]).shift, -0.5);
  refuses(["--lr", "-1"], /^--lr: invalid value "-1": expected a positive number$/, NUM);
  refuses(
    ["--steps", "--out", "X"],
    /^--steps needs a value: expected a non-negative integer, got the flag --out$/,
    NUM,
  );
  refuses(
    ["--out", "-x"],
    /^--out needs a value: .*got the flag -x \(for a value starting with -, write --out=-x\)$/,
    NUM,
  );
  assert.equal(config(["--out=-x"]).out, "-x");
});

Deno.test("flags: integers are plain digits and numbers decimal; other notations are refused", () => {
  const NUM = {
    steps: flag(NonNegativeIntFlag, 0, "steps"),
    lr: flag(PositiveNumberFlag, 1, "learning rate"),
  };
  for (const v of ["0x10", "0b1", "0o7"]) {
    refuses(
      ["--steps", v],
      new RegExp(
        `^--steps: invalid value "${v}": expected a non-negative integer \\(decimal notation only: no 0x, 0b or 0o\\)$`,
      ),
      NUM,
    );
    refuses(
      ["--lr", v],
      new RegExp(`^--lr: invalid value "${v}": expected a positive number \\(decimal`),
      NUM,
    );
  }
  for (const v of ["1e3", "1.0", "1E2"]) {
    refuses(
      ["--steps", v],
      new RegExp(
        `^--steps: invalid value "${v}": expected a non-negative integer \\(plain digits only: no exponent or decimal point\\)$`,
      ),
      NUM,
    );
  }
  refuses(
    ["--steps", "1.5"],
    /^--steps: invalid value "1.5": expected a non-negative integer$/,
    NUM,
  );
  refuses(
    ["--lr", "Infinity"],
    /^--lr: invalid value "Infinity": expected a positive number$/,
    NUM,
  );
  const p = parseFlags(["--steps", "016", "--lr", "1e-3"], NUM);
  assert.deepEqual(p, { kind: "config", config: { steps: 16, lr: 0.001 } });
});

Deno.test("flags: a flag given twice, a stray argument and a switch's value", () => {
  refuses(["--steps", "3", "--steps", "5"], /^--steps: given twice \("3", then "5"\)$/);
  refuses(["--resume", "--resume"], /^--resume: given twice/);
  refuses(
    ["--steps", "3", "4"],
    /^unexpected argument "4": flags are --name value or --name=value/,
  );
  refuses(["--resume=yes"], /^--resume: invalid value "yes": expected a boolean$/);
  const p = parseFlags(["--resume=false", "--steps=3"], SPECS);
  assert.deepEqual(p, {
    kind: "config",
    config: { steps: 3, keepProb: 0.5, model: "mlp", resume: false },
  });
  assert.deepEqual([...givenFlags(["--steps", "3", "--resume=false", "-"])], ["steps", "resume"]);
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
