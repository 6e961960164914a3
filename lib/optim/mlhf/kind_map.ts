/**
 * Transfer of meta-weights across parameter kinds: MLHF's networks are coordinatewise, so the
 * networks meta-trained for one kind can drive the coordinates of another (the MLP's `dense/kernel`
 * networks applied to a convnet's `conv2d/kernel`). A map is explicit data, `target=source` pairs;
 * every mapped kind keeps its own LSTM states, only the weights are shared.
 * @module
 */
import type { MetaWeights } from "./direction.ts";
import { isParamKind, PARAM_KINDS, type ParamKind } from "../../param_kinds.ts";

/** Pairs [target, source]: the target kind uses the source kind's networks. */
export type KindMap = readonly (readonly [ParamKind, ParamKind])[];

/**
 * Parses `"conv2d/kernel=dense/kernel,conv2d/bias=dense/bias"` (empty: no mapping). Throws naming
 * the pair and the known kinds when a kind is unknown, a pair is malformed or a target repeats.
 */
export const parseKindMap = (text: string): KindMap => {
  if (text.trim() === "") return [];
  const known = PARAM_KINDS.join(", ");
  const seen = new Set<string>();
  return text.split(",").map((pair) => {
    const parts = pair.trim().split("=");
    if (parts.length !== 2) {
      throw new Error(`kind map: '${pair}' is not target=source (e.g. conv2d/kernel=dense/kernel)`);
    }
    const [target, source] = parts.map((p) => p.trim());
    for (const k of [target, source]) {
      if (!isParamKind(k)) throw new Error(`kind map: unknown kind '${k}' in '${pair}' (${known})`);
    }
    if (seen.has(target)) throw new Error(`kind map: '${target}' is mapped twice`);
    seen.add(target);
    return [target as ParamKind, source as ParamKind] as const;
  });
};

/**
 * Meta-weights where each target kind has its source kind's networks. The source must have
 * networks and the target must have none (a map never silently replaces trained networks).
 */
export const mapMetaWeightKinds = (meta: MetaWeights, map: KindMap): MetaWeights => {
  const out: { -readonly [K in ParamKind]?: MetaWeights[K] } = { ...meta };
  for (const [target, source] of map) {
    const nets = meta[source];
    if (!nets) {
      throw new Error(
        `kind map ${target}=${source}: the meta-weights have no networks for '${source}' ` +
          `(they have: ${Object.keys(meta).join(", ") || "none"})`,
      );
    }
    if (meta[target]) {
      throw new Error(
        `kind map ${target}=${source}: the meta-weights already have networks for '${target}'`,
      );
    }
    out[target] = nets;
  }
  return out;
};

/** The map as text, for reports: "conv2d/kernel←dense/kernel, conv2d/bias←dense/bias". */
export const describeKindMap = (map: KindMap): string =>
  map.map(([t, s]) => `${t}←${s}`).join(", ");

/**
 * The default transfer: for each kind, the trained kinds whose networks drive it when the
 * meta-weights have none for it and no explicit map names it, in order of preference. Kernels take
 * kernels' networks; biases and batch-norm scales and offsets (vectors added or multiplied per
 * channel) take biases' networks.
 */
export const DEFAULT_TRANSFER: Readonly<Record<ParamKind, readonly ParamKind[]>> = {
  "conv2d/kernel": ["dense/kernel"],
  "conv2d/bias": ["dense/bias", "batch/beta"],
  "batch/gamma": ["dense/bias", "conv2d/bias", "batch/beta"],
  "batch/beta": ["dense/bias", "conv2d/bias", "batch/gamma"],
  "dense/kernel": ["conv2d/kernel"],
  "dense/bias": ["conv2d/bias", "batch/beta"],
};

/**
 * The default transfer's pairs for a model: each kind the model `needs` that is neither `trained`
 * (has networks in the file) nor a target of the `explicit` map gets the first of its
 * `DEFAULT_TRANSFER` sources that is trained. A kind with no trained source is left out (MLHF's
 * init then names it). Pairs come in the order of `needs`' first appearances.
 */
export const defaultKindMap = (
  trained: readonly ParamKind[],
  needs: readonly ParamKind[],
  explicit: KindMap = [],
): KindMap => {
  const mapped = new Set(explicit.map(([t]) => t));
  const out: (readonly [ParamKind, ParamKind])[] = [];
  for (const kind of new Set(needs)) {
    if (trained.includes(kind) || mapped.has(kind)) continue;
    const source = DEFAULT_TRANSFER[kind].find((s) => trained.includes(s));
    if (source) out.push([kind, source] as const);
  }
  return out;
};

/** The one line printed when the default transfer applies (empty map: none). */
export const describeDefaultTransfer = (map: KindMap): string =>
  map.length
    ? `MLHF: the meta-weights have no networks for ${
      map.map(([t]) => t).join(", ")
    }; default transfer: ${describeKindMap(map)} (--meta-kind-map overrides)`
    : "";
