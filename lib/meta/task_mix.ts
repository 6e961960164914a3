/**
 * The meta-training task distribution (`deno task train --tasks …`, docs/algorithm.md#task-mix;
 * not in the original, which meta-trains on one network): a mix of optimizee families (MLPs of
 * several widths, depths and activations, small CUDA-convnets) and the augmentation drawn per task
 * (per-tensor weight-scale reparameterization, label and pixel permutations, batch size). Pure: a
 * task is plain data drawn from a key and its draw number, so the sampler's whole state is the
 * number of tasks drawn, and the same seed gives the same tasks, scales and permutations.
 * @module
 */
import { foldIn, type Key, permutation, stream } from "../prng.ts";

/** An optimizee family of the mix. */
export type TaskFamily =
  | {
    readonly kind: "mlp";
    /** Hidden widths. */
    readonly hidden: readonly number[];
    readonly activation: "relu" | "sigmoid" | "tanh";
  }
  | {
    readonly kind: "convnet";
    /** Filters of conv1 and conv2. */
    readonly filters: readonly [number, number];
    /** Units of local3 and local4. */
    readonly units: readonly [number, number];
  };

/** How each task is augmented (docs/algorithm.md#task-augmentation). */
export interface TaskAugmentation {
  /**
   * The range [lo, hi] of the log-uniform per-tensor scale s of the reparameterization θ = s·φ
   * ([1, 1]: none).
   */
  readonly scaleRange: readonly [number, number];
  /** Probability that a task permutes the class labels. */
  readonly permuteLabels: number;
  /** Probability that a task permutes the pixels (one fixed permutation of the flattened image). */
  readonly permutePixels: number;
  /** The batch sizes a task draws from (uniformly). */
  readonly batchSizes: readonly number[];
}

/** One drawn task: what the optimizee is and how its problem is augmented. Plain JSON. */
export interface TaskSpec {
  /** The draw number (0, 1, 2, … within a run). */
  readonly id: number;
  /** The family's index in the mix. */
  readonly family: number;
  /** The family's name (`familyName`). */
  readonly name: string;
  /** Its minibatch size. */
  readonly batchSize: number;
  /** Whether labels are permuted. */
  readonly permuteLabels: boolean;
  /** Whether pixels are permuted. */
  readonly permutePixels: boolean;
  /** The task's key: its initialization, scales and permutations derive from it. */
  readonly key: readonly [number, number];
}

const ACTIVATIONS = ["relu", "sigmoid", "tanh"] as const;

/** A family's name in the `--tasks` syntax: `mlp-64x32-relu`, `convnet-8x16-32x16`. */
export const familyName = (f: TaskFamily): string =>
  f.kind === "mlp"
    ? `mlp-${f.hidden.join("x")}-${f.activation}`
    : `convnet-${f.filters.join("x")}-${f.units.join("x")}`;

/**
 * The mix `--tasks default` names: five MLPs (widths 20 to 128, one to three hidden layers,
 * sigmoid, ReLU and tanh) and one small convnet (its conv kinds get their own meta-networks).
 */
export const DEFAULT_TASK_MIX =
  "mlp-20-sigmoid,mlp-32-relu,mlp-64x32-tanh,mlp-128-relu,mlp-32x32x32-sigmoid,convnet-8x16-32x16";

const positiveInts = (s: string): number[] | null => {
  const parts = s.split("x");
  return parts.every((p) => /^[1-9][0-9]*$/.test(p)) ? parts.map(Number) : null;
};

/**
 * Parses a `--tasks` mix: comma-separated families `mlp-<widths>-<relu|sigmoid|tanh>` (widths
 * joined by `x`, e.g. `mlp-64x32-relu`) or `convnet-<f1>x<f2>-<u1>x<u2>`; `default` stands for
 * {@link DEFAULT_TASK_MIX}. Throws a RangeError naming the entry and the expected syntax.
 */
