/**
 * The data-parallel hook into a training step: each rank linearizes the model on its shard of the
 * batch, and the step's loss, gradient and every G·v product are replaced by their mean over the
 * ranks. Shards are equal (`shardBatch`) and every loss here is a mean over its batch, so the mean
 * of the shards' values is the value on the whole batch: the optimizers, CG and MLHF's networks see
 * what one process sees on the global batch, without knowing about ranks. Per HF/MLHF step with K
 * CG iterations that is one scalar (the loss) and K + 2 |θ|-vectors (g, r₀ = b − A·x₀, K products).
 *
 * MPI reduces host memory, so every reduction reads its tensors to the host (one read per
 * reduction, of their concatenation) and uploads the result: this module is the only place of the
 * data-parallel step that reads tensors on the host.
 * @module
 */
import { tf } from "../_deps.ts";
import type { GaussNewton } from "../curvature/gauss_newton.ts";
import type { Loss } from "../../ops/losses.ts";
import { leaves, type Params, unflatten } from "../tree.ts";
import type { Communicator } from "./communicator.ts";

/**
 * The mean over the ranks of float32 tensors, as new tensors of the same shapes: one all-reduce of
 * their concatenation. The sum is float32 (MPI_FLOAT); the division by the number of ranks is
 * rounded once.
 */
export const allreduceMean = (ts: readonly tf.Tensor[], comm: Communicator): tf.Tensor[] => {
  for (const t of ts) {
    if (t.dtype !== "float32") {
      throw new Error(`allreduceMean: a ${t.dtype} tensor of shape [${t.shape}]; expected float32`);
    }
  }
  if (ts.length === 0) return [];
  const flat = tf.tidy(() => tf.concat(ts.map((t) => tf.reshape(t, [-1]))));
  const buf = new Float32Array(flat.dataSync());
  flat.dispose();
  comm.allreduceSum(buf);
  if (comm.size > 1) { for (let i = 0; i < buf.length; i++) buf[i] = buf[i] / comm.size; }
  let at = 0;
  return ts.map((t) => {
    const part = tf.tensor(buf.slice(at, at + t.size), t.shape, "float32");
    at += t.size;
    return part;
  });
};

/** The mean over the ranks of a parameter tree (new tensors). */
export const allreduceMeanTree = <P extends Params>(p: P, comm: Communicator): P =>
  unflatten(p, allreduceMean(leaves(p), comm));

/** The mean over the ranks of one number. */
export const allreduceMeanNumber = (x: number, comm: Communicator): number => {
  const buf = new Float64Array([x]);
  comm.allreduceSum(buf);
  return buf[0] / comm.size;
};

/**
 * `loss` whose value is the mean over the ranks (its gradient and Hessian products stay per shard:
 * `reducedCurvature` reduces them in parameter space). The value is what the step logs and what
 * optimizers that evaluate the loss themselves (HF-LM's ρ, MLHF's safeguard) compare.
 */
export const reducedLoss = (loss: Loss, comm: Communicator): Loss => ({
  ...loss,
  value: (z, y) => {
    const v = loss.value(z, y);
    const [m] = allreduceMean([v], comm);
    v.dispose();
    return m as tf.Scalar;
  },
});

/**
 * `gn` with its gradient and G·v products averaged over the ranks (one all-reduce each); the loss
 * comes from a `reducedLoss`. The logits, J·v, Jᵀ·u and the recorded ops stay this shard's (K-FAC's
 * factors are per shard: not supported data-parallel). Disposing it disposes `gn`.
 */
export const reducedCurvature = <P extends Params>(
  gn: GaussNewton<P>,
  comm: Communicator,
): GaussNewton<P> => {
  const gradient = allreduceMeanTree(gn.gradient, comm);
  return {
    loss: gn.loss,
    logits: gn.logits,
    aux: gn.aux,
    gradient,
    jvp: (v) => gn.jvp(v),
    vjp: (u) => gn.vjp(u),
    product: (v) => {
      const local = gn.product(v);
      const mean = allreduceMeanTree(local, comm);
      tf.dispose(leaves(local));
      return mean;
    },
    ops: gn.ops,
    vjpWithOpCotangents: (u) => gn.vjpWithOpCotangents(u),
    dispose: () => {
      tf.dispose(leaves(gradient));
      gn.dispose();
    },
  };
};
