/**
 * Bench suite of issue 6: one training step of each optimizer (linearization, update, apply) on the
 * CUDA-convnet at batch 128 (32×32×3), with its ratio to an SGD step timed in alternation with it
 * in the note (targets: MLHF
 * with K = 4 at most 6× SGD; the original's cost model gives 7–8×), and beside it the ratio of the
 * GEMM multiply-adds the two steps run (`lib/bench/gemm_count.ts`): the slowdown an implementation
 * that spent all its time in GEMMs would show; MLHF K = 4 also with its safeguard `lm+trust` (the
 * safeguard's cost: one more forward pass). MLHF uses freshly initialized
 * meta-weights (the cost does not depend on their values). Also one SGD step of ResNet-20 v2 (batch
 * norm in train mode) at the same batch, and of ResNet-18 v2 at batch 4 (224×224, 1001 classes);
 * `tools/bench_torch.py` has both in PyTorch. Rows are prefixed `optim/`.
 * @module
 */
import { tf } from "../../lib/_deps.ts";
import {
  type BenchOptions,
  type BenchRow,
  type BenchSuite,
  measure,
  measureInterleaved,
  type Timed,
  untidied,
} from "../../lib/bench/harness.ts";
import type { Batch } from "../../lib/curvature/gauss_newton.ts";
import { randomBatch } from "../../lib/bench/batch.ts";
import { keyFromSeed, split } from "../../lib/prng.ts";
import { disposeTree, type Params } from "../../lib/tree.ts";
import { softmaxCrossEntropy } from "../../ops/losses.ts";
import { cudaConvnet } from "../../models/cuda_convnet.ts";
import { resnet18V2ImageNet, resnetV2Cifar } from "../../models/resnet_v2.ts";
import { kindLeaves } from "../../models/types.ts";
import { disposeState, type GradientTransformation } from "../../lib/optim/base.ts";
import { adam, momentum, rmsprop, sgd } from "../../lib/optim/alias.ts";
import { hessianFree } from "../../lib/optim/hessian_free.ts";
import { kfac } from "../../lib/optim/kfac.ts";
import { mlhf } from "../../lib/optim/mlhf/optimizer.ts";
import { initMetaWeights } from "../../lib/optim/mlhf/meta_weights.ts";
import { trainStep, trainStepDevice } from "../../lib/train/step.ts";
import { gemmMultiplyAdds } from "../../lib/bench/gemm_count.ts";

const BATCH = 128;
/** ResNet-18's batch (224×224×3): `deno task eval --preset imagenet-resnet18 --batch-size 4`. */
const RESNET18_BATCH = 4;

type AnyModel = import("../../models/types.ts").Model<Params, Params>;

/**
 * One training step from fixed params and state, returning what it made to read and free. An
 * optimizer with `prepare` (K-FAC's host inversions, read asynchronously) runs as the training loop
 * runs it, through `trainStep`: untidied, its new state freed here. With `readAll` false only the
 * step's numbers (`read`) are returned and read, as a training loop reads them (and as
 * `tools/bench_torch.py` reads only the loss); the new parameters are freed unread by the tidy. The
 * step is still complete when they are read: on the CPU it ran synchronously, and a GPU backend's
 * queue runs the update before the later read. (Read back, every parameter array of a ResNet-18,
 * 47 MB, stayed the caller's, so the native backend could never recycle it: about every other step
 * took ≈13 000 page faults, 350–430 against 520–620 ms.)
 */
export const oneStep = <S>(
  model: AnyModel,
  params: Params,
  opt: GradientTransformation<S, Params>,
  state: S,
  batch: Batch,
  readAll = true,
): Timed => {
  const inputs = {
    model: model.apply,
    lossFn: softmaxCrossEntropy,
    optimizer: opt,
    params,
    state,
    batch,
    key: keyFromSeed(9),
    keepPrevious: true,
  };
  if (opt.prepare) {
    return untidied(async () => {
      const r = await trainStep(inputs);
      disposeState(r.state, state);
      return [r.params, r.aux] as unknown as tf.TensorContainer;
    });
  }
  return () => {
    const out = trainStepDevice(inputs);
    // The harness reads the result asynchronously; the step's numbers (`read`) are part of it.
    return readAll ? [out.params, out.aux, out.read] as unknown as tf.TensorContainer : out.read;
  };
};

/** Runs a timed function once, untimed, freeing what it returns (for counting its kernels). */
const runOnce = async (f: Timed): Promise<void> => {
  tf.dispose(typeof f === "function" ? tf.tidy(f) : await f.untidied());
};

/**
 * One SGD step of a ResNet v2 (batch norm in train mode) on `batch`: ResNet-20 (CIFAR layout) or
 * ResNet-18 (ImageNet layout, 224×224, 1001 classes).
 */
const resnetSgdRow = async (
  row: string,
  net: "resnet20" | "resnet18",
  batch: Batch,
  opts: BenchOptions,
): Promise<BenchRow> => {
  const model =
    (net === "resnet20"
      ? resnetV2Cifar({ depth: 20 })
      : resnet18V2ImageNet()) as unknown as AnyModel;
  const init = model.init(keyFromSeed(11), batch.x.shape.slice(1) as [number, number, number]);
  const opt = sgd<Params>({ learningRate: 0.1 });
  const state = opt.init(init.params);
  try {
    // Only the step's numbers are read (`oneStep`), as in a training loop and in PyTorch's row.
    return await measure(row, oneStep(model, init.params, opt, state, batch, false), opts);
  } finally {
    disposeState(state);
    disposeTree(init.params);
    disposeTree(init.state);
  }
};

