/**
 * What a data-parallel training run needs from its ranks, in one value: the communicator, how often
 * to check that the ranks still hold bit-identical state, and the step's three hooks (this rank's
 * shard of the batch, the loss averaged over the ranks, the curvature averaged over the ranks).
 * Only rank 0 writes logs, checkpoints and reports; every rank reads rank 0's checkpoint to resume.
 * @module
 */
import type { tf } from "../_deps.ts";
import type { GaussNewton } from "../curvature/gauss_newton.ts";
import type { Loss } from "../../ops/losses.ts";
import type { Params } from "../tree.ts";
import type { Communicator } from "./communicator.ts";
import { reducedCurvature, reducedLoss } from "./reduce.ts";
import { shardRows } from "./shard.ts";

/** Default steps between two checks that the ranks hold identical parameters and state. */
export const DEFAULT_CHECK_EVERY = 50;

/** A data-parallel job's settings. */
export interface DataParallel {
  /** The ranks. */
  readonly comm: Communicator;
  /**
   * Check that parameters, optimizer state and batch-norm statistics are bit-identical across the
   * ranks every this many steps (also after starting or resuming, and at each checkpoint).
   */
  readonly checkEvery: number;
}

/** The step hooks of a data-parallel run. */
export interface DataParallelStep {
  /** This rank's rows of the global batch (new tensors). */
  shard<T extends tf.Tensor>(ts: readonly T[]): T[];
  /** The loss, its value averaged over the ranks. */
  loss(l: Loss): Loss;
  /** The curvature, its gradient and G·v averaged over the ranks. */
  curvature<P extends Params>(gn: GaussNewton<P>): GaussNewton<P>;
}

/** The step hooks for `dp`. */
export const dataParallelStep = (dp: DataParallel): DataParallelStep => ({
  shard: (ts) => shardRows(ts, dp.comm.rank, dp.comm.size),
  loss: (l) => reducedLoss(l, dp.comm),
  curvature: (gn) => reducedCurvature(gn, dp.comm),
});
