/**
 * `deno task eval`'s flags → plan: preset defaults (the MNIST default job), `--optimizer`,
 * `--compare`, setting overrides applied where they belong, and the flag errors (exit code 2).
 */
import { assert } from "../../tests/_util/deps.ts";
import { FlagError, parseFlags } from "../cli/flags.ts";
import { EVAL_FLAGS, type EvalFlags, planEval } from "./plan.ts";

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