export const parseTaskMix = (text: string): TaskFamily[] => {
  const entries = text.split(",").map((s) => s.trim()).flatMap((s) =>
    s === "default" ? DEFAULT_TASK_MIX.split(",") : [s]
  );
  if (entries.length === 0 || entries.some((e) => e === "")) {
    throw new RangeError(`--tasks: empty entry in '${text}'`);
  }
  return entries.map((e) => {
    const [kind, a, b, ...rest] = e.split("-");
    if (kind === "mlp" && rest.length === 0 && a !== undefined && b !== undefined) {
      const hidden = positiveInts(a);
      if (hidden && (ACTIVATIONS as readonly string[]).includes(b)) {
        return { kind, hidden, activation: b as typeof ACTIVATIONS[number] };
      }
    }
    if (kind === "convnet" && rest.length === 0 && a !== undefined && b !== undefined) {
      const f = positiveInts(a), u = positiveInts(b);
      if (f?.length === 2 && u?.length === 2) {
        return { kind, filters: [f[0], f[1]] as const, units: [u[0], u[1]] as const };
      }
    }
    throw new RangeError(
      `--tasks: '${e}' is not a task family: expected mlp-<widths>-<relu|sigmoid|tanh> ` +
        `(e.g. mlp-64x32-relu), convnet-<f1>x<f2>-<u1>x<u2> (e.g. convnet-8x16-32x16) or default`,
    );
  });
};

/** Checks an augmentation's settings; throws a RangeError naming the field and value. */
export const checkAugmentation = (a: TaskAugmentation): void => {
  const [lo, hi] = a.scaleRange;
  if (!(lo > 0 && hi >= lo && Number.isFinite(hi))) {
    throw new RangeError(`scaleRange must be 0 < lo ≤ hi < ∞, got [${lo}, ${hi}]`);
  }
  for (
    const [name, p] of [["permuteLabels", a.permuteLabels], ["permutePixels", a.permutePixels]]
  ) {
    if (!(Number(p) >= 0 && Number(p) <= 1)) {
      throw new RangeError(`${name} must be a probability in [0, 1], got ${p}`);
    }
  }
  if (a.batchSizes.length === 0 || !a.batchSizes.every((b) => Number.isInteger(b) && b >= 1)) {
    throw new RangeError(`batchSizes must be positive integers, got [${a.batchSizes.join(", ")}]`);
  }
};

/** The key of a run's draw number `id` (the sampler's only state is how many were drawn). */
const taskKey = (key: Key, id: number): Key => foldIn(foldIn(key, 0x7a5c), id);

/** Draws task number `id` of a run from the mix (a pure function of key and id). */
export const sampleTask = (
  key: Key,
  id: number,
  mix: readonly TaskFamily[],
  aug: TaskAugmentation,
): TaskSpec => {
  if (mix.length === 0) throw new RangeError("sampleTask: the task mix is empty");
  const k = taskKey(key, id);
  const r = stream(foldIn(k, 1));
  const family = Math.floor(r() * mix.length);
  const batchSize = aug.batchSizes[Math.floor(r() * aug.batchSizes.length)];
  const permuteLabels = r() < aug.permuteLabels;
  const permutePixels = r() < aug.permutePixels;
  return {
    id,
    family,
    name: familyName(mix[family]),
    batchSize,
    permuteLabels,
    permutePixels,
    key: [k[0], k[1]],
  };
};

/**
 * The per-tensor scales s of task `t` for its `leaves` parameter tensors: log-uniform in `range`
 * (all 1 when the range is [1, 1]).
 */
export const taskScales = (
  t: TaskSpec,
  leaves: number,
  range: readonly [number, number],
): number[] => {
  const r = stream(foldIn(t.key as Key, 2));
  const [lo, hi] = [Math.log(range[0]), Math.log(range[1])];
  return Array.from({ length: leaves }, () => Math.exp(lo + (hi - lo) * r()));
};

/** The label permutation of task `t` (new label = perm[old]), or null when it keeps labels. */
export const labelPermutation = (t: TaskSpec, classes: number): Int32Array | null =>
  t.permuteLabels ? permutation(foldIn(t.key as Key, 3), classes) : null;

/**
 * The pixel permutation of task `t` over the `size` values of one flattened image (new value j =
 * old value perm[j]), or null when it keeps pixels.
 */
export const pixelPermutation = (t: TaskSpec, size: number): Int32Array | null =>
  t.permutePixels ? permutation(foldIn(t.key as Key, 4), size) : null;

/** The key of task `t`'s initial parameters. */
export const initKey = (t: TaskSpec): Key => foldIn(t.key as Key, 5);
