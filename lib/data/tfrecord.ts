/**
 * TFRecord files, read incrementally: each record is a uint64 length (little-endian), the masked
 * CRC-32C of those 8 bytes, the data, and the masked CRC-32C of the data. Both CRCs are checked.
 * Records are scanned header by header (seeking over the data) and read one at a time, so memory
 * stays bounded by the largest record, never the shard.
 * @module
 */
import { crc32c, maskCrc } from "./crc32c.ts";
import { DataError } from "./errors.ts";
import { readAt } from "./files.ts";

/** Where a record lies in its file. */
export interface RecordEntry {
  /** 0-based record index in the file. */
  readonly index: number;
  /** Byte offset of the record's header. */
  readonly offset: number;
  /** Length of the record's data. */
  readonly length: number;
}

const HEADER_BYTES = 12;
const FOOTER_BYTES = 4;
const hex = (n: number) => `0x${n.toString(16).padStart(8, "0")}`;

/** Frames `data` as one TFRecord (length, masked CRCs). */
export const encodeTfRecord = (data: Uint8Array): Uint8Array => {
  const out = new Uint8Array(HEADER_BYTES + data.length + FOOTER_BYTES);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length % 2 ** 32, true);
  view.setUint32(4, Math.floor(data.length / 2 ** 32), true);
  view.setUint32(8, maskCrc(crc32c(out.subarray(0, 8))), true);
  out.set(data, HEADER_BYTES);
  view.setUint32(HEADER_BYTES + data.length, maskCrc(crc32c(data)), true);
  return out;
};

/** An open TFRecord file. Reads are serialized, so one file may serve several readers. */
export class TfRecordFile {
  /** The file's path. */
  readonly path: string;
  /** The file's size in bytes. */
  readonly size: number;
  #file: Deno.FsFile;
  #lock: Promise<unknown> = Promise.resolve();

  private constructor(path: string, file: Deno.FsFile, size: number) {
    this.path = path;
    this.#file = file;
    this.size = size;
  }

  /** Opens a TFRecord file (a DataError when it cannot be read). */
  static async open(path: string): Promise<TfRecordFile> {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(path, { read: true });
    } catch (e) {
      throw new DataError(`cannot open: ${(e as Error).message}`, { file: path }, { cause: e });
    }
    try {
      return new TfRecordFile(path, file, (await file.stat()).size);
    } catch (e) {
      file.close();
      throw new DataError(`cannot stat: ${(e as Error).message}`, { file: path }, { cause: e });
    }
  }

  /** Closes the file. */
  close(): void {
    this.#file.close();
  }

  #read(offset: number, length: number): Promise<Uint8Array> {
    const result = this.#lock.then(() => readAt(this.#file, offset, length));
    this.#lock = result.catch(() => {});
    return result;
  }

  /**
   * Scans the records' headers in order, checking each length CRC and that the record fits in the
   * file; a truncated or corrupt header throws a DataError naming the record index and offset.
   */
  async *entries(): AsyncGenerator<RecordEntry> {
    let offset = 0;
    for (let index = 0; offset < this.size; index++) {
      const where = { file: this.path, record: index, offset };
      const header = await this.#read(offset, HEADER_BYTES);
      if (header.length < HEADER_BYTES) {
        throw new DataError(
          `truncated TFRecord header: ${header.length} bytes left in the file, a header has ${HEADER_BYTES}`,
          where,
        );
      }
      const view = new DataView(header.buffer, header.byteOffset, HEADER_BYTES);
      const stored = view.getUint32(8, true), computed = maskCrc(crc32c(header.subarray(0, 8)));
      if (stored !== computed) {
        throw new DataError(
          `TFRecord length CRC mismatch (stored ${hex(stored)}, computed ${
            hex(computed)
          }): corrupt file or not a TFRecord file`,
          where,
        );
      }
      const length = view.getUint32(0, true) + view.getUint32(4, true) * 2 ** 32;
      const end = offset + HEADER_BYTES + length + FOOTER_BYTES;
      if (end > this.size) {
        throw new DataError(
          `truncated TFRecord: the record's ${length} data bytes end at byte ${end}, the file has ${this.size}`,
          where,
        );
      }
      yield { index, offset, length };
      offset = end;
    }
  }

  /** Reads one record's data, checking its CRC (a DataError names the record and offset). */
  async read(entry: RecordEntry): Promise<Uint8Array> {
    const where = { file: this.path, record: entry.index, offset: entry.offset };
    const bytes = await this.#read(entry.offset + HEADER_BYTES, entry.length + FOOTER_BYTES);
    if (bytes.length < entry.length + FOOTER_BYTES) {
      throw new DataError(
        `truncated TFRecord: ${bytes.length} of the record's ${
          entry.length + FOOTER_BYTES
        } data and CRC bytes present`,
        where,
      );
    }
    const data = bytes.subarray(0, entry.length);
    const stored = new DataView(bytes.buffer, bytes.byteOffset + entry.length, 4).getUint32(
      0,
      true,
    );
    const computed = maskCrc(crc32c(data));
    if (stored !== computed) {
      throw new DataError(
        `TFRecord data CRC mismatch (stored ${hex(stored)}, computed ${
          hex(computed)
        }): corrupt record`,
        where,
      );
    }
    return data;
  }

  /** Every record's data in order, read one at a time. */
  async *records(): AsyncGenerator<{ readonly entry: RecordEntry; readonly data: Uint8Array }> {
    for await (const entry of this.entries()) yield { entry, data: await this.read(entry) };
  }
}

/** Streams the records of a TFRecord file, closing it when done (or on an error or early exit). */
export async function* readTfRecords(
  path: string,
): AsyncGenerator<{ readonly entry: RecordEntry; readonly data: Uint8Array }> {
  const file = await TfRecordFile.open(path);
  try {
    yield* file.records();
  } finally {
    file.close();
  }
}
