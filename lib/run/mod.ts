/**
 * Run infrastructure for training, meta-training and evaluation: atomic writes, the tensor file
 * format, checkpoints, JSONL/CSV logs and the progress line.
 * @module
 */
export * from "./atomic.ts";
export * from "./checkpoint.ts";
export * from "./logger.ts";
export * from "./progress.ts";
export * from "./tensor_file.ts";
export * from "./files.ts";
