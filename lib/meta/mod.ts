/**
 * MLHF's meta-learning: the coordinatewise LSTMs, one MLHF direction, meta-weights and their file
 * format, and meta-training (one iteration, and a whole resumable run).
 * @module
 */
export * from "./param_kinds.ts";
export * from "./lstm.ts";
export * from "./stop_gradient.ts";
export * from "./mlhf_step.ts";
export * from "./meta_weights.ts";
export * from "./meta_weights_file.ts";
export * from "./meta_train.ts";
export * from "./meta_run.ts";
export * from "./kind_map.ts";
