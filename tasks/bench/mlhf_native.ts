/**
 * Bench suite of the native backend's MLHF-specific paths (rows prefixed `mlhf-native/`, native
 * only; other backends get no rows): the meta-networks' LSTM row pass at the CUDA-convnet's largest
 * kind (1 648 512 coordinates, random inputs) on one thread and on all threads (`MLHF_THREADS`),
 * into a fresh output each call and (as the `MlhfLstmNet` kernel does, from the recycling pool)
 * into one kept output, these two in alternation;
 * stacking its three input columns; and max-pool's linearization at the convnet's first pool
 * ([128, 32, 32, 64], 2×2 stride 2 SAME) as kh·kw masks (every other backend) against arg-max
 * indices: the residual, J·v and Jᵀ·u; the same pooling by the JS loops (random input) and by
 * oneDNN (a ReLU's output: `lib/backend/native/kernels/pool_dnnl.ts`); the ReLU and its step.
 * @module
 */
import { tf } from "../../lib/_deps.ts";
import {
  type BenchRow,
  type BenchSuite,
  measure,
  measureInterleaved,
} from "../../lib/bench/harness.ts";
import { NATIVE_BACKEND } from "../../lib/backend/native/backend.ts";
import {
  gatherFlat,
  maxPoolArgMax,
  maxPoolGradKernel,
  maxPoolWithArgMax,
  scatterAddFlat,
} from "../../ops/window_kernels.ts";
import { lstmRowsOneThread, packedLength, U } from "../../lib/backend/native/lstm_rows.ts";
import { rowThreadsStatus, runLstmRows } from "../../lib/backend/native/lstm_threads.ts";
import { extractPatches, firstArgMaxMasks, windowGeometry } from "../../ops/windows.ts";
import { keyFromSeed, uniform } from "../../lib/prng.ts";

const P = "mlhf-native/";

/** n values uniform in [−1, 1), seeded. */
const randArray = (n: number, seed: number): Float32Array => uniform(keyFromSeed(seed), n, -1, 1);
/** Coordinates of the CUDA-convnet's conv-kernel kind (the larger LSTM batch of a step). */
const ROWS = 1_648_512;

const lstmRows = async (opts: { runs: number; warmup: number }, want: (n: string) => boolean) => {
  const one = `${P}LSTM pass ${ROWS} rows: one thread`;
  const all = `${P}LSTM pass ${ROWS} rows: all threads`;
  const kept = `${P}LSTM pass ${ROWS} rows: all threads, kept output`;
  const rows: BenchRow[] = [];
  if (!want(one) && !want(all) && !want(kept)) return rows;
  const x = randArray(ROWS * 3, 1);
  // The previous step's states as the kernel leaves them (on shared memory when threaded).
  const prev = new Float32Array(new SharedArrayBuffer(4 * packedLength(ROWS, 2, true)));
  prev.set(randArray(prev.length, 2));
  const layers = [0, 1].map((l) => ({
    w: randArray(((l ? U : 3) + U) * 4 * U, 3 + l),
    b: randArray(4 * U, 5 + l),
    c: prev.subarray(ROWS + 2 * l * ROWS * U, ROWS + (2 * l + 1) * ROWS * U),
    h: prev.subarray(ROWS + (2 * l + 1) * ROWS * U, ROWS + (2 * l + 2) * ROWS * U),
  }));
  const head = { w: randArray(U, 7), b: 0.1 };
  if (want(one)) {
    rows.push(
      await measure(one, () => {
        lstmRowsOneThread(ROWS, x, 3, layers, head);
        return [];
      }, opts),
    );
  }
  // The two threaded rows alternate (a slow phase of a shared machine hits both alike).
  const into = new Float32Array(new SharedArrayBuffer(4 * packedLength(ROWS, 2, true)));
  const threaded: Array<[string, () => tf.TensorContainer]> = [
    [all, () => {
      runLstmRows(ROWS, x, 3, layers, head);
      return [];
    }],
    [kept, () => {
      runLstmRows(ROWS, x, 3, layers, head, into);
      return [];
    }],
  ];
  const chosen = threaded.filter(([name]) => want(name));
  if (chosen.length > 0) {
    const ms = await measureInterleaved(chosen, opts);
    rows.push(...ms.map((m) => ({ ...m, note: rowThreadsStatus() })));
  }
  return rows;
};

