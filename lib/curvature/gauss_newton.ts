/**
 * Generalized Gauss–Newton products G·v = Jᵀ·H_L·(J·v) on one minibatch
 * (docs/algorithm.md#gauss-newton-products). The model is linearized once at (θ, B): the loss, its
 * gradient g = Jᵀ·∇_z L and every G·v then reuse the saved primal activations, so CG pays for the
 * forward pass once.
 * @module
 */
import { tf } from "../_deps.ts";
import { type Linearization, linearize, type ModelOutput } from "../../ops/interpret.ts";
import type { Nn } from "../../ops/nn.ts";
import type { Loss } from "../../ops/losses.ts";
import { fromVector, keepTree, type Params, tidyTree, toVector } from "../tree.ts";

/** A model written once against the DSL: logits (and optional aux outputs) from parameters and data. */
export type ModelFn<P extends Params> = (nn: Nn, params: P, x: tf.Tensor) => ModelOutput;

/** A minibatch: inputs and targets shaped like the logits (one-hot for classification). */
export interface Batch {
  /** Inputs, batch first. */
  readonly x: tf.Tensor;
  /** Targets, shaped like the logits. */
  readonly y: tf.Tensor;
}

/** The curvature of a loss at (θ, B). Owns its tensors until `dispose()`. */
export interface GaussNewton<P extends Params> {
  /** L(θ; B). */
  readonly loss: tf.Scalar;
  /** z = f(X; θ). */
  readonly logits: tf.Tensor;
  /** Auxiliary model outputs (e.g. batch-norm statistics). */
  readonly aux: tf.TensorContainer;
  /** g = ∇θ L = Jᵀ·∇_z L. */
  readonly gradient: P;
  /** J·v. */
  jvp(v: P): tf.Tensor;
  /** Jᵀ·u. */
  vjp(u: tf.Tensor): P;
  /** G·v = Jᵀ·H_L·(J·v). */
  product(v: P): P;
  /** The linearization's recorded ops (for curvature blocks such as K-FAC's). */
  readonly ops: Linearization<P>["ops"];
  /** Jᵀ·u plus the cotangent reaching each recorded op's output. */
  vjpWithOpCotangents: Linearization<P>["vjpWithOpCotangents"];
  /** Disposes every tensor it owns. */
  dispose(): void;
}

/** Linearizes `model` at (params, batch) and returns the loss, gradient and v ↦ G·v. */
export const gaussNewtonProduct = <P extends Params>(
  model: ModelFn<P>,
  loss: Loss,
  params: P,
  batch: Batch,
): GaussNewton<P> => {
  const lin = linearize((nn, p: P) => model(nn, p, batch.x), params);
  const z = lin.output;
  const value = tf.keep(loss.value(z, batch.y));
  const gradient = keepTree(tidyTree(() => lin.vjp(loss.gradient(z, batch.y))));
  return {
    loss: value,
    logits: z,
    aux: lin.aux,
    gradient,
    jvp: (v) => lin.jvp(v),
    vjp: (u) => lin.vjp(u),
    product: (v) => tidyTree(() => lin.vjp(loss.hessianProduct(z, batch.y, lin.jvp(v)))),
    ops: lin.ops,
    vjpWithOpCotangents: (u) => lin.vjpWithOpCotangents(u),
    dispose: () => {
      value.dispose();
      tf.dispose(gradient as unknown as tf.TensorContainer);
      lin.dispose();
    },
  };
};

/**
 * The "gradient of H" trick (docs/algorithm.md#gradient-of-h): v ↦ G·v whose backward pass is
 * ū ↦ G·ū (G symmetric) and which treats G as a constant in θ. One `tf.customGrad` on the flattened
 * vector (customGrad takes one tensor, docs/tfjs-notes.md#customgrad-returns-one-tensor); G·v
 * itself is built from R-forward and transpose rules, not from TF.js's tape, which is what makes
 * this possible.
 */
export const symmetricProduct = <P extends Params>(gn: GaussNewton<P>, like: P): (v: P) => P => {
  const flat = (v: tf.Tensor): tf.Tensor => toVector(gn.product(fromVector(like, v)));
  const f = (v: tf.Tensor) => ({ value: flat(v), gradFunc: (dy: tf.Tensor) => flat(dy) });
  const op = tf.customGrad(f as unknown as Parameters<typeof tf.customGrad>[0]);
  return (v: P) => fromVector(like, op(toVector(v)) as tf.Tensor);
};
