/**
 * The optimizer registry of `deno task eval`: names, their settings with the original's values
 * (docs/algorithm.md#presets) as defaults, the `name:key=value:…` syntax of `--compare`, and the
 * factory that builds a `GradientTransformation` (with the weight-decay convention of
 * `weight_decay.ts` applied).
 * @module
 */
import { parseDecimal, parseDigits } from "../cli/flags.ts";
import { chain, type GradientTransformation } from "../optim/base.ts";
import { adam, momentum, rmsprop, sgd } from "../optim/alias.ts";
import { hessianFree } from "../optim/hessian_free.ts";
import { kfac } from "../optim/kfac.ts";
import { mlhf } from "../optim/mlhf/optimizer.ts";
import { addDecayedWeights } from "../optim/transforms.ts";
import { type MetaWeights, MLHF_DEFAULTS, type MlhfOptions } from "../optim/mlhf/direction.ts";
import { type Safeguard, SAFEGUARDS } from "../optim/mlhf/safeguard.ts";
import type { KindMap } from "../optim/mlhf/kind_map.ts";
import type { ParamKind } from "../param_kinds.ts";
import type { Params } from "../tree.ts";
import { decayMask, usesWeightDecay, type WeightDecay } from "./weight_decay.ts";

/** Optimizer names accepted by `--optimizer` and `--compare`. */
export const OPTIMIZER_NAMES = [
  "mlhf",
  "sgd",
  "momentum",
  "adam",
  "rmsprop",
  "hf-fixed",
  "hf-lm",
  "kfac",
] as const;
/** An optimizer name accepted by `--optimizer` and `--compare`. */
export type OptimizerName = typeof OPTIMIZER_NAMES[number];

/** Names of the numeric settings (also the keys of `--compare name:key=value`). */
export const SETTING_KEYS = [
  "lr",
  "momentum",
  "decay",
  "beta1",
  "beta2",
  "epsilon",
  "cg-iter",
  "damping",
  "lm-decay",
  "ema",
  "invert-every",
  "weight-decay",
  "safeguard",
] as const;
/** A setting's name. */
export type SettingKey = typeof SETTING_KEYS[number];
/** The settings whose values are words, not numbers. */
type WordKey = "safeguard";
/**
 * Settings by name (absent: the default): numbers, except `safeguard` (MLHF's safeguard,
 * docs/algorithm.md#safeguard; absent: `none`, the original).
 */
export type Settings =
  & Partial<Record<Exclude<SettingKey, WordKey>, number>>
  & { readonly safeguard?: Safeguard };

/** Settings an optimizer takes besides those with a default in `DEFAULT_SETTINGS`. */
const EXTRA_SETTINGS: Partial<Record<OptimizerName, readonly SettingKey[]>> = {
  mlhf: ["safeguard"],
};

/**
 * Each optimizer's settings and their defaults: the original's script values
 * (docs/algorithm.md#presets; CIFAR convnet: momentum 1e-3/0.9, Adam 1e-3, RMSprop 1e-3 decay 0.99;
 * HF(fixed) η 1e-2 λ 5e-3 K 20; HF(LM) η 1e-3 λ₀ 1 δ 0.99 K 20; K-FAC lr 0.1 damping 1 EMA 0.99
 * with its library defaults). SGD is in no script: 0.1 as `cifar10_main.py`. MLHF's η, K and λ₀
 * default to what its meta-weights were trained with. `weight-decay` is added from the convention
 * when not given.
 */
export const DEFAULT_SETTINGS: Readonly<Record<OptimizerName, Settings>> = {
  sgd: { lr: 0.1 },
  momentum: { lr: 1e-3, momentum: 0.9 },
  adam: { lr: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 },
  rmsprop: { lr: 1e-3, decay: 0.99, epsilon: 1e-10 },
  "hf-fixed": { lr: 1e-2, damping: 5e-3, "cg-iter": 20 },
  "hf-lm": { lr: 1e-3, damping: 1, "lm-decay": 0.99, "cg-iter": 20 },
  kfac: { lr: 0.1, damping: 1, ema: 0.99, momentum: 0.9, "invert-every": 10 },
  mlhf: { lr: 1, "cg-iter": MLHF_DEFAULTS.cgIterations, damping: MLHF_DEFAULTS.lambda0 },
};

/** One optimizer of a run: its name, a label (unique within a comparison) and its settings. */
export interface OptimizerSpec {
  /** The optimizer. */
  readonly name: OptimizerName;
  /** Its name in logs, reports and output directories. */
  readonly label: string;
  /** Explicit settings (presets and the command line); the rest come from the defaults. */
  readonly settings: Settings;
}

const isName = (s: string): s is OptimizerName =>
  (OPTIMIZER_NAMES as readonly string[]).includes(s);

