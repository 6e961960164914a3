/**
 * Bench suite of issue 3 (core math): on an MLP (784→256 tanh→10, MNIST-size batch 128) and the
 * CUDA-convnet (batch 128, 32×32×3), the median time of one gradient (linearization), one G·v with
 * the activations reused, and one CG solve with K = 4 (5 G·v products, P ≡ 1, λ = 1e-3); the G·v
 * row's note gives G·v / gradient (target ≤ 1.5). Rows are prefixed `core/`.
 * @module
 */
import { tf } from "../../lib/_deps.ts";
import { randomBatch } from "../../lib/bench/batch.ts";
import {
  type BenchOptions,
  type BenchRow,
  type BenchSuite,
  measure,
} from "../../lib/bench/harness.ts";
import { keyFromSeed, normal, split } from "../../lib/prng.ts";
import { disposeTree, mapTree, type Params, size } from "../../lib/tree.ts";
import { gaussNewtonProduct } from "../../lib/curvature/gauss_newton.ts";
import { conjugateGradient, dampedOperator } from "../../lib/solvers/cg.ts";
import { softmaxCrossEntropy } from "../../ops/losses.ts";
import { mlp } from "../../models/mlp.ts";
import { cudaConvnet } from "../../models/cuda_convnet.ts";
import type { InputShape, Model } from "../../models/types.ts";

const BATCH = 128;

const rowsFor = async <P extends Params, S extends Params>(
  label: string,
  model: Model<P, S>,
  shape: InputShape,
  opts: BenchOptions,
): Promise<BenchRow[]> => {
  const names = [`core/${label}: gradient`, `core/${label}: G·v`, `core/${label}: CG K=4`];
  if (!names.some((n) => n.includes(opts.filter))) return [];
  const [kp, kx, kv] = split(keyFromSeed(3), 3);
  const { params, state } = model.init(kp, shape);
  const batch = randomBatch(kx, BATCH, shape, 10);
  const { x, y } = batch;
  const v = mapTree(params, (t, i) => tf.tensor(normal(split(kv, i + 1)[i], t.size), t.shape));
  const rows: BenchRow[] = [];
  const note = `${size(params)} params, batch ${BATCH}`;
  try {
    const grad = await measure(
      names[0],
      () => {
        const gn = gaussNewtonProduct(model.apply, softmaxCrossEntropy, params, batch);
        const g = mapTree(gn.gradient, (t) => t.clone());
        gn.dispose();
        return g as unknown as tf.TensorContainer;
      },
      opts,
      note,
    );
    if (names[0].includes(opts.filter)) rows.push(grad);
    const gn = gaussNewtonProduct(model.apply, softmaxCrossEntropy, params, batch);
    try {
      const gv = await measure(
        names[1],
        () => gn.product(v) as unknown as tf.TensorContainer,
        opts,
      );
      if (names[1].includes(opts.filter)) {
        rows.push({ ...gv, note: `G·v / gradient = ${(gv.medianMs / grad.medianMs).toFixed(2)}` });
      }
      if (names[2].includes(opts.filter)) {
        rows.push(
          await measure(
            names[2],
            () =>
              conjugateGradient(dampedOperator(gn.product, 1e-3), gn.gradient, {
                x0: mapTree(params, (t) => tf.zerosLike(t)),
                maxIterations: 4,
              }).x as unknown as tf.TensorContainer,
            opts,
            "5 G·v products (r₀ and 4 iterations)",
          ),
        );
      }
    } finally {
      gn.dispose();
    }
  } finally {
    disposeTree(params);
    disposeTree(state);
    disposeTree(v);
    tf.dispose([x, y]);
  }
  return rows;
};

export const coreSuite: BenchSuite = {
  name: "core",
  run: async (opts) => [
    ...await rowsFor(
      "mlp 784-256-10 tanh",
      mlp({ hidden: [256], activation: "tanh" }),
      [28, 28, 1],
      opts,
    ),
    ...await rowsFor("cudaConvnet", cudaConvnet(), [32, 32, 3], opts),
  ],
};
