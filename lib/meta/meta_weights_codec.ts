/**
 * The meta-weights file (`.mlhf`): MLHF's meta-networks plus a record of how they were trained.
 *
 * It is a tensor file (`lib/run/tensor_file.ts`) of kind `mlhf-meta-weights` whose tree is
 * `{ [kind]: { damping?, precond?, x0? } }`, each network `{ layers: [{ kernel, bias }, { kernel,
 * bias }], head: { kernel, bias } }` with kernels [3+4, 16], [4+4, 16] and [4, 1]. Its JSON `meta` is
 * `{ format: "mlhf-meta-weights", version: 1, kinds, roles, options, provenance }`: `options` are
 * the MLHF settings the weights were trained with (K, xInit, preconditioner, damping, λ₀, η, T, …)
 * and `provenance` the command, seed, commit and wall time that produced them. Written atomically;
 * a wrong version, kind, role or shape is an error naming it.
 *
 * The file keeps the original's names: the λ network's role is `damping` and the damping mode's
 * option is `damping` (`rnn | fixed`). In code they are the role `lambda` and the option
 * `dampingMode`; `encodeMetaWeights` and `decodeMetaWeights` translate at this boundary only.
 *
 * This module is the pure codec (bytes in, bytes out; the browser page uses it); reading and
 * writing files is `meta_weights_file.ts`, which re-exports it.
 * @module
 */
import { E, t, tf } from "../_deps.ts";
import {
  decodeTree,
  encodeTree,
  encodeTreeAsync,
  TensorFileError,
  type TreeValue,
} from "../run/tensor_file.ts";
import { describeDecodeErrors } from "../run/tensor_file.ts";
import { LSTM_INPUTS, LSTM_UNITS, type LstmNetWeights } from "../optim/mlhf/lstm.ts";
import type { MetaWeights, MlhfOptions, Role } from "../optim/mlhf/direction.ts";
import { isParamKind, PARAM_KINDS, type ParamKind } from "../param_kinds.ts";

/** The `kind` of a meta-weights tensor file. */
export const META_WEIGHTS_KIND = "mlhf-meta-weights";
/** The version of the meta-weights format this code writes. */
export const META_WEIGHTS_VERSION = 1;

/** The file's name of each role (the original's). */
type FileRole = "damping" | "precond" | "x0";
const FILE_ROLE: Record<Role, FileRole> = { lambda: "damping", precond: "precond", x0: "x0" };
const CODE_ROLE: Record<FileRole, Role> = { damping: "lambda", precond: "precond", x0: "x0" };
const ROLES = ["lambda", "precond", "x0"] as const;

const Roles = t.array(t.keyof({ damping: null, precond: null, x0: null }));
const Options = t.partial({
  cgIterations: t.number,
  lambda0: t.number,
  xInit: t.keyof({ previous: null, gradient: null, rnn: null }),
  preconditioner: t.keyof({ rnn: null, none: null }),
  damping: t.keyof({ rnn: null, fixed: null }),
  featureNorm: t.keyof({ raw: null, rms: null }),
});
/** The JSON header's `meta`: what the file holds and how it was trained. */
export interface MetaWeightsHeader {
  /** Always {@link META_WEIGHTS_KIND}. */
  format: typeof META_WEIGHTS_KIND;
  /** The format's version ({@link META_WEIGHTS_VERSION} when written). */
  version: number;
  /** The parameter kinds that have meta-networks, in file order. */
  kinds: string[];
  /** The roles each kind has networks for, by the original's names. */
  roles: ("damping" | "precond" | "x0")[];
  /** The MLHF options the weights were trained with. */
  options: {
    cgIterations?: number;
    lambda0?: number;
    xInit?: "previous" | "gradient" | "rnn";
    preconditioner?: "rnn" | "none";
    damping?: "rnn" | "fixed";
    featureNorm?: "raw" | "rms";
  };
  /** Meta-training settings beyond the MLHF options. */
  training?: { [key: string]: unknown };
  /** Command, seed, commit, wall time. */
  provenance?: { [key: string]: unknown };
}
/** The io-ts codec of {@link MetaWeightsHeader}. */
export const MetaWeightsHeader: t.Type<MetaWeightsHeader, unknown> = t.intersection([
  t.type({
    format: t.literal(META_WEIGHTS_KIND),
    version: t.number,
    kinds: t.array(t.string),
    roles: Roles,
    options: Options,
  }),
  t.partial({ training: t.UnknownRecord, provenance: t.UnknownRecord }),
]);