/** The settings an optimizer accepts. */
export const settingsOf = (name: OptimizerName): SettingKey[] => [
  ...Object.keys(DEFAULT_SETTINGS[name]) as SettingKey[],
  ...EXTRA_SETTINGS[name] ?? [],
  "weight-decay",
];

/** Checks that every key is one `name` takes; throws a RangeError naming the first that is not. */
export const checkSettings = (name: OptimizerName, s: Settings): void => {
  const ok = settingsOf(name);
  for (const [k, v] of Object.entries(s)) {
    if (!(ok as string[]).includes(k)) {
      throw new RangeError(`${name}: unknown setting "${k}" (${name} takes ${ok.join(", ")})`);
    }
    if (k === "safeguard") {
      if (!(SAFEGUARDS as readonly unknown[]).includes(v)) {
        throw new RangeError(
          `${name}: safeguard must be one of ${SAFEGUARDS.join(", ")}, got ${v}`,
        );
      }
      continue;
    }
    if (!(typeof v === "number" && Number.isFinite(v) && v >= 0)) {
      throw new RangeError(`${name}: ${k} must be a non-negative number, got ${v}`);
    }
  }
};

/** Settings that count something (CG iterations, steps between inversions): positive integers. */
const INTEGER_KEYS: readonly SettingKey[] = ["cg-iter", "invert-every"];

/**
 * Parses `name[:key=value]…` items separated by commas (`adam,mlhf:lr=2:cg-iter=4`). Values are
 * decimal numbers ≥ 0; `cg-iter` and `invert-every` positive integers in plain digits.
 * @throws RangeError naming the entry and the unknown optimizer, setting or bad value (listing
 *   the settings that optimizer takes).
 */
export const parseOptimizerList = (text: string): { name: OptimizerName; settings: Settings }[] => {
  const items = text.split(",").map((s) => s.trim()).filter((s) => s.length);
  if (!items.length) throw new RangeError("expected at least one optimizer name");
  return items.map((item) => {
    const at = `entry ${JSON.stringify(item)}`;
    const [name, ...pairs] = item.split(":").map((s) => s.trim());
    if (!isName(name)) {
      throw new RangeError(
        `${at}: unknown optimizer "${name}" (one of ${OPTIMIZER_NAMES.join(", ")})`,
      );
    }
    const ok: readonly string[] = settingsOf(name);
    const takes = `${name} takes ${ok.join(", ")}`;
    const settings: Record<string, number | string> = {};
    for (const pair of pairs) {
      const m = /^([^=]*)=(.*)$/.exec(pair);
      if (!m) throw new RangeError(`${at}: expected key=value, got "${pair}" (${takes})`);
      const key = m[1].trim(), raw = m[2].trim();
      if (!ok.includes(key)) {
        throw new RangeError(`${at}: ${name} has no setting "${key}" (${takes})`);
      }
      if (key in settings) throw new RangeError(`${at}: ${key} given twice`);
      if (key === "safeguard") {
        if (!(SAFEGUARDS as readonly string[]).includes(raw)) {
          throw new RangeError(
            `${at}: safeguard: expected one of ${SAFEGUARDS.join(", ")}, got "${raw}"`,
          );
        }
        settings[key] = raw;
        continue;
      }
      const integer = INTEGER_KEYS.includes(key as SettingKey);
      const value = integer ? parseDigits(raw) : parseDecimal(raw);
      if (value === undefined || (integer ? value < 1 : value < 0)) {
        throw new RangeError(
          `${at}: ${key}: expected a ${integer ? "positive integer" : "non-negative number"}, ` +
            `got "${raw}"`,
        );
      }
      settings[key] = value;
    }
    return { name, settings: settings as Settings };
  });
};

/** Labels for a list of specs: the name, with "-2", "-3"… for repeats. */
export const labelSpecs = (
  items: readonly { name: OptimizerName; settings: Settings }[],
): OptimizerSpec[] => {
  const seen = new Map<string, number>();
  return items.map(({ name, settings }) => {
    const n = (seen.get(name) ?? 0) + 1;
    seen.set(name, n);
    return { name, settings, label: n === 1 ? name : `${name}-${n}` };
  });
};

/** MLHF's meta-weights and the options they were trained with. */
export interface MetaWeightsSource {
  /** The meta-networks, by parameter kind and role. */
  readonly weights: MetaWeights;
  /** From the file's header (K, λ₀, x₀, preconditioner and damping kinds). */
  readonly options: Partial<MlhfOptions>;
  /** η used in meta-training, if recorded. */
  readonly trainedLearningRate?: number;
  /** Where they came from, for reports ("weights/mlhf-mnist.mlhf", "untrained (seed 1)"). */
  readonly description: string;
  /** Kinds the file had no networks for that the default transfer filled (absent: none). */
  readonly defaultTransfer?: KindMap;
}

