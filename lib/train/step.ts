/**
 * One training step for any optimizer: linearize the model once at (θ, B) (loss, gradient and
 * v ↦ G·v from the same saved activations), run the optimizer's update, apply it, and free
 * everything but the new parameters and state. The previous parameters and state are disposed
 * unless `keepPrevious` is set. With `checkFinite`, whether the new parameters, optimizer state and
 * auxiliary outputs are all finite is reduced on the device and read with the loss (one read).
 *
 * The step itself ({@link trainStepDevice}) never reads the device: the loss, accuracy, finite flag
 * and diagnostics come back as one tensor that {@link trainStep} reads with one `await` (webgpu
 * under Deno has no synchronous read; tests/no_sync_reads_test.ts checks this).
 * @module
 */
import { tf } from "../_deps.ts";
import {
  type Batch,
  type GaussNewton,
  gaussNewtonProduct,
  type ModelFn,
} from "../curvature/gauss_newton.ts";
import type { Loss } from "../../ops/losses.ts";
import { leaves, type Params } from "../tree.ts";
import { applyUpdates, disposeState, type GradientTransformation } from "../optim/base.ts";
import { finiteFlag } from "../optim/finite.ts";
import type { Key } from "../prng.ts";

/** What {@link trainStep} returns. */
export interface StepResult<P extends Params, S> {
  /** θ_{t+1}. */
  readonly params: P;
  /** The optimizer's next state. */
  readonly state: S;
  /** L(θ_t; B_t), before the update. */
  readonly loss: number;
  /**
   * The fraction of the batch whose logits' arg-max matches the target's arg-max (before the
   * update); NaN unless the logits and targets are both [B, C].
   */
  readonly accuracy: number;
  /** The model's auxiliary outputs (e.g. batch-norm statistics), owned by the caller. */
  readonly aux: tf.TensorContainer;
  /**
   * The optimizer's per-step diagnostics (`GradientTransformation.diagnostics`, e.g. MLHF's
   * safeguard: `rejected`, `mu`), read with the loss; empty when it has none.
   */
  readonly diagnostics: Readonly<Record<string, number>>;
  /**
   * With `checkFinite`: false when the new parameters, state or aux may hold a NaN or ±∞
   * (`finiteFlag`: confirm with `nonFinitePath`); always true without it.
   */
  readonly finite: boolean;
}

/** What {@link trainStep} needs. */
export interface StepInputs<P extends Params, S> {
  /** The model. */
  readonly model: ModelFn<P>;
  /** Its loss. */
  readonly lossFn: Loss;
  /** The optimizer. */
  readonly optimizer: GradientTransformation<S, P>;
  /** θ_t. */
  readonly params: P;
  /** The optimizer's state. */
  readonly state: S;
  /** B_t, the step's batch. */
  readonly batch: Batch;
  /** The step's PRNG key (optimizers that sample). */
  readonly key?: Key;
  /** Keep the previous params and state alive (default false: they are disposed). */
  readonly keepPrevious?: boolean;
  /**
   * Check the new parameters, state and aux for NaN/±∞ with one device-side reduction, read
   * together with the loss (default false).
   */
  readonly checkFinite?: boolean;
  /**
   * Wraps the step's curvature (loss, gradient, v ↦ G·v) before the optimizer sees it; data
   * parallelism passes lib/distributed's `reducedCurvature` (the gradient and every G·v averaged
   * over the ranks). Disposing the wrapper must dispose the curvature it wraps. Default: none.
   */
  readonly curvature?: (gn: GaussNewton<P>) => GaussNewton<P>;
}

/** A deep copy of a tensor container (tensors cloned, everything else kept). */
const cloneContainer = (c: tf.TensorContainer): tf.TensorContainer => {
  if (c instanceof tf.Tensor) return tf.clone(c);
  if (Array.isArray(c)) return c.map(cloneContainer);
  if (c && typeof c === "object" && !ArrayBuffer.isView(c)) {
    return Object.fromEntries(
      Object.entries(c as Record<string, tf.TensorContainer>).map((
        [k, v],
      ) => [k, cloneContainer(v)]),
    );
  }
  return c;
};

/**
 * Arg-max agreement of logits z and targets y, both [B, C], as a device scalar (NaN for other
 * shapes); the caller owns it.
 */
export const batchAccuracy = (z: tf.Tensor, y: tf.Tensor): tf.Scalar =>
  z.rank === 2 && y.rank === 2 && z.shape[0] === y.shape[0] && z.shape[1] === y.shape[1]
    ? tf.tidy(() => tf.mean(tf.cast(tf.equal(tf.argMax(z, -1), tf.argMax(y, -1)), "float32")))
    : tf.scalar(NaN);

/** The step's curvature at θ, wrapped by `i.curvature` when given (data parallelism). */
const curvatureOf = <P extends Params, S>(i: StepInputs<P, S>): GaussNewton<P> => {
  const linearized = gaussNewtonProduct(i.model, i.lossFn, i.params, i.batch);
  return i.curvature ? i.curvature(linearized) : linearized;
};

