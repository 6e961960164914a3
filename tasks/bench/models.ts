/**
 * Bench suite of issue 4 (models in the DSL), on whatever backend is active, for the CUDA-convnet
 * and ResNet-20 v2 on CIFAR-size batches of 128:
 * - forward: the plain interpreter in train mode;
 * - gradient (linearize): `gaussNewtonProduct(...).gradient`, i.e. one recorded forward plus the
 *   transposes;
 * - gradient (tf.grads): TF.js's reverse mode through the plain interpreter;
 * - G·v: `gn.product(v)` with the linearization reused (its note gives G·v / gradient).
 * Rows whose name lacks `opts.filter` are skipped (a model is not even built when all its rows are).
 * @module
 */
import { tf } from "../../lib/_deps.ts";
import {
  type BenchOptions,
  type BenchRow,
  type BenchSuite,
  measure,
} from "../../lib/bench/harness.ts";
import { randomBatch } from "../../lib/bench/batch.ts";
import { keyFromSeed, normal, split } from "../../lib/prng.ts";
import { disposeTree, leaves, mapTree, type Params, size, unflatten } from "../../lib/tree.ts";
import { gaussNewtonProduct } from "../../lib/curvature/gauss_newton.ts";
import { softmaxCrossEntropy } from "../../ops/losses.ts";
import { plain } from "../../ops/interpret.ts";
import { cudaConvnet } from "../../models/cuda_convnet.ts";
import { resnetV2Cifar } from "../../models/resnet_v2.ts";
import { type InputShape, logitsOf, type Model } from "../../models/types.ts";

const BATCH = 128;
const SHAPE: InputShape = [32, 32, 3];

/** The four rows of one model; `label` prefixes every row name. */
const modelRows = async <P extends Params, S extends Params>(
  label: string,
  model: Model<P, S>,
  opts: BenchOptions,
): Promise<BenchRow[]> => {
  const names = {
    forward: `${label}: forward`,
    gradLin: `${label}: gradient (linearize)`,
    gradTape: `${label}: gradient (tf.grads via plain)`,
    gv: `${label}: G·v (linearization reused)`,
  };
  const want = (name: string) => name.includes(opts.filter);
  if (!Object.values(names).some(want)) return [];

  const [kp, kx, kv] = split(keyFromSeed(4), 3);
  const { params, state } = model.init(kp, SHAPE);
  const batch = randomBatch(kx, BATCH, SHAPE, model.numClasses);
  const { x, y } = batch;
  const rows: BenchRow[] = [];
  const note = `${size(params)} params, batch ${BATCH}`;
  try {
    if (want(names.forward)) {
      rows.push(
        await measure(names.forward, () => logitsOf(model.apply(plain, params, x)), opts, note),
      );
    }
    let gradMs: number | undefined, tapeMs: number | undefined;
    if (want(names.gradLin)) {
      const row = await measure(
        names.gradLin,
        () => {
          const gn = gaussNewtonProduct(model.apply, softmaxCrossEntropy, params, batch);
          const g = leaves(gn.gradient).map((t) => t.clone());
          gn.dispose();
          return g;
        },
        opts,
        note,
      );
      gradMs = row.medianMs;
      rows.push(row);
    }
    if (want(names.gradTape)) {
      const ps = leaves(params);
      const lossOf = (...xs: tf.Tensor[]) =>
        softmaxCrossEntropy.value(logitsOf(model.apply(plain, unflatten(params, xs), x)), y);
      const row = await measure(names.gradTape, () => tf.grads(lossOf)(ps), opts, note);
      tapeMs = row.medianMs;
      rows.push(row);
    }
    if (want(names.gv)) {
      const gn = gaussNewtonProduct(model.apply, softmaxCrossEntropy, params, batch);
      const ks = split(kv, leaves(params).length);
      const v = mapTree(params, (p, i) => tf.tensor(normal(ks[i], p.size), p.shape));
      try {
        const row = await measure(names.gv, () => leaves(gn.product(v)), opts, note);
        const ratio = (ms: number | undefined, what: string) =>
          ms === undefined ? [] : [`G·v/gradient(${what}) = ${(row.medianMs / ms).toFixed(2)}`];
        const parts = [...ratio(gradMs, "linearize"), ...ratio(tapeMs, "tf.grads")];
        rows.push({ ...row, note: parts.length ? `${note}; ${parts.join(", ")}` : note });
      } finally {
        gn.dispose();
        disposeTree(v);
      }
    }
  } finally {
    tf.dispose([x, y]);
    disposeTree(params);
    disposeTree(state);
  }
  return rows;
};

/** Forward, gradient and G·v rows for the CUDA-convnet and ResNet-20 v2 (batch 128, 32×32×3). */
export const modelsSuite: BenchSuite = {
  name: "models",
  run: async (opts) => [
    ...(await modelRows(`models/cudaConvnet b${BATCH}`, cudaConvnet(), opts)),
    ...(await modelRows(`models/resnetV2Cifar20 b${BATCH}`, resnetV2Cifar({ depth: 20 }), opts)),
  ],
};