/** A meta-weights file's contents. The caller owns the tensors. */
export interface MetaWeightsFile {
  /** The meta-networks, by kind and role. */
  readonly weights: MetaWeights;
  /** The decoded header. */
  readonly header: MetaWeightsHeader;
}

/** What was trained, and how (recorded in the header). */
export interface MetaWeightsRecord {
  /** The MLHF options the weights were trained with. */
  readonly options: Partial<MlhfOptions>;
  /** Meta-training settings beyond the MLHF options (T, η, meta_lr, keepProb, replay mode, …). */
  readonly training?: Record<string, unknown>;
  /** Command, seed, commit, wall time. */
  readonly provenance?: Record<string, unknown>;
}

const rolesOf = (w: MetaWeights): FileRole[] => {
  const set = new Set<FileRole>();
  for (const nets of Object.values(w)) for (const r of ROLES) if (nets?.[r]) set.add(FILE_ROLE[r]);
  return [...set];
};

/** The options as the header stores them (`dampingMode` under the original's `damping`). */
const fileOptions = (
  { dampingMode, ...rest }: Partial<MlhfOptions>,
): MetaWeightsHeader["options"] =>
  dampingMode === undefined ? rest : { ...rest, damping: dampingMode };
/** The header's options as code names them (`damping` is `dampingMode`). */
export const headerOptions = (h: MetaWeightsHeader): Partial<MlhfOptions> => {
  const { damping, ...rest } = h.options;
  return damping === undefined ? rest : { ...rest, dampingMode: damping };
};

/** The file's header and tensor tree for meta-weights and their record. */
const fileTree = (
  w: MetaWeights,
  record: MetaWeightsRecord,
): { header: MetaWeightsHeader; ordered: TreeValue } => {
  const kinds = PARAM_KINDS.filter((k) => w[k]);
  const header: MetaWeightsHeader = {
    format: META_WEIGHTS_KIND,
    version: META_WEIGHTS_VERSION,
    kinds,
    roles: rolesOf(w),
    options: fileOptions(record.options),
    ...(record.training ? { training: record.training } : {}),
    ...(record.provenance ? { provenance: record.provenance } : {}),
  };
  const ordered = Object.fromEntries(kinds.map((k) => {
    const nets = w[k]!;
    return [k, Object.fromEntries(ROLES.flatMap((r) => nets[r] ? [[FILE_ROLE[r], nets[r]]] : []))];
  }));
  return { header, ordered: ordered as unknown as TreeValue };
};

/**
 * Encodes meta-weights and their record into the file's bytes, reading the tensors synchronously
 * (backends that can: cpu, wasm, native; see {@link encodeMetaWeightsAsync}).
 */
export const encodeMetaWeights = (w: MetaWeights, record: MetaWeightsRecord): Uint8Array => {
  const { header, ordered } = fileTree(w, record);
  return encodeTree(META_WEIGHTS_KIND, ordered, header);
};

/** {@link encodeMetaWeights} reading the tensors with `await` (any backend, webgpu included). */
export const encodeMetaWeightsAsync = (
  w: MetaWeights,
  record: MetaWeightsRecord,
): Promise<Uint8Array> => {
  const { header, ordered } = fileTree(w, record);
  return encodeTreeAsync(META_WEIGHTS_KIND, ordered, header);
};

const expectShape = (file: string, where: string, t: unknown, shape: number[]): tf.Tensor => {
  if (!(t instanceof tf.Tensor)) throw new TensorFileError(file, `${where}: expected a tensor`);
  if (!tf.util.arraysEqual(t.shape, shape)) {
    throw new TensorFileError(file, `${where}: expected shape [${shape}], found [${t.shape}]`);
  }
  return t;
};

