/**
 * A versioned binary format for named tensors plus a JSON header, and helpers to store any nested
 * value of tensors, numbers, strings, booleans, arrays and plain objects in it (optimizer states,
 * replay buffers, parameter trees, run metadata).
 *
 * Layout (version 1), all integers little-endian:
 *
 * | bytes | contents |
 * | --- | --- |
 * | 0–7 | magic `MLHFTNSR` (ASCII) |
 * | 8–11 | uint32 format version (1) |
 * | 12–15 | uint32 header length H in bytes |
 * | 16 … 16+H | UTF-8 JSON header (below) |
 * | zero padding | up to the next multiple of 8: the start of the data section |
 * | data section | each tensor's elements, little-endian, at its `offset` (a multiple of 8) |
 *
 * The file ends exactly at the end of the last tensor's bytes. The header is
 * `{ version, kind, meta, tensors: [{ path, shape, dtype, offset, length }], tree? }`: `kind` names
 * what the file holds (checked on load), `meta` is any JSON value, `offset` and `length` are in
 * bytes relative to the data section, `dtype` is `float32` or `int32` (4 bytes per element), and
 * `tree` is the structure skeleton written by `encodeTree` (a `Skeleton`, below).
 *
 * Tree paths join keys and array indices with `/`; inside a key `~` is written `~0` and `/` is
 * written `~1` (JSON Pointer's escapes), so every leaf has a distinct path. A tensor at the root has
 * the path "".
 * @module
 */
import { E, t, tf } from "../_deps.ts";

/** The 8 bytes every tensor file starts with. */
export const TENSOR_FILE_MAGIC = "MLHFTNSR";
/** The format version this module writes (and the only one it reads). */
export const TENSOR_FILE_VERSION = 1;
const PREFIX_BYTES = 16;
const ALIGN = 8;

/** Element types the format stores (4 bytes each). */
export type TensorDtype = "float32" | "int32";

/** A tensor and the path it is stored under. */
export interface TensorEntry {
  /** The path (`/`-separated names) it is stored under. */
  readonly path: string;
  /** The tensor. */
  readonly tensor: tf.Tensor;
}

/** A malformed tensor file or an unstorable value: the message names the file and the field. */
export class TensorFileError extends Error {
  /** The error's name (`TensorFileError`). */
  override name = "TensorFileError";
  /** A problem with `file` described by `message` (the message is prefixed with the file). */
  constructor(readonly file: string, message: string, options?: ErrorOptions) {
    super(`${file}: ${message}`, options);
  }
}

// ---------------------------------------------------------------------------------------------
// Header codec

const NonNegativeInt = new t.Type<number, number, unknown>(
  "non-negative integer",
  (u): u is number => typeof u === "number" && Number.isSafeInteger(u) && u >= 0,
  (u, c) =>
    typeof u === "number" && Number.isSafeInteger(u) && u >= 0 ? t.success(u) : t.failure(u, c),
  t.identity,
);

/** The structure of a stored tree: JSON values, with tensors, odd numbers and objects tagged. */
export type Skeleton =
  | number
  | string
  | boolean
  | null
  | Skeleton[]
  | { $tensor: string }
  | { $number: "NaN" | "Infinity" | "-Infinity" | "-0" }
  | { $undefined: 1 }
  | { $object: [string, Skeleton][] };

/** io-ts codec of `Skeleton`. */
export const SkeletonCodec: t.Type<Skeleton> = t.recursion("Skeleton", () =>
  t.union([
    t.number,
    t.string,
    t.boolean,
    t.null,
    t.array(SkeletonCodec),
    t.type({ $tensor: t.string }),
    t.type({ $number: t.keyof({ NaN: null, Infinity: null, "-Infinity": null, "-0": null }) }),
    t.type({ $undefined: t.literal(1) }),
    t.type({ $object: t.array(t.tuple([t.string, SkeletonCodec])) }),
  ]));