/**
 * The `optim/cudaConvnet` rows' problem: the models' CUDA-convnet with its initial parameters,
 * random MLHF meta-weights (damping and preconditioner networks) for its parameter kinds, and one
 * random batch of 128 32×32×3 images (also `tools/profile_optim_step.ts`).
 */
export const cudaConvnetBenchProblem = () => {
  const model = cudaConvnet() as unknown as AnyModel;
  const [kp, kx, km] = split(keyFromSeed(5), 3);
  const init = model.init(kp, [32, 32, 3]);
  const kinds = kindLeaves(init.kinds);
  const meta = initMetaWeights(km, {
    dampingMode: "rnn",
    preconditioner: "rnn",
    xInit: "previous",
  }, [...new Set(kinds)]);
  const batch = randomBatch(kx, BATCH, [32, 32, 3], 10);
  return { model, init, kinds, meta, batch };
};

/**
 * The `optim/cudaConvnet` rows' optimizers by row name, SGD first (every other row is timed against
 * it), for the problem's meta-weights and parameter kinds.
 */
export const cudaConvnetBenchOptimizers = (
  meta: ReturnType<typeof cudaConvnetBenchProblem>["meta"],
  kinds: ReturnType<typeof cudaConvnetBenchProblem>["kinds"],
  // deno-lint-ignore no-explicit-any
): Array<[string, GradientTransformation<any, Params>]> => [
  ["sgd", sgd({ learningRate: 0.1 })],
  ["momentum", momentum({ learningRate: 1e-3 })],
  ["adam", adam({ learningRate: 1e-3 })],
  ["rmsprop", rmsprop({ learningRate: 1e-3, decay: 0.99 })],
  ["mlhf K=2", mlhf({ metaWeights: meta, kinds, learningRate: 2, cgIterations: 2 })],
  ["mlhf K=4", mlhf({ metaWeights: meta, kinds, learningRate: 2, cgIterations: 4 })],
  // The safeguard's cost (docs/algorithm.md#safeguard): one more forward pass and a few reductions
  // and selects.
  [
    "mlhf K=4 lm+trust",
    mlhf({ metaWeights: meta, kinds, learningRate: 2, cgIterations: 4, safeguard: "lm+trust" }),
  ],
  ["hf-fixed K=20", hessianFree({ learningRate: 1e-2, damping: 5e-3, cgIterations: 20 })],
  ["kfac", kfac({})],
];

export const optimSuite: BenchSuite = {
  name: "optim",
  run: async (opts) => {
    const { model, init, kinds, meta, batch } = cudaConvnetBenchProblem();
    const optimizers = cudaConvnetBenchOptimizers(meta, kinds);
    const rows: BenchRow[] = [];
    try {
      // Each row is timed in alternation with an SGD step (same params, batch and backend), and its
      // ratio is the ratio of the two medians: a slow phase of a shared machine then hits both.
      const convnetRow = (name: string) => `optim/cudaConvnet b${BATCH}: ${name} step`;
      const [, sgdOpt] = optimizers[0];
      const sgdState = sgdOpt.init(init.params);
      const sgdStep = oneStep(model, init.params, sgdOpt, sgdState, batch);
      let sgdMacs = NaN;
      try {
        for (const [name, opt] of optimizers) {
          const row = convnetRow(name);
          if (!row.includes(opts.filter)) continue;
          const state = opt.init(init.params);
          try {
            const step = oneStep(model, init.params, opt, state, batch);
            const [r, base] = name === "sgd"
              ? await measureInterleaved([[row, step]], opts).then(([x]) => [x, x])
              : await measureInterleaved([[row, step], ["sgd", sgdStep]], opts);
            // The work each step must do, counted once (an untimed step under tf.profile).
            sgdMacs = Number.isNaN(sgdMacs)
              ? await gemmMultiplyAdds(() => runOnce(sgdStep))
              : sgdMacs;
            const macs = await gemmMultiplyAdds(() => runOnce(step));
            const note = `${(r.medianMs / base.medianMs).toFixed(1)}× SGD (${
              base.medianMs.toFixed(0)
            } ms alongside); GEMM multiply-adds ${(macs / 1e9).toFixed(1)} G = ${
              (macs / sgdMacs).toFixed(2)
            }× SGD's`;
            rows.push({ ...r, note });
          } finally {
            disposeState(state);
          }
        }
      } finally {
        disposeState(sgdState);
      }
      const resnetRow = `optim/resnet20 b${BATCH}: sgd step`;
      if (resnetRow.includes(opts.filter)) {
        rows.push(await resnetSgdRow(resnetRow, "resnet20", batch, opts));
      }
      const resnet18Row = `optim/resnet18 b${RESNET18_BATCH} 224: sgd step`;
      if (resnet18Row.includes(opts.filter)) {
        const b18 = randomBatch(keyFromSeed(13), RESNET18_BATCH, [224, 224, 3], 1001);
        try {
          rows.push(await resnetSgdRow(resnet18Row, "resnet18", b18, opts));
        } finally {
          tf.dispose([b18.x, b18.y]);
        }
      }
    } finally {
      disposeTree(init.params);
      disposeTree(init.state);
      tf.dispose([batch.x, batch.y]);
      disposeTree(meta as Params);
    }
    return rows;
  },
};
