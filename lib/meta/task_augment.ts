/**
 * A drawn task (`task_mix.ts`) made concrete (docs/algorithm.md#task-augmentation): its model,
 * reparameterized per tensor as θ = s·φ (the network sees θ, the optimizer optimizes φ, so the
 * same function comes with gradients scaled by s and curvature by s², and the meta-networks meet
 * many curvature scales), its initial φ = θ₀/s, and its batches: the first `batchSize` examples
 * of each data batch, pixels and labels permuted when the task says so, labels one-hot.
 * @module
 */
import { tf } from "../_deps.ts";
import type { Batch, ModelFn } from "../curvature/gauss_newton.ts";
import { leaves, type Params, unflatten } from "../tree.ts";
import { cudaConvnet } from "../../models/cuda_convnet.ts";
import { mlp } from "../../models/mlp.ts";
import { type InputShape, kindLeaves, type Model, type ParamKind } from "../../models/types.ts";
import {
  initKey,
  labelPermutation,
  pixelPermutation,
  type TaskAugmentation,
  type TaskFamily,
  taskScales,
  type TaskSpec,
} from "./task_mix.ts";

/** The model of a family with `classes` outputs. */
export const familyModel = (f: TaskFamily, classes: number): Model<Params, Params> =>
  (f.kind === "mlp"
    ? mlp({ numClasses: classes, hidden: f.hidden, activation: f.activation })
    : cudaConvnet({ numClasses: classes, filters: f.filters, units: f.units })) as unknown as Model<
      Params,
      Params
    >;

/**
 * The model seen through θ = s·φ: `model` applied to s_j·φ_j for every leaf j (leaves with s = 1
 * pass unchanged). Works under every interpreter (the scaling is a DSL op), so its gradient is
 * s·∇θL and its Gauss–Newton product v ↦ S·G_θ·S·v.
 */
export const reparameterize = <P extends Params>(
  model: ModelFn<P>,
  scales: readonly number[],
): ModelFn<P> =>
(nn, phi, x) => {
  const ls = leaves(phi);
  if (ls.length !== scales.length) {
    throw new RangeError(`reparameterize: ${scales.length} scales for ${ls.length} leaves`);
  }
  return model(
    nn,
    unflatten(phi, ls.map((t, j) => scales[j] === 1 ? t : nn.mulScalar(t, scales[j]))),
    x,
  );
};

/** φ = θ/s per leaf (new tensors; the caller owns θ and the result). */
export const toReparameterized = <P extends Params>(theta: P, scales: readonly number[]): P =>
  unflatten(
    theta,
    tf.tidy(() => leaves(theta).map((t, j) => scales[j] === 1 ? t.clone() : tf.div(t, scales[j]))),
  );

/** A task made concrete: its model (reparameterized), kinds, and batch transform. */
export interface ConcreteTask {
  /** The drawn task it makes concrete. */
  readonly spec: TaskSpec;
  /** The model through θ = s·φ. */
  readonly model: ModelFn<Params>;
  /** The kind of each leaf of φ. */
  readonly kinds: readonly ParamKind[];
  /** The per-tensor scales s. */
  readonly scales: readonly number[];
  /** The initial φ = θ₀/s (fresh tensors each call; θ₀ from the task's key). */
  initPhi(): Params;
  /** The task's batch from a data batch (which it does not dispose). */
  batch(b: { readonly x: tf.Tensor; readonly y: tf.Tensor1D }): Batch;
  /** Frees the permutation tensors. */
  dispose(): void;
}

/** Makes task `spec` of a mix concrete for images of `shape` with `classes` classes. */
export const concreteTask = (
  spec: TaskSpec,
  mix: readonly TaskFamily[],
  aug: TaskAugmentation,
  shape: InputShape,
  classes: number,
): ConcreteTask => {
  const m = familyModel(mix[spec.family], classes);
  const probe = m.init(initKey(spec), shape);
  const kinds = kindLeaves(probe.kinds) as ParamKind[];
  tf.dispose([...leaves(probe.params), ...leaves(probe.state)]);
  const scales = taskScales(spec, kinds.length, aug.scaleRange);
  const size = shape[0] * shape[1] * shape[2];
  const lp = labelPermutation(spec, classes), pp = pixelPermutation(spec, size);
  const labelPerm = lp ? tf.tensor1d(lp, "int32") : null;
  const pixelPerm = pp ? tf.tensor1d(pp, "int32") : null;
  return {
    spec,
    model: reparameterize(m.apply, scales),
    kinds,
    scales,
    initPhi: () => {
      const init = m.init(initKey(spec), shape);
      tf.dispose(leaves(init.state));
      const phi = toReparameterized(init.params, scales);
      tf.dispose(leaves(init.params));
      return phi;
    },
    batch: (b) =>
      tf.tidy(() => {
        const n = Math.min(spec.batchSize, b.x.shape[0]);
        let x = tf.slice(b.x, 0, n);
        let y = tf.slice(b.y, 0, n) as tf.Tensor1D;
        if (pixelPerm) x = tf.reshape(tf.gather(tf.reshape(x, [n, -1]), pixelPerm, 1), x.shape);
        if (labelPerm) y = tf.gather(labelPerm, y) as tf.Tensor1D;
        return { x, y: tf.cast(tf.oneHot(y, classes), "float32") };
      }),
    dispose: () => tf.dispose([labelPerm, pixelPerm].filter((t) => t !== null)),
  };
};
