/**
 * Meta-training MLHF's networks: one meta-iteration (an unrolled window of MLHF steps, its losses,
 * routed meta-gradients, Adam, experience replay) and the meta-weights file format. The whole
 * resumable run, with its data, logs and checkpoints, is `lib/train/meta_run.ts`; the task
 * distribution (`task_mix.ts`, `task_augment.ts`) is run by `lib/train/task_run.ts`.
 * @module
 */
export * from "./meta_train.ts";
export * from "./meta_weights_file.ts";
export * from "./task_mix.ts";
export * from "./task_augment.ts";
