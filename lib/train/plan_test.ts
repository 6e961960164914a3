/**
 * `deno task eval`'s flags → plan: preset defaults (the MNIST default job), `--optimizer`,
 * `--compare`, setting overrides applied where they belong, and the flag errors (exit code 2).
 */
import { assert } from "../../tests/_util/deps.ts";
import { FlagError, parseFlags } from "../cli/flags.ts";
import { EVAL_FLAGS, type EvalFlags, planEval } from "./plan.ts";
import { PRESET_NAMES } from "./presets.ts";

const flags = (...argv: string[]): EvalFlags => {
  const p = parseFlags(argv, EVAL_FLAGS);
  if (p.kind !== "config") throw new Error("help?");
  return p.config;
};

Deno.test("plan: with no flags, MLHF (or its fallback) against Adam on MNIST with the MLP", () => {
  const p = planEval(flags());
  assert.equal(p.presetName, "mnist");
  assert.deepEqual([p.model, p.dataset, p.batchSize, p.epochs, p.steps], [
    "mlp",
    "mnist",
    128,
    2,
    0,
  ]);
  assert.deepEqual(p.optimizers.map((o) => o.name), ["mlhf", "adam"]);
  assert.deepEqual(p.metaWeights, { spec: "weights/mlhf-mnist.mlhf", required: false });
  assert.ok(p.preset.mlhfFallback, "MNIST has an HF(fixed) fallback");
});

Deno.test("plan: presets from the original's scripts (docs/algorithm.md#presets)", () => {
  const b512 = planEval(flags("--preset", "cifar-b512"));
  assert.deepEqual([b512.model, b512.dataset, b512.batchSize, b512.epochs], [
    "convnet",
    "cifar10",
    512,
    250,
  ]);
  assert.deepEqual(b512.optimizers, [
    { name: "mlhf", settings: { lr: 8 } },
    { name: "hf-fixed", settings: { lr: 1e-2, damping: 5e-3, "cg-iter": 20 } },
    { name: "hf-lm", settings: { lr: 1e-3, damping: 1, "lm-decay": 0.99, "cg-iter": 20 } },
    { name: "kfac", settings: { lr: 0.1, damping: 1, ema: 0.99 } },
  ]);
  const img = planEval(flags("--preset", "imagenet-resnet18"));
  assert.deepEqual([img.model, img.dataset, img.batchSize], ["resnet18", "imagenet", 64]);
  assert.deepEqual(img.optimizers.map((o) => [o.name, o.settings.lr]), [
    ["mlhf", 0.5],
    ["momentum", 0.025],
    ["rmsprop", 2.5e-4],
    ["adam", 2.5e-4],
  ]);
  const b128 = planEval(flags("--preset", "cifar-b128", "--optimizer", "rmsprop"));
  assert.deepEqual(b128.optimizers, [{ name: "rmsprop", settings: { lr: 1e-3, decay: 0.99 } }]);
});

Deno.test("plan: --compare, --model and setting flags applied to the optimizers that take them", () => {
  const p = planEval(
    flags("--compare", "adam:lr=0.1,hf-fixed", "--cg-iter", "5", "--model", "resnet20"),
  );
  assert.deepEqual(p.optimizers, [
    { name: "adam", settings: { lr: 0.1 } },
    { name: "hf-fixed", settings: { "cg-iter": 5 } },
  ]);
  assert.equal(p.dataset, "cifar10");
  assert.equal(planEval(flags("--optimizer", "sgd", "--lr", "0.3")).optimizers[0].settings.lr, 0.3);
  const m = planEval(flags("--meta-weights", "w.mlhf"));
  assert.deepEqual(m.metaWeights, { spec: "w.mlhf", required: true });
});

