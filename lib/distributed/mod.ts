/**
 * Several machines: data-parallel training over MPI (Open MPI's C ABI through Deno FFI). Each rank
 * trains on its shard of every batch; the loss, the gradient and every G·v product are averaged
 * over the ranks (host memory: MPI reduces host buffers), so optimizers and CG run unchanged and
 * the ranks stay bit-identical. Meta-training averages its meta-gradients the same way.
 * @module
 */
export * from "./communicator.ts";
export * from "./consistency.ts";
export * from "./data_parallel.ts";
export * from "./mpi.ts";
export * from "./reduce.ts";
export * from "./shard.ts";
