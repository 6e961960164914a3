/**
 * Models written once in the DSL, each with parameter kinds and (for ResNets) batch-norm state:
 * `mlp`, `cudaConvnet`, `resnetV2Cifar`, `resnet18V2ImageNet`.
 * @module
 */
export * from "./types.ts";
export * from "./init.ts";
export * from "./layers.ts";
export * from "./batch_norm_state.ts";
export * from "./mlp.ts";
export * from "./cuda_convnet.ts";
export * from "./resnet_v2.ts";
