/**
 * The flags of `deno task eval` and how they become a plan: a preset supplies the model, data,
 * batch size, run length and optimizers; `--optimizer` or `--compare` replace the optimizers; the
 * other flags override single values. Semantic problems (a setting no selected optimizer takes,
 * `--resume` without `--out`) are `FlagError`s naming the flag (exit code 2).
 * @module
 */
import { t } from "../_deps.ts";
import {
  BooleanFlag,
  flag,
  FlagError,
  NonNegativeIntFlag,
  NonNegativeNumberFlag,
  oneOf,
  PositiveIntFlag,
  StringFlag,
} from "../cli/flags.ts";
import { DATASET_NAMES, type DatasetName } from "../data/dataset.ts";
import { DEFAULT_DATASET, MODEL_NAMES, type ModelName } from "./models.ts";
import {
  OPTIMIZER_NAMES,
  parseOptimizerList,
  SETTING_KEYS,
  type SettingKey,
  type Settings,
  settingsOf,
} from "./optimizers.ts";
import { type Preset, PRESET_NAMES, type PresetName, PRESETS } from "./presets.ts";
import { type KindMap, parseKindMap } from "../optim/mlhf/kind_map.ts";
import { type Safeguard, SAFEGUARDS } from "../optim/mlhf/safeguard.ts";

/** "preset" (take the preset's value) or a value of `codec`. */
const presetOr = <A>(codec: t.Type<A, unknown, unknown>) =>
  t.union([t.literal("preset"), codec]) as unknown as t.Type<"preset" | A, unknown, unknown>;

/** A comma-separated optimizer list in `parseOptimizerList` syntax; its error names the entry. */
const OptimizerListFlag = new t.Type<string, unknown, unknown>(
  "optimizer list",
  (u): u is string => typeof u === "string",
  (u, c) => {
    if (typeof u !== "string") return t.failure(u, c);
    try {
      parseOptimizerList(u);
      return t.success(u);
    } catch (e) {
      return t.failure(u, c, (e as Error).message);
    }
  },
  (a) => a,
);

const settingFlag = (what: string) =>
  flag(
    presetOr(NonNegativeNumberFlag),
    "preset" as "preset" | number,
    `${what}, for every selected optimizer that has it`,
    "a non-negative number, or preset (the preset's or the original's value, " +
      "docs/algorithm.md#presets)",
  );

