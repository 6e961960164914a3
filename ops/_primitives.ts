/** Every primitive op (primal, R-forward and transpose rules), by family. @module */
export * from "./elementwise.ts";
export * from "./linalg.ts";
export * from "./conv.ts";
export * from "./reduce.ts";
export * from "./shape.ts";
export * from "./batch_norm.ts";
