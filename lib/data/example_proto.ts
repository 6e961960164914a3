/**
 * A minimal protobuf codec for `tf.Example` (tensorflow/core/example/{example,feature}.proto):
 *
 *     Example  { Features features = 1; }
 *     Features { map<string, Feature> feature = 1; }        // entries: key = 1, value = 2
 *     Feature  { oneof kind { BytesList bytes_list = 1; FloatList float_list = 2;
 *                             Int64List int64_list = 3; } }
 *     BytesList { repeated bytes value = 1; }
 *     FloatList { repeated float value = 1 [packed]; }      // packed or unpacked both accepted
 *     Int64List { repeated int64 value = 1 [packed]; }
 *
 * Unknown fields are skipped, as protobuf requires; repeated messages merge.
 * @module
 */

/** One feature: a list of byte strings, float32s or int64s (or an empty Feature). */
export type Feature =
  | { readonly kind: "bytes"; readonly value: readonly Uint8Array[] }
  | { readonly kind: "float"; readonly value: Float32Array }
  | { readonly kind: "int64"; readonly value: BigInt64Array }
  | { readonly kind: "none" };

/** The features of an Example by name. */
export type Features = ReadonlyMap<string, Feature>;

/** Malformed protobuf bytes; `offset` is the byte in the message where decoding failed. */
export class ProtoError extends Error {
  /** The error's name (`ProtoError`). */
  override name = "ProtoError";
  /** The byte in the message where decoding failed. */
  readonly offset: number;
  /** A decoding failure at byte `offset` of the message. */
  constructor(message: string, offset: number) {
    super(`${message} (at byte ${offset} of the message)`);
    this.offset = offset;
  }
}

const WIRE_VARINT = 0, WIRE_I64 = 1, WIRE_LEN = 2, WIRE_I32 = 5;

class Reader {
  pos: number;
  constructor(readonly bytes: Uint8Array, start: number, readonly end: number) {
    this.pos = start;
  }

  /** A varint as [low 32 bits, high 32 bits]. */
  varint(): [number, number] {
    let lo = 0, hi = 0;
    const start = this.pos;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new ProtoError("truncated varint", start);
      const b = this.bytes[this.pos++];
      if (i < 4) lo |= (b & 0x7f) << (7 * i);
      else if (i === 4) {
        lo |= (b & 0x0f) << 28;
        hi |= (b & 0x7f) >>> 4;
      } else hi |= (b & 0x7f) << (7 * i - 32);
      if (!(b & 0x80)) return [lo >>> 0, hi >>> 0];
    }
    throw new ProtoError("varint longer than 10 bytes", start);
  }

  /** A varint that must be a non-negative safe integer (tags, lengths). */
  uint(): number {
    const start = this.pos;
    const [lo, hi] = this.varint();
    if (hi > 0x1fffff) throw new ProtoError("varint too large for a length or tag", start);
    return hi * 2 ** 32 + lo;
  }

  /** A length-delimited field's [start, end). */
  delimited(): [number, number] {
    const at = this.pos;
    const n = this.uint();
    if (n > this.end - this.pos) {
      throw new ProtoError(`length ${n} runs past the end of the message`, at);
    }
    const start = this.pos;
    this.pos += n;
    return [start, this.pos];
  }

  skip(wire: number, tagAt: number): void {
    const need = (n: number) => {
      if (this.end - this.pos < n) throw new ProtoError("truncated fixed-width field", this.pos);
      this.pos += n;
    };
    if (wire === WIRE_VARINT) this.varint();
    else if (wire === WIRE_I64) need(8);
    else if (wire === WIRE_LEN) this.delimited();
    else if (wire === WIRE_I32) need(4);
    else throw new ProtoError(`unsupported wire type ${wire}`, tagAt);
  }

  /** Calls `field` for each field of the message in [pos, end). */
  fields(field: (num: number, wire: number, tagAt: number) => boolean): void {
    while (this.pos < this.end) {
      const tagAt = this.pos;
      const tag = this.uint();
      const num = Math.floor(tag / 8), wire = tag % 8;
      if (num === 0) throw new ProtoError("field number 0", tagAt);
      if (!field(num, wire, tagAt)) this.skip(wire, tagAt);
    }
  }

  sub(range: [number, number]): Reader {
    return new Reader(this.bytes, range[0], range[1]);
  }
}

const utf8 = new TextDecoder();

const toInt64 = ([lo, hi]: [number, number]): bigint =>
  BigInt.asIntN(64, (BigInt(hi) << 32n) | BigInt(lo));

const decodeBytesList = (r: Reader): Uint8Array[] => {
  const out: Uint8Array[] = [];
  r.fields((num, wire) => {
    if (num !== 1 || wire !== WIRE_LEN) return false;
    const [s, e] = r.delimited();
    out.push(r.bytes.subarray(s, e));
    return true;
  });
  return out;
};

