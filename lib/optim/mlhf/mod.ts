/**
 * MLHF, the meta-learned Hessian-Free optimizer, in one place: the coordinatewise LSTM
 * meta-networks (`lstm.ts`), their weights (`meta_weights.ts`) and the transfer of one kind's
 * networks to another (`kind_map.ts`), one MLHF direction (`direction.ts`), the optimizer that
 * takes it as its step (`optimizer.ts`) and its optional safeguard (`safeguard.ts`).
 * Meta-training them lives in `lib/meta/`.
 * @module
 */
export * from "./lstm.ts";
export * from "./stop_gradient.ts";
export * from "./direction.ts";
export * from "./meta_weights.ts";
export * from "./kind_map.ts";
export * from "./optimizer.ts";
export * from "./safeguard.ts";
