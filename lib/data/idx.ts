/**
 * The IDX format of MNIST-style data sets: magic `0x00 0x00 <type> <rank>`, then `rank` big-endian
 * uint32 dimensions, then the payload in row-major order. Only the unsigned-byte type (0x08) is
 * read, so images have magic 0x00000803 and labels 0x00000801.
 * @module
 */
import { DataError } from "./errors.ts";
import { readWholeFile } from "./files.ts";

/** An IDX array: its dimensions and its uint8 payload (a view into the file bytes). */
export interface IdxArray {
  /** The size of each dimension, outermost first. */
  readonly dims: readonly number[];
  /** The items, row-major. */
  readonly data: Uint8Array;
}

const TYPE_NAMES: Record<number, string> = {
  0x08: "unsigned byte",
  0x09: "signed byte",
  0x0b: "int16",
  0x0c: "int32",
  0x0d: "float32",
  0x0e: "float64",
};

/** The IDX magic number for a uint8 array of the given rank (0x00000803 for rank 3). */
export const idxMagic = (rank: number): number => 0x0800 + rank;

/**
 * Parses IDX bytes, checking the magic (uint8 type and, when given, the expected rank), the header
 * length and that the file size is exactly header + product of dims. `file` names it in errors.
 */
export const parseIdx = (bytes: Uint8Array, file: string, expectedRank?: number): IdxArray => {
  const hex = (n: number) => `0x${n.toString(16).padStart(8, "0")}`;
  if (bytes.length < 4) {
    throw new DataError(`truncated IDX file: ${bytes.length} bytes, no 4-byte magic`, {
      file,
      offset: bytes.length,
    });
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0);
  const type = bytes[2], rank = bytes[3];
  const expected = expectedRank !== undefined ? hex(idxMagic(expectedRank)) : "0x000008NN";
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    throw new DataError(`not an IDX file: magic ${hex(magic)}, expected ${expected}`, {
      file,
      offset: 0,
    });
  }
  if (type !== 0x08) {
    const name = TYPE_NAMES[type] ?? "unknown";
    throw new DataError(
      `wrong IDX magic ${hex(magic)}: element type 0x${
        type.toString(16)
      } (${name}), only unsigned byte (0x08) is supported; expected ${expected}`,
      { file, offset: 2 },
    );
  }
  if (rank === 0 || (expectedRank !== undefined && rank !== expectedRank)) {
    throw new DataError(
      `wrong IDX magic ${hex(magic)}: rank ${rank}, expected ${expected}`,
      { file, offset: 3 },
    );
  }
  const headerBytes = 4 + 4 * rank;
  if (bytes.length < headerBytes) {
    throw new DataError(
      `truncated IDX header: ${bytes.length} bytes, the ${rank} dimensions need ${headerBytes}`,
      { file, offset: bytes.length },
    );
  }
  const dims = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i));
  const size = dims.reduce((a, b) => a * b, 1);
  const expectedBytes = headerBytes + size;
  if (bytes.length < expectedBytes) {
    throw new DataError(
      `truncated IDX file: dims [${
        dims.join(", ")
      }] need ${expectedBytes} bytes, file has ${bytes.length}`,
      { file, offset: bytes.length },
    );
  }
  if (bytes.length > expectedBytes) {
    throw new DataError(
      `IDX file too long: dims [${
        dims.join(", ")
      }] need ${expectedBytes} bytes, file has ${bytes.length} (wrong dims?)`,
      { file, offset: expectedBytes },
    );
  }
  return { dims, data: bytes.subarray(headerBytes) };
};

/** Reads and parses an IDX file (`.gz` names are gunzipped first). */
export const readIdx = async (path: string, expectedRank?: number): Promise<IdxArray> =>
  parseIdx(await readWholeFile(path), path, expectedRank);

/** Encodes a uint8 array as IDX bytes (for writing fixtures or derived data sets). */
export const encodeIdx = (dims: readonly number[], data: Uint8Array): Uint8Array => {
  const size = dims.reduce((a, b) => a * b, 1);
  if (size !== data.length) {
    throw new RangeError(`dims [${dims.join(", ")}] hold ${size} bytes, data has ${data.length}`);
  }
  const out = new Uint8Array(4 + 4 * dims.length + size);
  const view = new DataView(out.buffer);
  view.setUint32(0, idxMagic(dims.length));
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d));
  out.set(data, 4 + 4 * dims.length);
  return out;
};