Deno.test("plan: --safeguard and mlhf:safeguard= reach MLHF only; presets keep none", () => {
  assert.deepEqual(planEval(flags("--compare", "mlhf:safeguard=lm+trust,adam")).optimizers, [
    { name: "mlhf", settings: { safeguard: "lm+trust" } },
    { name: "adam", settings: {} },
  ]);
  assert.deepEqual(planEval(flags("--optimizer", "mlhf", "--safeguard", "lm")).optimizers, [
    { name: "mlhf", settings: { safeguard: "lm" } },
  ]);
  for (const preset of PRESET_NAMES) {
    const p = planEval(flags("--preset", preset));
    assert.ok(p.optimizers.every((o) => o.settings.safeguard === undefined), preset);
  }
  const bad = (re: RegExp, f: () => unknown) =>
    assert.throws(f, (e: unknown) => e instanceof FlagError && re.test(e.message));
  bad(
    /^--safeguard: none of the selected optimizers \(adam\) takes safeguard/,
    () => planEval(flags("--optimizer", "adam", "--safeguard", "lm")),
  );
  bad(
    /^--safeguard trust contradicts --compare's mlhf:safeguard=lm/,
    () => planEval(flags("--compare", "mlhf:safeguard=lm", "--safeguard", "trust")),
  );
  bad(/^--safeguard: invalid value "always"/, () => flags("--safeguard", "always"));
});

Deno.test("plan: flag errors name the flag", () => {
  const bad = (re: RegExp, f: () => unknown) =>
    assert.throws(f, (e: unknown) => e instanceof FlagError && re.test(e.message));
  bad(
    /^--cg-iter: none of the selected optimizers \(adam\) takes cg-iter/,
    () => planEval(flags("--optimizer", "adam", "--cg-iter", "3")),
  );
  bad(/^--resume: needs --out/, () => planEval(flags("--resume")));
  bad(/^--compare: invalid value "adam,lion"/, () => flags("--compare", "adam,lion"));
  bad(/^--steps: invalid value "1.5"/, () => flags("--steps", "1.5"));
  bad(/^--batch-size: invalid value "preset-ish"/, () => flags("--batch-size", "preset-ish"));
  bad(/^--lr: invalid value "fast"/, () => flags("--lr", "fast"));
});

Deno.test("plan: a bad --compare entry is named with its key, listing only that optimizer's keys", () => {
  const bad = (value: string, re: RegExp) =>
    assert.throws(() => flags("--compare", value), (e: unknown) => {
      assert.ok(e instanceof FlagError);
      assert.match(e.message, re);
      return true;
    });
  bad(
    "adam,foo",
    /^--compare: invalid value "adam,foo": entry "foo": unknown optimizer "foo" \(one of mlhf, sgd,/,
  );
  bad(
    "adam:lr=abc",
    /^--compare: invalid value "adam:lr=abc": entry "adam:lr=abc": lr: expected a non-negative number, got "abc"$/,
  );
  bad(
    "adam,sgd:beta1=0.5",
    /^--compare: invalid value "adam,sgd:beta1=0.5": entry "sgd:beta1=0.5": sgd has no setting "beta1" \(sgd takes lr, weight-decay\)$/,
  );
  bad(
    "hf-fixed:cg-iter=0x10",
    /entry "hf-fixed:cg-iter=0x10": cg-iter: expected a positive integer, got "0x10"$/,
  );
});

Deno.test("plan: contradictory flags are refused, naming both", () => {
  const bad = (re: RegExp, ...argv: string[]) =>
    assert.throws(() => planEval(flags(...argv)), (e: unknown) => {
      assert.ok(e instanceof FlagError);
      assert.match(e.message, re);
      return true;
    });
  bad(
    /^--optimizer sgd contradicts --compare adam: give one/,
    "--optimizer",
    "sgd",
    "--compare",
    "adam",
  );
  bad(
    /^--lr 0.2 contradicts --compare's adam:lr=0.1: set lr in one place$/,
    "--compare",
    "sgd,adam:lr=0.1",
    "--lr",
    "0.2",
  );
  bad(
    /^--meta-weights: no mlhf among the selected optimizers \(adam\)$/,
    "--optimizer",
    "adam",
    "--meta-weights",
    "w.mlhf",
  );
  bad(
    /^--skip-corrupt: only ImageNet's records are skipped \(the data set is mnist\)$/,
    "--skip-corrupt",
  );
  // Not contradictions: a setting flag next to --compare entries that leave it unset, and
  // --optimizer preset (the default) with --compare.
  const p = planEval(
    flags("--compare", "sgd,adam:lr=0.1", "--weight-decay", "0", "--optimizer", "preset"),
  );
  assert.deepEqual(p.optimizers, [
    { name: "sgd", settings: { "weight-decay": 0 } },
    { name: "adam", settings: { lr: 0.1, "weight-decay": 0 } },
  ]);
});