/** One tensor's entry in the header. */
export interface TensorRecord {
  /** The path the tensor is stored under. */
  path: string;
  /** Its shape. */
  shape: number[];
  /** Its element type. */
  dtype: TensorDtype;
  /** Byte offset of its values in the data section. */
  offset: number;
  /** Byte length of its values. */
  length: number;
}
/** The io-ts codec of {@link TensorRecord}. */
const TensorRecord: t.Type<TensorRecord, unknown> = t.type({
  path: t.string,
  shape: t.array(NonNegativeInt),
  dtype: t.keyof({ float32: null, int32: null }),
  offset: NonNegativeInt,
  length: NonNegativeInt,
});

const Header = t.intersection([
  t.type({
    version: NonNegativeInt,
    kind: t.string,
    meta: t.unknown,
    tensors: t.array(TensorRecord),
  }),
  t.partial({ tree: SkeletonCodec }),
]);
/** The decoded JSON header. */
export type TensorFileHeader = t.TypeOf<typeof Header>;

/**
 * One line per failure, `field: expected T, found V`, keeping only the deepest failures (inside a
 * union, the branch that matched furthest names the real problem).
 */
export const describeDecodeErrors = (errors: t.Errors, root = "header"): string => {
  const located = errors.map((e) => {
    // Unions and intersections add their member index to the context: not a field of the value.
    const keys = e.context
      .filter((_c, j) => j > 0 && !BRANCHING.has(tagOf(e.context[j - 1].type)))
      .map((c) => c.key);
    const field = keys.reduce((s, k) => (/^\d+$/.test(k) ? `${s}[${k}]` : `${s}.${k}`), root);
    // A leaf that failed every member of a union reports the union ("number | null").
    const [parent, last] = e.context.slice(-2);
    const type = parent && tagOf(parent.type) === "UnionType" ? parent.type : last?.type;
    const expected = (type?.name ?? "?").replace(/^\((.*)\)$/, "$1");
    const text = `${field}: expected ${expected}, found ${show(e.value)}`;
    return { depth: keys.length, present: e.value !== undefined, text };
  });
  // The failures that got furthest; among those, a value that is there beats a missing field.
  const deepest = Math.max(...located.map((l) => l.depth));
  let best = located.filter((l) => l.depth === deepest);
  if (best.some((l) => l.present)) best = best.filter((l) => l.present);
  const lines = [...new Set(best.map((l) => l.text))];
  return lines.length > 3
    ? `${lines.slice(0, 3).join("; ")} (and ${lines.length - 3} more)`
    : lines.join("; ");
};

const BRANCHING = new Set(["UnionType", "IntersectionType"]);
/** A codec's tag, looking through `t.recursion` to the codec it wraps. */
const tagOf = (type: t.Decoder<unknown, unknown>): string => {
  const c = type as unknown as { _tag?: string; type?: t.Decoder<unknown, unknown> };
  return c._tag === "RecursiveType" && c.type ? tagOf(c.type) : c._tag ?? "";
};

const show = (u: unknown): string => {
  const s = u === undefined ? "nothing" : JSON.stringify(u) ?? String(u);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
};

// ---------------------------------------------------------------------------------------------
// Encoding

const LITTLE_ENDIAN = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;
const align = (n: number): number => Math.ceil(n / ALIGN) * ALIGN;
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Encodes tensors under their paths with a JSON header.
 *
 * @param kind what the file holds (e.g. "checkpoint"); `decodeTensors` can require it.
 * @param meta any JSON value (finite numbers only).
 * @param entries the tensors (float32 or int32) and their distinct paths.
 */
export const encodeTensors = (
  kind: string,
  meta: unknown,
  entries: readonly TensorEntry[],
): Uint8Array => encodeWithTree(kind, meta, entries, undefined);

