/**
 * Crash-safe file replacement: the new contents go to a temporary file in the target's directory,
 * are fsynced, then renamed over the target (an atomic step on POSIX file systems), and the
 * directory is fsynced so the rename itself survives a power loss. A reader therefore sees either
 * the old file or the whole new one, never a mix; a failure at any point leaves the old file intact
 * and removes the temporary file.
 * @module
 */
import { basename, dirname, join } from "node:path";

/** Writes `bytes` fully to an open file (injectable so tests can fail part-way through). */
export type FileWriter = (file: Deno.FsFile, bytes: Uint8Array) => Promise<void>;

/** Options of `writeFileAtomic`. */
export interface AtomicWriteOptions {
  /** How the bytes are written to the temporary file; defaults to a loop over `file.write`. */
  readonly write?: FileWriter;
}

/** Writes all of `bytes` to `file` (a single `write` may write fewer bytes than asked). */
export const writeAll: FileWriter = async (file, bytes) => {
  let done = 0;
  while (done < bytes.length) done += await file.write(bytes.subarray(done));
};

const encoder = new TextEncoder();

/**
 * Replaces `path` atomically with `data` (a string is written as UTF-8).
 *
 * @param path the file to create or replace; its directory must exist.
 * @param data the new contents.
 * @throws Error naming `path` when any step fails; the previous contents are then unchanged.
 */
export const writeFileAtomic = async (
  path: string,
  data: Uint8Array | string,
  options: AtomicWriteOptions = {},
): Promise<void> => {
  const bytes = typeof data === "string" ? encoder.encode(data) : data;
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${crypto.randomUUID().slice(0, 8)}.tmp`);
  let file: Deno.FsFile | undefined;
  try {
    file = await Deno.open(tmp, { write: true, createNew: true });
    await (options.write ?? writeAll)(file, bytes);
    await file.sync();
    file.close();
    file = undefined;
    await Deno.rename(tmp, path);
  } catch (e) {
    file?.close();
    await Deno.remove(tmp).catch(() => {});
    throw new Error(`cannot write ${path}: ${(e as Error).message}`, { cause: e });
  }
  await syncDirectory(dir);
};

/** `writeFileAtomic` for synchronous callers (e.g. a logger rewriting its file between records). */
export const writeFileAtomicSync = (path: string, data: Uint8Array | string): void => {
  const bytes = typeof data === "string" ? encoder.encode(data) : data;
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${crypto.randomUUID().slice(0, 8)}.tmp`);
  let file: Deno.FsFile | undefined;
  try {
    file = Deno.openSync(tmp, { write: true, createNew: true });
    for (let done = 0; done < bytes.length;) done += file.writeSync(bytes.subarray(done));
    file.syncSync();
    file.close();
    file = undefined;
    Deno.renameSync(tmp, path);
  } catch (e) {
    file?.close();
    try {
      Deno.removeSync(tmp);
    } catch { /* already gone */ }
    throw new Error(`cannot write ${path}: ${(e as Error).message}`, { cause: e });
  }
  try {
    const d = Deno.openSync(dir, { read: true });
    try {
      d.syncSync();
    } finally {
      d.close();
    }
  } catch { /* see syncDirectory */ }
};

/** fsyncs a directory so a rename in it is durable (best effort: not every platform allows it). */
const syncDirectory = async (dir: string): Promise<void> => {
  try {
    const d = await Deno.open(dir, { read: true });
    try {
      await d.sync();
    } finally {
      d.close();
    }
  } catch {
    // Windows and some file systems cannot open or fsync a directory; the rename still happened.
  }
};
