/**
 * Training and evaluation: one step for any optimizer, whole resumable runs with logs and
 * checkpoints, test-set evaluation, optimizer and model registries with the original's settings,
 * and comparisons with their report.
 * @module
 */
export * from "./step.ts";
export * from "./run.ts";
export * from "./evaluate.ts";
export * from "./models.ts";
export * from "./optimizers.ts";
export * from "./presets.ts";
export * from "./compare.ts";
export * from "./report.ts";
export * from "./weight_decay.ts";
export * from "./meta_run.ts";
export * from "./task_run.ts";
export * from "./batch_fit.ts";