const encodeWithTree = (
  kind: string,
  meta: unknown,
  entries: readonly TensorEntry[],
  tree: Skeleton | undefined,
  read?: readonly tf.TypedArray[],
): Uint8Array => {
  assertJson(meta, "meta");
  const seen = new Set<string>();
  let cursor = 0;
  const records: TensorRecord[] = entries.map(({ path, tensor }) => {
    if (seen.has(path)) throw new TypeError(`encodeTensors: duplicate path "${path}"`);
    seen.add(path);
    if (!(tensor instanceof tf.Tensor)) {
      throw new TypeError(`encodeTensors: "${path}" is not a tensor`);
    }
    if (tensor.dtype !== "float32" && tensor.dtype !== "int32") {
      throw new TypeError(
        `encodeTensors: "${path}" has dtype ${tensor.dtype}; expected float32 or int32`,
      );
    }
    const offset = align(cursor);
    const length = tensor.size * 4;
    cursor = offset + length;
    return { path, shape: [...tensor.shape], dtype: tensor.dtype, offset, length };
  });
  const header: TensorFileHeader = {
    version: TENSOR_FILE_VERSION,
    kind,
    meta,
    tensors: records,
    ...(tree === undefined ? {} : { tree }),
  };
  const headerBytes = encoder.encode(JSON.stringify(header));
  const dataStart = align(PREFIX_BYTES + headerBytes.length);
  const out = new Uint8Array(dataStart + cursor);
  out.set(encoder.encode(TENSOR_FILE_MAGIC), 0);
  const view = new DataView(out.buffer);
  view.setUint32(8, TENSOR_FILE_VERSION, true);
  view.setUint32(12, headerBytes.length, true);
  out.set(headerBytes, PREFIX_BYTES);
  entries.forEach(({ tensor }, i) => {
    const raw = (read?.[i] ?? tensor.dataSync()) as Float32Array | Int32Array | Uint8Array;
    // The cpu backend's Cast of a bool tensor to float32 keeps its byte array under the float32
    // dtype (docs/tfjs-notes.md#memory): convert, so every record holds its 4-byte values.
    const values = raw instanceof Uint8Array
      ? (tensor.dtype === "int32" ? Int32Array.from(raw) : Float32Array.from(raw))
      : raw;
    const at = dataStart + records[i].offset;
    if (LITTLE_ENDIAN) {
      out.set(new Uint8Array(values.buffer, values.byteOffset, records[i].length), at);
    } else {
      const f = values instanceof Int32Array;
      values.forEach((v, j) =>
        f ? view.setInt32(at + 4 * j, v, true) : view.setFloat32(at + 4 * j, v, true)
      );
    }
  });
  return out;
};

/** Throws unless `u` survives JSON unchanged (finite numbers, no tensors, functions or cycles). */
const assertJson = (u: unknown, where: string, depth = 0): void => {
  if (depth > 200) throw new TypeError(`${where}: nested too deeply (a cycle?)`);
  if (u === null || typeof u === "string" || typeof u === "boolean" || u === undefined) return;
  if (typeof u === "number") {
    if (!Number.isFinite(u)) {
      throw new TypeError(`${where}: ${u} is not valid JSON; store it with encodeTree`);
    }
    return;
  }
  if (Array.isArray(u)) return u.forEach((x, i) => assertJson(x, `${where}[${i}]`, depth + 1));
  if (typeof u === "object" && isPlainObject(u)) {
    for (const [k, v] of Object.entries(u)) assertJson(v, `${where}.${k}`, depth + 1);
    return;
  }
  throw new TypeError(`${where}: a ${describeType(u)} is not a JSON value`);
};

// ---------------------------------------------------------------------------------------------
// Decoding

/** What `decodeTensors` returns: the caller owns (and disposes) the tensors. */
export interface DecodedTensors {
  /** The file's kind (what it holds, e.g. a checkpoint). */
  readonly kind: string;
  /** The header's JSON metadata. */
  readonly meta: unknown;
  /** The tensors by path. */
  readonly tensors: Map<string, tf.Tensor>;
  /** The structure skeleton, for files written by `encodeTree`. */
  readonly tree?: Skeleton;
}

