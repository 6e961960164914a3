/**
 * Reading and writing meta-weights files (`.mlhf`); the format and its pure codec are
 * `meta_weights_codec.ts`, re-exported here.
 * @module
 */
import { writeFileAtomic } from "../run/atomic.ts";
import { TensorFileError } from "../run/tensor_file.ts";
import type { MetaWeights } from "../optim/mlhf/direction.ts";
import {
  decodeMetaWeights,
  encodeMetaWeightsAsync,
  type MetaWeightsFile,
  type MetaWeightsRecord,
} from "./meta_weights_codec.ts";

export * from "./meta_weights_codec.ts";

/** Writes a meta-weights file atomically (temp file + rename); reads the tensors with `await`. */
export const saveMetaWeights = async (
  path: string,
  w: MetaWeights,
  record: MetaWeightsRecord,
): Promise<void> => writeFileAtomic(path, await encodeMetaWeightsAsync(w, record));

/** Reads and decodes a meta-weights file; a missing file is an error naming the path. */
export const loadMetaWeights = async (path: string): Promise<MetaWeightsFile> => {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new TensorFileError(path, `cannot read the meta-weights file (${(e as Error).message})`);
  }
  return decodeMetaWeights(bytes, path);
};