/** The flags of `deno task eval` (besides `--backend`). */
export const EVAL_FLAGS = {
  preset: flag(
    oneOf(PRESET_NAMES),
    "mnist" as PresetName,
    "comparison preset: model, data, batch size, run length, optimizers and their settings",
  ),
  optimizer: flag(
    oneOf(["preset", ...OPTIMIZER_NAMES] as const),
    "preset" as "preset" | typeof OPTIMIZER_NAMES[number],
    "train with this optimizer only (preset: the preset's comparison)",
  ),
  compare: flag(
    OptimizerListFlag,
    "",
    "optimizers to compare, comma-separated, each name[:key=value...] (e.g. adam,mlhf:lr=2)",
    `names from ${OPTIMIZER_NAMES.join(" | ")}; keys from ${SETTING_KEYS.join(", ")}`,
  ),
  model: flag(
    oneOf(["preset", ...MODEL_NAMES] as const),
    "preset" as "preset" | ModelName,
    "model",
  ),
  dataset: flag(
    oneOf(["preset", ...DATASET_NAMES] as const),
    "preset" as "preset" | DatasetName,
    "data set",
  ),
  "data-dir": flag(
    StringFlag,
    "",
    "directory of the data set's files (empty: the embedded MNIST)",
    "a path",
  ),
  "meta-weights": flag(
    StringFlag,
    "preset",
    "MLHF's meta-weights file, or untrained (preset: the preset's file; MNIST falls back to " +
      "HF(fixed) while it does not exist)",
    "a path, untrained or preset",
  ),
  "meta-kind-map": flag(
    StringFlag,
    "",
    "transfer: give parameter kinds without meta-networks another kind's networks, " +
      "target=source pairs (e.g. conv2d/kernel=dense/kernel,conv2d/bias=dense/bias)",
    "comma-separated kind=kind pairs",
  ),
  "batch-size": flag(
    presetOr(PositiveIntFlag),
    "preset" as "preset" | number,
    "batch size",
    "a positive integer, or preset",
  ),
  epochs: flag(
    presetOr(PositiveIntFlag),
    "preset" as "preset" | number,
    "passes over the training data",
    "a positive integer, or preset",
  ),
  steps: flag(
    presetOr(NonNegativeIntFlag),
    "preset" as "preset" | number,
    "stop after this many steps (0: no cap)",
    "a non-negative integer, or preset",
  ),
  seed: flag(PositiveIntFlag, 1, "seed of the initialization, data order and noise (all runs)"),
  lr: settingFlag("learning rate η"),
  "cg-iter": settingFlag("CG iterations K (mlhf, hf-fixed, hf-lm)"),
  damping: settingFlag("damping λ (hf-fixed), λ₀ (hf-lm, mlhf) or K-FAC's damping"),
  momentum: settingFlag("momentum (momentum, kfac)"),
  decay: settingFlag("RMSprop's decay"),
  "lm-decay": settingFlag("HF(LM)'s δ"),
  ema: settingFlag("K-FAC's covariance EMA decay"),
  "weight-decay": settingFlag("weight decay wd in CE + wd·Σ½‖w‖² (overrides the convention)"),
  safeguard: flag(
    oneOf(["preset", ...SAFEGUARDS] as const),
    "preset" as "preset" | Safeguard,
    "MLHF's safeguard against diverging steps, not in the original (preset: none; " +
      "docs/algorithm.md#safeguard)",
  ),
  "shuffle-buffer": flag(PositiveIntFlag, 50_000, "shuffle buffer in examples (1: storage order)"),
  "eval-every": flag(
    presetOr(NonNegativeIntFlag),
    "preset" as "preset" | number,
    "also evaluate every this many steps (0: at epoch ends and the end only)",
    "a non-negative integer, or preset",
  ),
  "eval-examples": flag(NonNegativeIntFlag, 0, "test examples per evaluation (0: all)"),
  "eval-batch-size": flag(PositiveIntFlag, 500, "examples per evaluation forward pass"),
  "checkpoint-every": flag(
    NonNegativeIntFlag,
    200,
    "checkpoint every this many steps (0: at the end)",
  ),
  resume: flag(BooleanFlag, false, "continue the runs in --out from their checkpoints"),
  out: flag(StringFlag, "", "output directory (empty: runs/eval-<timestamp>)", "a path"),
  "skip-corrupt": flag(BooleanFlag, false, "skip corrupt ImageNet records with a warning"),
};

/** The decoded flags. */
export type EvalFlags = {
  -readonly [K in keyof typeof EVAL_FLAGS]: typeof EVAL_FLAGS[K]["default"];
};

/** What to run. */
export interface EvalPlan {
  readonly presetName: PresetName;
  readonly preset: Preset;
  readonly model: ModelName;
  readonly dataset: DatasetName;
  readonly batchSize: number;
  readonly epochs: number;
  /** 0: no cap. */
  readonly steps: number;
  readonly evalEvery: number;
  readonly optimizers: readonly { name: typeof OPTIMIZER_NAMES[number]; settings: Settings }[];
  /** Overrides from the setting flags, applied to every optimizer that takes them. */
  readonly overrides: Settings;
  /** The meta-weights file (or "untrained"), and whether its absence is an error. */
  readonly metaWeights: { readonly spec: string; readonly required: boolean };
  /** Kinds that use another kind's meta-networks (transfer). */
  readonly metaKindMap: KindMap;
}

const pick = <A>(v: "preset" | A, fallback: A): A => (v === "preset" ? fallback : v);

