/**
 * Bench suite of K-FAC (issue 6, `lib/optim/kfac.ts`), on whatever backend is active:
 * - the float64 JS factor inverses at the CUDA-convnet's factor sizes: n = 385 (local4's A),
 *   n = 1601 (conv2's A, exact) and n = 4097 (local3's A, block-diagonal with 3 blocks of ≤ 2048);
 * - one K-FAC update of the CUDA-convnet at batch 128 (32×32×3) without an inversion (sampling,
 *   the extra linearization, factor EMAs and preconditioning), and one with the inversion of every
 *   factor (what every 10th step costs with invert_every 10).
 * Row names start with `kfac/`.
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
import { disposeTree, leaves, type Params } from "../../lib/tree.ts";
import { gaussNewtonProduct } from "../../lib/curvature/gauss_newton.ts";
import { softmaxCrossEntropy } from "../../ops/losses.ts";
import { cudaConvnet } from "../../models/cuda_convnet.ts";
import { disposeState } from "../../lib/optim/base.ts";
import { kfac, KFAC_DEFAULTS } from "../../lib/optim/kfac.ts";
import { dampedInverse } from "../../lib/optim/kfac/spd.ts";

const BATCH = 128;

/** A random SPD-ish factor RRᵀ/k of size n (rank min(n, k)), as the damped inverse sees it. */
const randomFactor = (n: number, k = 64): Float64Array => {
  const r = normal(keyFromSeed(n), n * k);
  const m = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = 0;
      for (let c = 0; c < k; c++) s += r[i * k + c] * r[j * k + c];
      m[i * n + j] = m[j * n + i] = s / k;
    }
  }
  return m;
};

const inverseRows = async (opts: BenchOptions): Promise<BenchRow[]> => {
  const rows: BenchRow[] = [];
  for (const n of [385, 1601, 4097]) {
    const name = `kfac/factor inverse n=${n}`;
    if (!name.includes(opts.filter)) continue;
    const m = randomFactor(n);
    const maxDim = KFAC_DEFAULTS.maxFactorDim;
    const note = n > maxDim
      ? `block-diagonal, ${Math.ceil(n / maxDim)} blocks (maxFactorDim ${maxDim})`
      : "exact Cholesky inverse, float64 JS";
    rows.push(
      await measure(name, () => (dampedInverse(m, n, 0.1, maxDim), []), {
        runs: Math.min(opts.runs, 3),
        warmup: 0,
      }, note),
    );
  }
  return rows;
};

const stepRows = async (opts: BenchOptions): Promise<BenchRow[]> => {
  const names = {
    cov: `kfac/cudaConvnet b${BATCH}: update with covariance step`,
    inv: `kfac/cudaConvnet b${BATCH}: update with covariance step and inversions`,
  };
  if (!Object.values(names).some((n) => n.includes(opts.filter))) return [];
  const model = cudaConvnet();
  const [kp, kx] = split(keyFromSeed(6), 2);
  const { params, state } = model.init(kp, [32, 32, 3]);
  const batch = randomBatch(kx, BATCH, [32, 32, 3], model.numClasses);
  const { x, y } = batch;
  const gn = gaussNewtonProduct(model.apply, softmaxCrossEntropy, params, batch);
  const opt = kfac<typeof params>();
  const ctx = { params, batch, model: model.apply, key: keyFromSeed(1) };
  // Step 0 (untimed) registers the layers and inverts; timed runs then start from that state at
  // step 1 (no inversion) or step 10 (every factor inverted). New state tensors die in `measure`'s
  // tidy; the prepared state is disposed below.
  const s0 = opt.init(params);
  const [u0, s1] = opt.update(gn.gradient, s0, ctx);
  disposeState(s0, s1);
  disposeTree(u0);
  const rows: BenchRow[] = [];
  const run = (s: typeof s1) => () => leaves(opt.update(gn.gradient, s, ctx)[0] as Params);
  const few = { runs: Math.min(opts.runs, 3), warmup: Math.min(opts.warmup, 1) };
  try {
    if (names.cov.includes(opts.filter)) {
      rows.push(await measure(names.cov, run(s1), few, "sampled Fisher, one extra forward"));
    }
    if (names.inv.includes(opts.filter)) {
      rows.push(await measure(names.inv, run({ ...s1, step: 10 }), few, "every 10th step"));
    }
  } finally {
    disposeState(s1);
    gn.dispose();
    tf.dispose([x, y]);
    disposeTree(params);
    disposeTree(state);
  }
  return rows;
};

/** Factor inverses and CUDA-convnet K-FAC updates. */
export const kfacSuite: BenchSuite = {
  name: "kfac",
  run: async (opts) => [...(await inverseRows(opts)), ...(await stepRows(opts))],
};
