/**
 * Checkpoints: any tree of tensors, numbers, strings, arrays and objects (parameters, optimizer and
 * meta-optimizer states, PRNG keys, data-pipeline positions, replay buffers) saved as a tensor file
 * (`tensor_file.ts`, kind `mlhf-checkpoint`) with an atomic write.
 *
 * Files in `dir`: `<name>.bin` is the latest checkpoint, replaced atomically on every save, so it is
 * always either the previous or the new one; with `keepLast: N` and a `step`, each save also writes
 * `<name>-<step>.bin` and deletes all but the newest N of those.
 * @module
 */
import { join } from "node:path";
import { E, t, tf } from "../_deps.ts";
import { writeFileAtomic } from "./atomic.ts";
import {
  decodeTree,
  describeDecodeErrors,
  encodeTreeAsync,
  TensorFileError,
  type TreeValue,
} from "./tensor_file.ts";

/** The `kind` of checkpoint files. */
export const CHECKPOINT_KIND = "mlhf-checkpoint";

const CheckpointMeta = t.type({
  name: t.string,
  step: t.union([t.number, t.null]),
  savedAt: t.string,
});
type CheckpointMeta = t.TypeOf<typeof CheckpointMeta>;

/** Options of `saveCheckpoint`. */
export interface SaveCheckpointOptions {
  /** The training step the payload belongs to (stored in the header). */
  readonly step?: number;
  /** Also keep `<name>-<step>.bin` for the newest N steps (needs `step`); 0 (default) keeps none. */
  readonly keepLast?: number;
}

/** A loaded checkpoint. The caller owns (and disposes) the tensors in `payload`. */
export interface Checkpoint {
  /** The saved tree of tensors and values. */
  readonly payload: TreeValue;
  /** The step it was saved at, or null when none was given. */
  readonly step: number | null;
  /** ISO 8601 time of the save. */
  readonly savedAt: string;
  /** The file it was read from. */
  readonly file: string;
}

const checkName = (name: string): void => {
  if (!/^[A-Za-z0-9._-]+$/.test(name)) {
    throw new RangeError(
      `checkpoint name ${JSON.stringify(name)}: expected letters, digits, ".", "_" or "-"`,
    );
  }
};

/** The path of the latest checkpoint, or of one step's checkpoint. */
export const checkpointPath = (dir: string, name: string, step?: number): string => {
  checkName(name);
  return join(dir, step === undefined ? `${name}.bin` : `${name}-${step}.bin`);
};

/**
 * Saves `payload` as the latest checkpoint `name` in `dir` (created if missing).
 *
 * @returns the path of the latest checkpoint file.
 * @throws TypeError for a payload value that cannot be stored; RangeError for a bad name or
 *   `keepLast` without `step`; Error naming the file when writing fails.
 */
export const saveCheckpoint = async (
  dir: string,
  name: string,
  payload: TreeValue,
  { step, keepLast = 0 }: SaveCheckpointOptions = {},
): Promise<string> => {
  checkName(name);
  if (step !== undefined && !(Number.isSafeInteger(step) && step >= 0)) {
    throw new RangeError(`saveCheckpoint: step must be a non-negative integer, got ${step}`);
  }
  if (!(Number.isInteger(keepLast) && keepLast >= 0)) {
    throw new RangeError(
      `saveCheckpoint: keepLast must be a non-negative integer, got ${keepLast}`,
    );
  }
  if (keepLast > 0 && step === undefined) {
    throw new RangeError("saveCheckpoint: keepLast needs a step to name the per-step files");
  }
  const meta: CheckpointMeta = { name, step: step ?? null, savedAt: new Date().toISOString() };
  const bytes = await encodeTreeAsync(CHECKPOINT_KIND, payload, meta);
  await Deno.mkdir(dir, { recursive: true });
  if (keepLast > 0) {
    await writeFileAtomic(checkpointPath(dir, name, step), bytes);
    const steps = await listCheckpointSteps(dir, name);
    for (const old of steps.slice(0, Math.max(0, steps.length - keepLast))) {
      await Deno.remove(checkpointPath(dir, name, old)).catch(() => {});
    }
  }
  const latest = checkpointPath(dir, name);
  await writeFileAtomic(latest, bytes);
  return latest;
};

/** The steps of the per-step checkpoint files `<name>-<step>.bin` in `dir`, ascending. */
export const listCheckpointSteps = async (dir: string, name: string): Promise<number[]> => {
  checkName(name);
  const pattern = new RegExp(`^${name.replaceAll(".", "\\.")}-(\\d+)\\.bin$`);
  const steps: number[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      const m = e.isFile ? pattern.exec(e.name) : null;
      if (m) steps.push(Number(m[1]));
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  return steps.sort((a, b) => a - b);
};

/**
 * Loads the latest checkpoint `name` from `dir` (or the one of `step`).
 *
 * @returns the checkpoint, or null when its file does not exist (nothing to resume from).
 * @throws TensorFileError naming the file when it is corrupt, truncated or not a checkpoint.
 */
export const loadCheckpoint = async (
  dir: string,
  name: string,
  { step }: { readonly step?: number } = {},
): Promise<Checkpoint | null> => {
  const file = checkpointPath(dir, name, step);
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(file);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw new TensorFileError(file, `cannot read: ${(e as Error).message}`, { cause: e });
  }
  const { meta, value } = decodeTree(bytes, file, { kind: CHECKPOINT_KIND });
  const m = CheckpointMeta.decode(meta);
  if (E.isLeft(m)) {
    disposeTensorsIn(value);
    throw new TensorFileError(file, describeDecodeErrors(m.left, "header field meta"));
  }
  return { payload: value, step: m.right.step, savedAt: m.right.savedAt, file };
};

/** Disposes every tensor inside a tree (e.g. a checkpoint's payload once it has been used). */
export const disposeTensorsIn = (value: TreeValue): void => {
  if (value instanceof tf.Tensor) value.dispose();
  else if (value !== null && typeof value === "object") {
    Object.values(value).forEach((v) => disposeTensorsIn(v as TreeValue));
  }
};