/** Options of `decodeTensors`. */
export interface DecodeOptions {
  /** The `kind` the file must have. */
  readonly kind?: string;
}

/**
 * Decodes a tensor file, validating everything before any tensor is made.
 *
 * @param bytes the whole file.
 * @param file the file's name, for error messages.
 * @throws TensorFileError for bad magic, an unsupported version, a malformed header, a wrong kind,
 *   a shape/length mismatch, or truncated or overlong data.
 */
export const decodeTensors = (
  bytes: Uint8Array,
  file: string,
  options: DecodeOptions = {},
): DecodedTensors => {
  const fail = (message: string): never => {
    throw new TensorFileError(file, message);
  };
  const magic = encoder.encode(TENSOR_FILE_MAGIC);
  const seenMagic = bytes.subarray(0, magic.length);
  if (!seenMagic.every((b, i) => b === magic[i])) {
    fail(
      `bad magic: expected "${TENSOR_FILE_MAGIC}" at byte 0, found ${
        JSON.stringify(String.fromCharCode(...seenMagic))
      } (not a tensor file)`,
    );
  }
  if (bytes.length < PREFIX_BYTES) {
    fail(
      `truncated: ${bytes.length} bytes, expected at least ${PREFIX_BYTES} (magic, version, header length)`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(8, true);
  if (version !== TENSOR_FILE_VERSION) {
    fail(`unsupported version ${version} at byte 8: expected ${TENSOR_FILE_VERSION}`);
  }
  const headerLength = view.getUint32(12, true);
  if (PREFIX_BYTES + headerLength > bytes.length) {
    fail(
      `truncated: the header needs bytes ${PREFIX_BYTES}-${PREFIX_BYTES + headerLength}, ` +
        `but the file has ${bytes.length} bytes`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(decoder.decode(bytes.subarray(PREFIX_BYTES, PREFIX_BYTES + headerLength)));
  } catch (e) {
    fail(`header: not valid UTF-8 JSON: ${(e as Error).message}`);
  }
  const decoded = Header.decode(json);
  if (E.isLeft(decoded)) fail(describeDecodeErrors(decoded.left));
  const header = (decoded as E.Right<TensorFileHeader>).right;
  if (header.version !== version) {
    fail(
      `header field version: expected ${version} (as in the file prefix), found ${header.version}`,
    );
  }
  if (options.kind !== undefined && header.kind !== options.kind) {
    fail(`header field kind: expected "${options.kind}", found "${header.kind}"`);
  }
  const dataStart = align(PREFIX_BYTES + headerLength);
  let end = 0;
  const paths = new Set<string>();
  header.tensors.forEach((r, i) => {
    const field = `header field tensors[${i}] ("${r.path}")`;
    if (paths.has(r.path)) fail(`${field}.path: expected a unique path, found a duplicate`);
    paths.add(r.path);
    const size = r.shape.reduce((a, b) => a * b, 1);
    if (r.length !== size * 4) {
      fail(
        `${field}.length: expected ${
          size * 4
        } bytes (shape [${r.shape}] of ${r.dtype}), found ${r.length}`,
      );
    }
    if (r.offset % ALIGN !== 0) {
      fail(`${field}.offset: expected a multiple of ${ALIGN}, found ${r.offset}`);
    }
    const stop = dataStart + r.offset + r.length;
    if (stop > bytes.length) {
      fail(
        `truncated: tensor "${r.path}" needs bytes ${dataStart + r.offset}-${stop}, ` +
          `but the file has ${bytes.length} bytes`,
      );
    }
    end = Math.max(end, r.offset + r.length);
  });
  const expectedLength = dataStart + end;
  if (bytes.length < expectedLength) {
    fail(`truncated: ${bytes.length} bytes, expected ${expectedLength}`);
  }
  if (bytes.length > expectedLength) {
    fail(
      `${bytes.length - expectedLength} unexpected bytes after the data section ` +
        `(expected a file of ${expectedLength} bytes)`,
    );
  }
  const tensors = new Map<string, tf.Tensor>();
  for (const r of header.tensors) {
    tensors.set(r.path, tf.tensor(readValues(bytes, dataStart + r.offset, r), r.shape, r.dtype));
  }
  return {
    kind: header.kind,
    meta: header.meta,
    tensors,
    ...(header.tree === undefined ? {} : { tree: header.tree }),
  };
};

const readValues = (bytes: Uint8Array, at: number, r: TensorRecord): Float32Array | Int32Array => {
  const n = r.length / 4;
  if (LITTLE_ENDIAN) {
    const copy = bytes.slice(at, at + r.length).buffer; // a fresh, aligned buffer
    return r.dtype === "int32" ? new Int32Array(copy, 0, n) : new Float32Array(copy, 0, n);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset + at, r.length);
  return r.dtype === "int32"
    ? Int32Array.from({ length: n }, (_, j) => view.getInt32(4 * j, true))
    : Float32Array.from({ length: n }, (_, j) => view.getFloat32(4 * j, true));
};

// ---------------------------------------------------------------------------------------------
// Trees

/** A value `encodeTree` can store: tensors, JSON-like scalars, arrays and plain objects. */
export type TreeValue =
  | tf.Tensor
  | number
  | string
  | boolean
  | null
  | undefined
  | readonly TreeValue[]
  | { readonly [key: string]: TreeValue };

/** Escapes one key for a path (`~` → `~0`, `/` → `~1`). */
export const escapePathSegment = (key: string): string =>
  key.replaceAll("~", "~0").replaceAll("/", "~1");
/** Undoes `escapePathSegment`. */
export const unescapePathSegment = (segment: string): string =>
  segment.replaceAll("~1", "/").replaceAll("~0", "~");

const isPlainObject = (u: object): boolean => {
  const proto = Object.getPrototypeOf(u);
  return proto === Object.prototype || proto === null;
};
const describeType = (u: unknown): string =>
  u === null ? "null" : typeof u === "object" ? (u.constructor?.name ?? "object") : typeof u;

/**
 * Splits a tree into its skeleton (structure, numbers, strings, booleans; key order and arrays vs
 * objects kept) and its tensors under `/`-joined paths. Numbers stay exact (they live in the
 * header as JSON, with NaN, ±Infinity and -0 tagged). A tensor reached twice is stored twice.
 *
 * @throws TypeError naming the path of a value that cannot be stored (a typed array, a Map, a class
 *   instance, a function, a bigint) or of a cycle.
 */
export const flattenTree = (
  value: TreeValue,
): { skeleton: Skeleton; entries: TensorEntry[] } => {
  const entries: TensorEntry[] = [];
  const ancestors = new Set<object>();
  const walk = (v: unknown, path: string, root = false): Skeleton => {
    if (v instanceof tf.Tensor) {
      entries.push({ path, tensor: v });
      return { $tensor: path };
    }
    if (typeof v === "number") {
      if (Number.isNaN(v)) return { $number: "NaN" };
      if (v === Infinity) return { $number: "Infinity" };
      if (v === -Infinity) return { $number: "-Infinity" };
      return Object.is(v, -0) ? { $number: "-0" } : v;
    }
    if (typeof v === "string" || typeof v === "boolean" || v === null) return v;
    if (v === undefined) return { $undefined: 1 };
    const where = root ? "the root" : `"${path}"`;
    if (typeof v === "object" && (Array.isArray(v) || isPlainObject(v))) {
      if (ancestors.has(v)) throw new TypeError(`flattenTree: a cycle at ${where}`);
      ancestors.add(v);
      const child = (k: string) => (root ? "" : `${path}/`) + escapePathSegment(k);
      const out: Skeleton = Array.isArray(v)
        ? Array.from(v, (x, i) => walk(x, child(String(i))))
        : {
          $object: Object.keys(v).map((
            k,
          ) => [k, walk((v as Record<string, unknown>)[k], child(k))]),
        };
      ancestors.delete(v);
      return out;
    }
    throw new TypeError(
      `flattenTree: ${where} is a ${describeType(v)}; only tensors, numbers, strings, booleans, ` +
        "null, undefined, arrays and plain objects can be stored",
    );
  };
  return { skeleton: walk(value, "", true), entries };
};

/**
 * Rebuilds a tree from its skeleton and tensors (the inverse of `flattenTree`). The tensors are
 * used as they are, not copied.
 *
 * @throws TensorFileError naming `file` when a referenced tensor is missing, referenced twice, or a
 *   tensor is not referenced at all.
 */
export const unflattenTree = (
  skeleton: Skeleton,
  tensors: ReadonlyMap<string, tf.Tensor>,
  file = "tree",
): TreeValue => {
  const used = new Set<string>();
  const build = (s: Skeleton): TreeValue => {
    if (s === null || typeof s !== "object") return s;
    if (Array.isArray(s)) return s.map(build);
    if ("$tensor" in s) {
      const x = tensors.get(s.$tensor);
      if (!x) throw new TensorFileError(file, `tree: tensor "${s.$tensor}" is not in the file`);
      if (used.has(s.$tensor)) {
        throw new TensorFileError(file, `tree: tensor "${s.$tensor}" is referenced twice`);
      }
      used.add(s.$tensor);
      return x;
    }
    if ("$number" in s) return s.$number === "-0" ? -0 : Number(s.$number);
    if ("$undefined" in s) return undefined;
    const o: Record<string, TreeValue> = {};
    for (const [k, v] of s.$object) o[k] = build(v);
    return o;
  };
  const out = build(skeleton);
  const unused = [...tensors.keys()].filter((p) => !used.has(p));
  if (unused.length) {
    throw new TensorFileError(
      file,
      `tree: ${unused.length} tensor(s) not referenced by the tree: ${
        unused.slice(0, 5).map((p) => `"${p}"`).join(", ")
      }`,
    );
  }
  return out;
};

/** Encodes a whole tree (its skeleton goes to the header's `tree` field). */
export const encodeTree = (kind: string, value: TreeValue, meta: unknown = null): Uint8Array => {
  const { skeleton, entries } = flattenTree(value);
  return encodeWithTree(kind, meta, entries, skeleton);
};

/**
 * {@link encodeTree} with every tensor read by `await t.data()` first: what a backend without
 * synchronous reads (webgpu under Deno) needs.
 */
export const encodeTreeAsync = async (
  kind: string,
  value: TreeValue,
  meta: unknown = null,
): Promise<Uint8Array> => {
  const { skeleton, entries } = flattenTree(value);
  const read = await Promise.all(entries.map(({ tensor }) => tensor.data()));
  return encodeWithTree(kind, meta, entries, skeleton, read);
};

/** What `decodeTree` returns: the caller owns (and disposes) the tensors inside `value`. */
export interface DecodedTree {
  /** The file's kind (what it holds, e.g. a checkpoint). */
  readonly kind: string;
  /** The header's JSON metadata. */
  readonly meta: unknown;
  /** The stored tree. */
  readonly value: TreeValue;
}

/**
 * Decodes a file written by `encodeTree`. On any error no tensor is left allocated.
 *
 * @throws TensorFileError as `decodeTensors`, and when the file has no tree skeleton.
 */
export const decodeTree = (
  bytes: Uint8Array,
  file: string,
  options: DecodeOptions = {},
): DecodedTree => {
  const d = decodeTensors(bytes, file, options);
  try {
    if (d.tree === undefined) {
      throw new TensorFileError(file, "header field tree: expected a tree skeleton, found none");
    }
    return { kind: d.kind, meta: d.meta, value: unflattenTree(d.tree, d.tensors, file) };
  } catch (e) {
    d.tensors.forEach((x) => x.dispose());
    throw e;
  }
};