const checkNet = (file: string, where: string, v: unknown): LstmNetWeights => {
  const n = v as { layers?: unknown[]; head?: { kernel?: unknown; bias?: unknown } };
  if (!n || !Array.isArray(n.layers) || n.layers.length !== 2 || !n.head) {
    throw new TensorFileError(file, `${where}: expected { layers: [2 layers], head }`);
  }
  const layer = (l: number, inputs: number) => {
    const x = n.layers![l] as { kernel?: unknown; bias?: unknown };
    return {
      kernel: expectShape(file, `${where}/layers/${l}/kernel`, x?.kernel, [
        inputs + LSTM_UNITS,
        4 * LSTM_UNITS,
      ]) as tf.Tensor2D,
      bias: expectShape(file, `${where}/layers/${l}/bias`, x?.bias, [
        4 * LSTM_UNITS,
      ]) as tf.Tensor1D,
    };
  };
  return {
    layers: [layer(0, LSTM_INPUTS), layer(1, LSTM_UNITS)],
    head: {
      kernel: expectShape(file, `${where}/head/kernel`, n.head.kernel, [
        LSTM_UNITS,
        1,
      ]) as tf.Tensor2D,
      bias: expectShape(file, `${where}/head/bias`, n.head.bias, [1]) as tf.Tensor1D,
    },
  };
};

/** Decodes a meta-weights file, checking its version, kinds, roles and every shape. */
export const decodeMetaWeights = (bytes: Uint8Array, file: string): MetaWeightsFile => {
  const d = decodeTree(bytes, file, { kind: META_WEIGHTS_KIND });
  const disposeAll = () => tf.dispose(collect(d.value));
  try {
    const h = MetaWeightsHeader.decode(d.meta);
    if (E.isLeft(h)) throw new TensorFileError(file, describeDecodeErrors(h.left, "meta"));
    const header = h.right;
    if (header.version !== META_WEIGHTS_VERSION) {
      throw new TensorFileError(
        file,
        `meta.version: expected ${META_WEIGHTS_VERSION}, found ${header.version} (this mlhf reads version ${META_WEIGHTS_VERSION} only)`,
      );
    }
    const value = d.value as Record<string, Record<string, unknown>>;
    const weights: Record<string, { -readonly [R in Role]?: LstmNetWeights }> = {};
    for (const [kind, nets] of Object.entries(value ?? {})) {
      if (!isParamKind(kind)) {
        throw new TensorFileError(
          file,
          `kind '${kind}': expected one of ${PARAM_KINDS.join(", ")}`,
        );
      }
      weights[kind] = {};
      for (const [role, net] of Object.entries(nets ?? {})) {
        if (role !== "damping" && role !== "precond" && role !== "x0") {
          throw new TensorFileError(
            file,
            `${kind}/${role}: expected a role damping, precond or x0`,
          );
        }
        weights[kind][CODE_ROLE[role]] = checkNet(file, `${kind}/${role}`, net);
      }
    }
    const listed = [...header.kinds].sort().join();
    if (Object.keys(weights).sort().join() !== listed) {
      throw new TensorFileError(
        file,
        `meta.kinds lists [${header.kinds}] but the file holds [${Object.keys(weights)}]`,
      );
    }
    return { weights: weights as MetaWeights, header };
  } catch (e) {
    disposeAll();
    throw e;
  }
};

const collect = (v: unknown, out: tf.Tensor[] = []): tf.Tensor[] => {
  if (v instanceof tf.Tensor) out.push(v);
  else if (Array.isArray(v)) v.forEach((x) => collect(x, out));
  else if (v && typeof v === "object") Object.values(v).forEach((x) => collect(x, out));
  return out;
};

/** The kinds a file covers, for messages. */
export const kindsOf = (w: MetaWeights): ParamKind[] => PARAM_KINDS.filter((k) => w[k]);