/** What a factory needs besides the spec. */
export interface BuildContext {
  /** Kind of each parameter leaf, in leaf order. */
  readonly kinds: readonly ParamKind[];
  /** The data set's weight-decay convention. */
  readonly weightDecay: WeightDecay;
  /** Required for `mlhf`. */
  readonly meta?: MetaWeightsSource;
  /** Seed of K-FAC's sampling when no step key is given. */
  readonly seed?: number;
}

/** Defaults, then MLHF's meta-weights record, then the spec; plus the weight decay. */
export const resolveSettings = (
  spec: Pick<OptimizerSpec, "name" | "settings">,
  ctx: Pick<BuildContext, "weightDecay" | "meta">,
): Required<Pick<Settings, "lr" | "weight-decay">> & Settings => {
  const fromMeta: Settings = spec.name === "mlhf" && ctx.meta
    ? {
      ...(ctx.meta.trainedLearningRate !== undefined ? { lr: ctx.meta.trainedLearningRate } : {}),
      ...(ctx.meta.options.cgIterations !== undefined
        ? { "cg-iter": ctx.meta.options.cgIterations }
        : {}),
      ...(ctx.meta.options.lambda0 !== undefined ? { damping: ctx.meta.options.lambda0 } : {}),
    }
    : {};
  const wd = usesWeightDecay(spec.name) ? ctx.weightDecay.value : 0;
  const s = { ...DEFAULT_SETTINGS[spec.name], ...fromMeta, ...spec.settings };
  return { lr: s.lr!, ...s, "weight-decay": s["weight-decay"] ?? wd };
};

/** Settings as `key=value` text, in `settingsOf` order. */
export const describeSettings = (s: Settings): string =>
  SETTING_KEYS.filter((k) => s[k] !== undefined).map((k) => `${k}=${s[k]}`).join(" ");

// deno-lint-ignore no-explicit-any
type AnyTransformation = GradientTransformation<any, Params>;

const integer = (name: string, key: string, v: number): number => {
  if (!(Number.isInteger(v) && v >= 1)) {
    throw new RangeError(`${name}: ${key} must be a positive integer, got ${v}`);
  }
  return v;
};

const base = (name: OptimizerName, s: Settings, ctx: BuildContext): AnyTransformation => {
  const learningRate = s.lr!;
  switch (name) {
    case "sgd":
      return sgd({ learningRate });
    case "momentum":
      return momentum({ learningRate, momentum: s.momentum });
    case "adam":
      return adam({ learningRate, beta1: s.beta1, beta2: s.beta2, epsilon: s.epsilon });
    case "rmsprop":
      return rmsprop({ learningRate, decay: s.decay, epsilon: s.epsilon });
    case "hf-fixed":
    case "hf-lm":
      return hessianFree({
        learningRate,
        damping: s.damping!,
        cgIterations: integer(name, "cg-iter", s["cg-iter"]!),
        xInit: "previous",
        ...(name === "hf-lm" ? { lmDecay: s["lm-decay"] } : {}),
      });
    case "kfac":
      return kfac({
        learningRate,
        damping: s.damping,
        covEmaDecay: s.ema,
        momentum: s.momentum,
        invertEvery: integer(name, "invert-every", s["invert-every"]!),
        seed: ctx.seed,
      });
    case "mlhf": {
      if (!ctx.meta) throw new Error("mlhf: no meta-weights (pass --meta-weights FILE)");
      return mlhf({
        ...ctx.meta.options,
        metaWeights: ctx.meta.weights,
        kinds: ctx.kinds,
        learningRate,
        cgIterations: integer(name, "cg-iter", s["cg-iter"]!),
        lambda0: s.damping,
        safeguard: s.safeguard ?? "none",
      });
    }
  }
};

/** A built optimizer and the settings it was built with. */
export interface BuiltOptimizer {
  /** The gradient transformation (learning rate and weight decay included). */
  readonly transform: AnyTransformation;
  /** Every setting it was built with (defaults filled in). */
  readonly settings: Settings;
  /** η, the learning rate it was built with. */
  readonly learningRate: number;
}

/** Builds the optimizer of a spec: its transformation, preceded by weight decay when wd > 0. */
export const buildOptimizer = (
  spec: Pick<OptimizerSpec, "name" | "settings">,
  ctx: BuildContext,
): BuiltOptimizer => {
  checkSettings(spec.name, spec.settings);
  const s = resolveSettings(spec, ctx);
  const inner = base(spec.name, s, ctx);
  const wd = s["weight-decay"];
  const transform = wd > 0
    ? chain<Params>(addDecayedWeights<Params>(wd, decayMask(ctx.kinds, ctx.weightDecay)), inner)
    : inner;
  return { transform, settings: s, learningRate: s.lr };
};