const poolRows = async (opts: { runs: number; warmup: number }, want: (n: string) => boolean) => {
  const rows: BenchRow[] = [];
  const shape = [128, 32, 32, 64] as const, fs = [2, 2] as const, st = [2, 2] as const;
  const tag = `${P}max-pool [${shape}] 2x2/2`;
  const x = tf.tensor4d(randArray(128 * 32 * 32 * 64, 11), [...shape]);
  const v = tf.tensor4d(randArray(128 * 32 * 32 * 64, 12), [...shape]);
  const u = tf.tensor4d(randArray(128 * 16 * 16 * 64, 13), [128, 16, 16, 64]);
  const g = windowGeometry(32, 32, fs, st, "same");
  const masks = firstArgMaxMasks(x, g);
  const idx = maxPoolArgMax(x, fs, st, "same");
  // A ReLU's output: the kernels take oneDNN's pooling on it (array facts), the JS loops on x.
  const r = tf.relu(x) as tf.Tensor4D;
  const [ry, rIdx] = maxPoolWithArgMax(r, fs, st, "same");
  const relu = `${P}ReLU [${shape}]`;
  const cases: Array<[string, () => tf.TensorContainer]> = [
    [`${tag}: residual, masks`, () => firstArgMaxMasks(x, g)],
    [`${tag}: residual, indices`, () => maxPoolArgMax(x, fs, st, "same")],
    [`${tag}: J·v, masks`, () => tf.addN(extractPatches(v, g).map((p, k) => tf.mul(p, masks[k])))],
    [`${tag}: J·v, gather`, () => gatherFlat(v, idx)],
    [`${tag}: Jᵀ·u, MaxPoolGrad`, () => maxPoolGradKernel(u, x, fs, st, "same")],
    [`${tag}: Jᵀ·u, scatter-add`, () => scatterAddFlat(u, idx, shape)],
    [`${tag}: MaxPool (JS loops)`, () => tf.maxPool(x, 2, 2, "same")],
    [`${tag} of a ReLU: MaxPool (oneDNN)`, () => tf.maxPool(r, 2, 2, "same")],
    [`${tag} of a ReLU: values and indices (oneDNN)`, () => maxPoolWithArgMax(r, fs, st, "same")],
    [`${tag} of a ReLU: Jᵀ·u, MaxPoolGrad (oneDNN)`, () => maxPoolGradKernel(u, r, fs, st, "same")],
    [`${tag} of a ReLU: Jᵀ·u, scatter-add (oneDNN)`, () => scatterAddFlat(u, rIdx, shape)],
    [`${relu} (oneDNN, with the NaN guard)`, () => tf.relu(v)],
    [`${relu}: its step (oneDNN, with the NaN guard)`, () => tf.step(v)],
  ];
  try {
    for (const [name, fn] of cases) if (want(name)) rows.push(await measure(name, fn, opts));
    const stack = `${P}stack 3 × ${ROWS} as columns`;
    if (want(stack)) {
      const cols = [0, 1, 2].map((k) => tf.tensor1d(randArray(ROWS, 20 + k)));
      rows.push(await measure(stack, () => tf.stack(cols, 1), opts));
      tf.dispose(cols);
    }
  } finally {
    tf.dispose([x, v, u, idx, r, ry, rIdx, ...masks]);
  }
  return rows;
};

export const mlhfNativeSuite: BenchSuite = {
  name: "mlhf-native",
  run: async (opts) => {
    if (tf.getBackend() !== NATIVE_BACKEND) return [];
    const want = (n: string) => n.includes(opts.filter);
    return [...(await lstmRows(opts, want)), ...(await poolRows(opts, want))];
  },
};