const decodeFloatList = (r: Reader): Float32Array => {
  const out: number[] = [];
  const view = new DataView(r.bytes.buffer, r.bytes.byteOffset, r.bytes.byteLength);
  r.fields((num, wire, tagAt) => {
    if (num !== 1) return false;
    if (wire === WIRE_LEN) {
      const [s, e] = r.delimited();
      if ((e - s) % 4) throw new ProtoError(`packed floats of ${e - s} bytes`, s);
      for (let i = s; i < e; i += 4) out.push(view.getFloat32(i, true));
    } else if (wire === WIRE_I32) {
      if (r.end - r.pos < 4) throw new ProtoError("truncated float", r.pos);
      out.push(view.getFloat32(r.pos, true));
      r.pos += 4;
    } else throw new ProtoError(`float list value with wire type ${wire}`, tagAt);
    return true;
  });
  return Float32Array.from(out);
};

const decodeInt64List = (r: Reader): BigInt64Array => {
  const out: bigint[] = [];
  r.fields((num, wire, tagAt) => {
    if (num !== 1) return false;
    if (wire === WIRE_LEN) {
      const packed = r.sub(r.delimited());
      while (packed.pos < packed.end) out.push(toInt64(packed.varint()));
    } else if (wire === WIRE_VARINT) out.push(toInt64(r.varint()));
    else throw new ProtoError(`int64 list value with wire type ${wire}`, tagAt);
    return true;
  });
  return BigInt64Array.from(out);
};

const decodeFeature = (r: Reader): Feature => {
  let feature: Feature = { kind: "none" };
  r.fields((num, wire, tagAt) => {
    if (num < 1 || num > 3) return false;
    if (wire !== WIRE_LEN) {
      throw new ProtoError(`Feature field ${num} with wire type ${wire}`, tagAt);
    }
    const list = r.sub(r.delimited());
    feature = num === 1
      ? { kind: "bytes", value: decodeBytesList(list) }
      : num === 2
      ? { kind: "float", value: decodeFloatList(list) }
      : { kind: "int64", value: decodeInt64List(list) };
    return true;
  });
  return feature;
};

const expectLen = (num: number, wire: number, tagAt: number, what: string): void => {
  if (wire !== WIRE_LEN) throw new ProtoError(`${what} field ${num} with wire type ${wire}`, tagAt);
};

/** Decodes a serialized tf.Example into its features (a ProtoError when malformed). */
export const decodeExample = (bytes: Uint8Array): Map<string, Feature> => {
  const features = new Map<string, Feature>();
  const example = new Reader(bytes, 0, bytes.length);
  example.fields((num, wire, tagAt) => {
    if (num !== 1) return false;
    expectLen(num, wire, tagAt, "Example");
    const map = example.sub(example.delimited());
    map.fields((num, wire, tagAt) => {
      if (num !== 1) return false;
      expectLen(num, wire, tagAt, "Features");
      const entry = map.sub(map.delimited());
      let key = "";
      let feature: Feature = { kind: "none" };
      entry.fields((num, wire, tagAt) => {
        if (num !== 1 && num !== 2) return false;
        expectLen(num, wire, tagAt, "map entry");
        const range = entry.delimited();
        if (num === 1) key = utf8.decode(bytes.subarray(...range));
        else feature = decodeFeature(entry.sub(range));
        return true;
      });
      features.set(key, feature);
      return true;
    });
    return true;
  });
  return features;
};

// --- encoding (for writing data sets and test fixtures) ---

const encodeVarint = (value: bigint | number, out: number[]): void => {
  let v = BigInt.asUintN(64, BigInt(value));
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
};

const lengthDelimited = (num: number, body: Uint8Array | number[], out: number[]): void => {
  encodeVarint((num << 3) | WIRE_LEN, out);
  encodeVarint(body.length, out);
  for (const b of body) out.push(b);
};

const encodeFeature = (feature: Feature): number[] => {
  const list: number[] = [];
  if (feature.kind === "none") return [];
  if (feature.kind === "bytes") {
    for (const v of feature.value) lengthDelimited(1, v, list);
  } else if (feature.kind === "float") {
    const packed = new Uint8Array(feature.value.length * 4);
    const view = new DataView(packed.buffer);
    feature.value.forEach((v, i) => view.setFloat32(4 * i, v, true));
    lengthDelimited(1, packed, list);
  } else {
    const packed: number[] = [];
    for (const v of feature.value) encodeVarint(v, packed);
    lengthDelimited(1, packed, list);
  }
  const out: number[] = [];
  lengthDelimited(feature.kind === "bytes" ? 1 : feature.kind === "float" ? 2 : 3, list, out);
  return out;
};

/** Serializes features as a tf.Example (packed float and int64 lists). */
export const encodeExample = (features: Iterable<readonly [string, Feature]>): Uint8Array => {
  const map: number[] = [];
  for (const [key, feature] of features) {
    const entry: number[] = [];
    lengthDelimited(1, new TextEncoder().encode(key), entry);
    lengthDelimited(2, encodeFeature(feature), entry);
    lengthDelimited(1, entry, map);
  }
  const out: number[] = [];
  lengthDelimited(1, map, out);
  return Uint8Array.from(out);
};

/** A bytes feature. */
export const bytesFeature = (...value: Uint8Array[]): Feature => ({ kind: "bytes", value });
/** An int64 feature. */
export const int64Feature = (...value: (number | bigint)[]): Feature => ({
  kind: "int64",
  value: BigInt64Array.from(value.map((v) => BigInt(v))),
});
/** A float feature. */
export const floatFeature = (...value: number[]): Feature => ({
  kind: "float",
  value: Float32Array.from(value),
});
