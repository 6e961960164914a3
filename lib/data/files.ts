/**
 * File-system helpers for the data layer: existence checks, whole-file reads of small data sets
 * (IDX, CIFAR batches) with gzip support, and exact positioned reads for streamed files.
 * @module
 */
import { DataError } from "./errors.ts";

/** Whether a path exists as a file (false for a directory or nothing). */
export const isFile = async (path: string): Promise<boolean> => {
  try {
    return (await Deno.stat(path)).isFile;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
};

/** Whether a path exists as a directory. */
export const isDirectory = async (path: string): Promise<boolean> => {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
};

/** Reads a whole file; a name ending in `.gz` is gunzipped. Failures become a `DataError`. */
export const readWholeFile = async (path: string): Promise<Uint8Array> => {
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new DataError(`cannot read: ${(e as Error).message}`, { file: path }, { cause: e });
  }
  if (!path.endsWith(".gz")) return bytes;
  try {
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  } catch (e) {
    throw new DataError(
      `not a valid gzip file (truncated or corrupt): ${(e as Error).message}`,
      { file: path },
      { cause: e },
    );
  }
};

/**
 * Reads exactly `length` bytes at `offset` of an open file, or fewer only at end of file: returns
 * the bytes read (a short array means the file ended).
 */
export const readAt = async (
  file: Deno.FsFile,
  offset: number,
  length: number,
): Promise<Uint8Array> => {
  await file.seek(offset, Deno.SeekMode.Start);
  const out = new Uint8Array(length);
  let filled = 0;
  while (filled < length) {
    const n = await file.read(out.subarray(filled));
    if (n === null) break;
    filled += n;
  }
  return filled === length ? out : out.subarray(0, filled);
};