const SETTING_FLAGS = [
  "lr",
  "cg-iter",
  "damping",
  "momentum",
  "decay",
  "lm-decay",
  "ema",
  "safeguard",
] as const;

/** Decoded flags → plan; throws a FlagError for flag combinations that make no sense. */
export const planEval = (f: EvalFlags): EvalPlan => {
  const preset = PRESETS[f.preset];
  if (f.compare && f.optimizer !== "preset") {
    throw new FlagError(
      `--optimizer ${f.optimizer} contradicts --compare ${f.compare}: give one (--optimizer ` +
        "trains one optimizer, --compare several)",
    );
  }
  const list = f.compare
    ? parseOptimizerList(f.compare)
    : f.optimizer !== "preset"
    ? [preset.optimizers.find((o) => o.name === f.optimizer) ?? { name: f.optimizer, settings: {} }]
    : preset.optimizers;
  const overrides: Settings = {};
  for (const key of [...SETTING_FLAGS, "weight-decay"] as SettingKey[]) {
    const v = f[key as keyof EvalFlags];
    if (v === "preset") continue;
    if (!list.some((o) => settingsOf(o.name).includes(key))) {
      throw new FlagError(
        `--${key}: none of the selected optimizers (${list.map((o) => o.name).join(", ")}) ` +
          `takes ${key}`,
      );
    }
    const set = f.compare ? list.find((o) => o.settings[key] !== undefined) : undefined;
    if (set) {
      throw new FlagError(
        `--${key} ${v} contradicts --compare's ${set.name}:${key}=${set.settings[key]}: ` +
          `set ${key} in one place`,
      );
    }
    (overrides as Record<string, unknown>)[key] = v;
  }
  if (f.resume && !f.out) throw new FlagError("--resume: needs --out (the directory to resume)");
  if (f["meta-weights"] !== "preset" && !list.some((o) => o.name === "mlhf")) {
    throw new FlagError(
      `--meta-weights: no mlhf among the selected optimizers (${
        list.map((o) => o.name).join(", ")
      })`,
    );
  }
  const model = pick(f.model, preset.model);
  const dataset = pick(f.dataset, f.model === "preset" ? preset.dataset : DEFAULT_DATASET[model]);
  if (f["skip-corrupt"] && dataset !== "imagenet") {
    throw new FlagError(
      `--skip-corrupt: only ImageNet's records are skipped (the data set is ${dataset})`,
    );
  }
  return {
    presetName: f.preset,
    preset,
    model,
    dataset,
    batchSize: pick(f["batch-size"], preset.batchSize),
    epochs: pick(f.epochs, preset.epochs),
    steps: pick(f.steps, preset.steps),
    evalEvery: pick(f["eval-every"], preset.evalEvery),
    optimizers: list.map((o) => ({
      name: o.name,
      settings: { ...o.settings, ...applicable(o.name, overrides) },
    })),
    overrides,
    metaWeights: f["meta-weights"] === "preset"
      ? { spec: preset.metaWeights, required: false }
      : { spec: f["meta-weights"], required: true },
    metaKindMap: kindMapFlag(f["meta-kind-map"], list),
  };
};

/** `--meta-kind-map`, parsed; only meaningful when MLHF is among the optimizers. */
const kindMapFlag = (text: string, list: readonly { name: string }[]): KindMap => {
  let map: KindMap;
  try {
    map = parseKindMap(text);
  } catch (e) {
    throw new FlagError(`--meta-kind-map: ${(e as Error).message}`);
  }
  if (map.length && !list.some((o) => o.name === "mlhf")) {
    throw new FlagError("--meta-kind-map: no mlhf among the selected optimizers");
  }
  return map;
};

/** The overrides that optimizer `name` takes. */
export const applicable = (name: typeof OPTIMIZER_NAMES[number], s: Settings): Settings =>
  Object.fromEntries(
    Object.entries(s).filter(([k]) => settingsOf(name).includes(k as SettingKey)),
  );