/** A step's tensors before any host read: see {@link trainStepDevice}. */
export interface StepTensors<P extends Params, S> {
  /** θ_{t+1}. */
  readonly params: P;
  /** The optimizer's next state. */
  readonly state: S;
  /** The model's auxiliary outputs, owned by the caller. */
  readonly aux: tf.TensorContainer;
  /** [loss, accuracy, finite flag?, ...diagnostics]: what {@link readStep} reads (and frees). */
  readonly read: tf.Tensor1D;
  /** The diagnostics' names, in `read`'s order. */
  readonly names: readonly string[];
  /** Whether `read` holds the finite flag. */
  readonly checkFinite: boolean;
}

/** The update's context for a step whose curvature is `gn`. */
const contextOf = <P extends Params, S>(i: StepInputs<P, S>, gn: GaussNewton<P>) => ({
  params: i.params,
  batch: i.batch,
  loss: gn.loss,
  curvature: gn,
  model: i.model,
  lossFn: i.lossFn,
  key: i.key,
});

/**
 * The device part of a step from its curvature `gn` (owned by the caller) and the optimizer state
 * to update (`i.state`, or what `prepare` made of it: the tensors it added and the update does not
 * carry on are freed too).
 */
const updateOnDevice = <P extends Params, S>(
  i: StepInputs<P, S>,
  gn: GaussNewton<P>,
  state: S,
): StepTensors<P, S> => {
  let names: string[] = [];
  const out = tf.tidy(() => {
    const [u, s] = i.optimizer.update(gn.gradient, state, contextOf(i, gn));
    const params = applyUpdates(i.params, u);
    const aux = cloneContainer(gn.aux);
    // The loss, accuracy, finite flag and diagnostics in one tensor: one host read for all.
    const diagnostics = i.optimizer.diagnostics?.(s) ?? {};
    names = Object.keys(diagnostics);
    const parts = [
      gn.loss,
      batchAccuracy(gn.logits, i.batch.y),
      ...(i.checkFinite ? [finiteFlag(params, s, aux)] : []),
      ...names.map((k) => diagnostics[k]),
    ];
    const read = tf.concat(parts.map((t) => tf.reshape(tf.cast(t, "float32"), [1])));
    return { params, state: s, aux, read } as unknown as tf.TensorContainer;
  }) as unknown as { params: P; state: S; aux: tf.TensorContainer; read: tf.Tensor1D };
  if (state !== i.state) disposeState(state, [i.state, out.state]);
  if (!i.keepPrevious) {
    disposeState(i.state, out.state);
    const keep = new Set(leaves(out.params).map((t) => t.id));
    leaves(i.params).forEach((t) => keep.has(t.id) || t.dispose());
  }
  return { ...out, names, checkFinite: i.checkFinite === true };
};

/**
 * Runs one step on the device without reading anything back (so it never waits for the device):
 * the new parameters and state, and the numbers to log as one tensor for {@link readStep}. An
 * optimizer with `prepare` (K-FAC) is not prepared here: {@link trainStep} does that.
 */
export const trainStepDevice = <P extends Params, S>(i: StepInputs<P, S>): StepTensors<P, S> => {
  const gn = curvatureOf(i);
  try {
    return updateOnDevice(i, gn, i.state);
  } finally {
    gn.dispose();
  }
};

/** A step's result from its tensors and the values read from `t.read` (however they were read). */
export const stepResult = <P extends Params, S>(
  t: StepTensors<P, S>,
  values: ArrayLike<number>,
): StepResult<P, S> => {
  const first = t.checkFinite ? 3 : 2;
  return {
    params: t.params,
    state: t.state,
    loss: values[0],
    accuracy: values[1],
    aux: t.aux,
    diagnostics: Object.fromEntries(t.names.map((k, j) => [k, values[first + j]])),
    finite: t.checkFinite ? values[2] === 1 : true,
  };
};

/** Reads a step's numbers with one `await` (and frees `read`). */
export const readStep = async <P extends Params, S>(
  t: StepTensors<P, S>,
): Promise<StepResult<P, S>> => {
  let values: Float32Array;
  try {
    values = await t.read.data() as Float32Array;
  } finally {
    t.read.dispose();
  }
  return stepResult(t, values);
};

/**
 * Runs one step and reads its numbers with one `await`; see the module doc. An optimizer's
 * `prepare` (K-FAC's host inversions) is awaited first, with the step's curvature.
 */
export const trainStep = async <P extends Params, S>(
  i: StepInputs<P, S>,
): Promise<StepResult<P, S>> => {
  if (!i.optimizer.prepare) return await readStep(trainStepDevice(i));
  const gn = curvatureOf(i);
  let pending: StepTensors<P, S>;
  try {
    const state = await i.optimizer.prepare(i.state, contextOf(i, gn));
    pending = updateOnDevice(i, gn, state);
  } finally {
    gn.dispose();
  }
  return await readStep(pending);
};
