/**
 * Bench suite of issue 9 (the BLAS-backed `native` backend), run on whatever backend is active:
 * - matMul 1024³ through `tf.matMul`, and `cblas_sgemm` called directly on the same sizes, timed in
 *   alternation (the tf row's note gives GFLOP/s and its % of the direct BLAS time; target ≥ 80 %
 *   on native); the tf row reads back one element, a `, read back` row (alternated with the direct
 *   call apart, so that it cannot take the tf row's recycled array) the whole result;
 * - conv2d forward and forward+backward (dx and dW by `tf.grads`) at the CIFAR convnet's two layer
 *   sizes;
 * - one SGD step of the CUDA-convnet CIFAR net at batch 128 written directly with tf ops
 *   ({@link convnetLoss}; hand-written softmax cross-entropy), gradients by `tf.variableGrads`.
 * On native with oneDNN loaded, the conv and convnet rows are timed in alternation with the same
 * work on the im2col path (rows suffixed ` (im2col)`; the oneDNN row's note gives the ratios of
 * medians and of minimum times).
 * Row names start with `kernels/`. On the pure-JS `cpu` backend the heaviest rows (minutes each) are skipped with a note unless
 * `MLHF_BENCH_SLOW=1`; on cpu and wasm the heavy rows run at most 2 timed runs after ≤ 1 warm-up.
 * @module
 */
import { tf } from "../../lib/_deps.ts";
import {
  type BenchOptions,
  type BenchRow,
  type BenchSuite,
  measure,
  measureInterleaved,
} from "../../lib/bench/harness.ts";
import { loadBlas } from "../../lib/backend/native/blas.ts";
import { NATIVE_BACKEND } from "../../lib/backend/native/backend.ts";
import {
  type ConvEngine,
  convEngine,
  setConvEngine,
} from "../../lib/backend/native/kernels/conv.ts";

/** Parameters of the CUDA-convnet CIFAR-10 net (conv5×5→64, pool, conv5×5→64, pool, 384, 192, 10). */
export interface ConvnetParams {
  readonly w1: tf.Tensor4D;
  readonly b1: tf.Tensor1D;
  readonly w2: tf.Tensor4D;
  readonly b2: tf.Tensor1D;
  readonly w3: tf.Tensor2D;
  readonly b3: tf.Tensor1D;
  readonly w4: tf.Tensor2D;
  readonly b4: tf.Tensor1D;
  readonly w5: tf.Tensor2D;
  readonly b5: tf.Tensor1D;
}

/** He-initialised convnet parameters for `hw`×`hw`×3 inputs (hw divisible by 4), seeded. */
export const initConvnet = (seed = 1, hw = 32, width = 64): ConvnetParams => {
  const flat = (hw / 4) * (hw / 4) * width;
  const he = (shape: number[], fanIn: number, s: number) =>
    tf.randomNormal(shape, 0, Math.sqrt(2 / fanIn), "float32", seed * 100 + s);
  return {
    w1: he([5, 5, 3, width], 75, 1) as tf.Tensor4D,
    b1: tf.zeros([width]),
    w2: he([5, 5, width, width], 25 * width, 2) as tf.Tensor4D,
    b2: tf.zeros([width]),
    w3: he([flat, 384], flat, 3) as tf.Tensor2D,
    b3: tf.zeros([384]),
    w4: he([384, 192], 384, 4) as tf.Tensor2D,
    b4: tf.zeros([192]),
    w5: he([192, 10], 192, 5) as tf.Tensor2D,
    b5: tf.zeros([10]),
  };
};

/** The net's logits for NHWC images x. */
export const convnetLogits = (p: ConvnetParams, x: tf.Tensor4D): tf.Tensor2D => {
  let h = tf.relu(tf.add(tf.conv2d(x, p.w1, 1, "same"), p.b1)) as tf.Tensor4D;
  h = tf.maxPool(h, 2, 2, "same");
  h = tf.relu(tf.add(tf.conv2d(h, p.w2, 1, "same"), p.b2)) as tf.Tensor4D;
  h = tf.maxPool(h, 2, 2, "same");
  const f = tf.reshape(h, [x.shape[0], -1]) as tf.Tensor2D;
  const d1 = tf.relu(tf.add(tf.matMul(f, p.w3), p.b3)) as tf.Tensor2D;
  const d2 = tf.relu(tf.add(tf.matMul(d1, p.w4), p.b4)) as tf.Tensor2D;
  return tf.add(tf.matMul(d2, p.w5), p.b5);
};

/** Mean softmax cross-entropy written by hand: mean(logsumexp(z) − z[label]). */
export const softmaxCE = (z: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar => {
  const picked = tf.sum(tf.mul(z, tf.oneHot(labels, z.shape[1])), 1);
  return tf.mean(tf.sub(tf.logSumExp(z, 1), picked));
};

/** The convnet's loss on a batch. */
export const convnetLoss = (p: ConvnetParams, x: tf.Tensor4D, labels: tf.Tensor1D): tf.Scalar =>
  softmaxCE(convnetLogits(p, x), labels);

const BATCH = 128;
/** Prefix of every row name (`--filter kernels/` runs only this suite). */
const P = "kernels/";

const heavyCap = (opts: BenchOptions): BenchOptions => {
  const b = tf.getBackend();
  if (b === "native" || b === "tensorflow") return opts;
  return { ...opts, runs: Math.min(opts.runs, 2), warmup: Math.min(opts.warmup, 1) };
};

const slowOk = (): boolean => tf.getBackend() !== "cpu" || Deno.env.get("MLHF_BENCH_SLOW") === "1";

const gflops = (flop: number, ms: number): string => `${(flop / ms / 1e6).toFixed(1)} GFLOP/s`;

const matMulRows = async (
  opts: BenchOptions,
  want: (n: string) => boolean,
): Promise<BenchRow[]> => {
  const rows: BenchRow[] = [];
  const n = 1024, flop = 2 * n ** 3;
  const tfName = `${P}matMul 1024³ (tf)`, directName = `${P}matMul 1024³ (cblas_sgemm direct)`;
  if (!want(tfName) && !want(directName)) return rows;
  const av = new Float32Array(n * n).map((_, i) => Math.sin(i)),
    bv = new Float32Array(n * n).map((_, i) => Math.cos(i));
  const blas = loadBlas();
  let direct: BenchRow | null = null;
  if (blas.ok && want(tfName)) {
    // Timed in alternation with the direct call, so both see the same load. The direct call
    // writes into one warm array and reads nothing back; the tf row reads back one element (the
    // sliced copy forces completion on asynchronous backends), so its output is recycled like any
    // intermediate of a training step. The read-back row reads all 4 MiB, whose array then stays
    // the caller's, so each of its calls needs a fresh one (first touch, GC); it alternates with
    // the direct call apart, after the tf row: in one alternation it took the array the tf row
    // gave back each round, and the tf row got the fresh one (49–50 % of direct instead of 96–98).
    const c = new Float32Array(n * n);
    const a = tf.tensor2d(av, [n, n]), b = tf.tensor2d(bv, [n, n]);
    const directFn = (): tf.Tensor[] => {
      blas.blas.sgemm(false, false, n, n, n, 1, av, n, bv, n, 0, c, n);
      return [];
    };
    try {
      const [d, t] = await measureInterleaved([
        [directName, directFn],
        [tfName, () => tf.slice(tf.matMul(a, b), [0, 0], [1, 1])],
      ], heavyCap(opts));
      const [d2, full] = await measureInterleaved([
        [directName, directFn],
        [`${tfName}, read back`, () => tf.matMul(a, b)],
      ], heavyCap(opts));
      const pct = (r: BenchRow, dr: BenchRow) =>
        `${(100 * dr.medianMs / r.medianMs).toFixed(0)} % of direct BLAS (medians; minimums: ${
          (100 * dr.minMs / r.minMs).toFixed(0)
        } %)`;
      rows.push({ ...t, note: `${gflops(flop, t.medianMs)}, ${pct(t, d)}` });
      rows.push({
        ...full,
        note: `${gflops(flop, full.medianMs)}, ${pct(full, d2)} (its own alternation)`,
      });
      rows.push({
        ...d,
        backend: "blas",
        note: `${gflops(flop, d.medianMs)}, ${blas.blas.path}`,
      });
    } finally {
      a.dispose();
      b.dispose();
    }
  } else if (blas.ok) {
    const c = new Float32Array(n * n);
    direct = await measure(directName, () => {
      blas.blas.sgemm(false, false, n, n, n, 1, av, n, bv, n, 0, c, n);
      return [];
    }, opts);
    rows.push({
      ...direct,
      backend: "blas",
      note: `${gflops(flop, direct.medianMs)}, ${blas.blas.path}`,
    });
  } else {
    console.error(`  note: no direct BLAS row (${blas.reason})`);
    if (want(tfName)) rows.push(await tfRow());
  }
  return rows;

  async function tfRow(): Promise<BenchRow> {
    const a = tf.tensor2d(av, [n, n]), b = tf.tensor2d(bv, [n, n]);
    try {
      const r = await measure(tfName, () => tf.matMul(a, b), heavyCap(opts));
      const pct = direct
        ? `, ${(100 * direct.medianMs / r.medianMs).toFixed(0)} % of direct BLAS`
        : "";
      return { ...r, note: `${gflops(flop, r.medianMs)}${pct}` };
    } finally {
      a.dispose();
      b.dispose();
    }
  }
};

/**
 * Times `fn` (rows `name`, note `note`), and on native with oneDNN loaded, in alternation with the
 * same function on the im2col path (`name (im2col)`), the ratios in the first row's note.
 */
const versusIm2col = async (
  name: string,
  fn: () => tf.TensorContainer,
  opts: BenchOptions,
  note: (r: BenchRow) => string,
): Promise<BenchRow[]> => {
  if (tf.getBackend() !== NATIVE_BACKEND || convEngine() !== "onednn") {
    const r = await measure(name, fn, opts);
    return [{ ...r, note: note(r) }];
  }
  const on = (e: ConvEngine) => () => {
    const prev = setConvEngine(e);
    try {
      return fn();
    } finally {
      setConvEngine(prev);
    }
  };
  const [d, i] = await measureInterleaved(
    [[name, on("onednn")], [`${name} (im2col)`, on("im2col")]],
    opts,
  );
  const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
  return [
    {
      ...d,
      note: `${note(d)}; oneDNN, ${ratio(d.medianMs, i.medianMs)} of im2col's median, ${
        ratio(d.minMs, i.minMs)
      } of its min`,
    },
    { ...i, note: note(i) },
  ];
};

const convRows = async (opts: BenchOptions, want: (n: string) => boolean): Promise<BenchRow[]> => {
  const rows: BenchRow[] = [];
  const layers = [
    { tag: "128x32x32x3 * 5x5x3x64 same", x: [BATCH, 32, 32, 3], w: [5, 5, 3, 64], heavy: false },
    {
      tag: "128x16x16x64 * 5x5x64x64 same",
      x: [BATCH, 16, 16, 64],
      w: [5, 5, 64, 64],
      heavy: true,
    },
  ] as const;
  for (const l of layers) {
    const [b, h, wd] = l.x, [kh, kw, ci, co] = l.w;
    const flop = 2 * b * h * wd * kh * kw * ci * co;
    const fwdName = `${P}conv2d fwd ${l.tag}`, bwdName = `${P}conv2d fwd+bwd (dx, dW) ${l.tag}`;
    if (!want(fwdName) && !want(bwdName)) continue;
    const x = tf.randomNormal([...l.x], 0, 1, "float32", 7) as tf.Tensor4D;
    const w = tf.randomNormal([...l.w], 0, 0.1, "float32", 8) as tf.Tensor4D;
    try {
      if (want(fwdName)) {
        rows.push(
          ...await versusIm2col(
            fwdName,
            () => tf.conv2d(x, w, 1, "same"),
            heavyCap(opts),
            (r) => gflops(flop, r.medianMs),
          ),
        );
      }
      if (want(bwdName)) {
        if (l.heavy && !slowOk()) {
          console.error(
            `  note: skipped '${bwdName}' on cpu (minutes per run; MLHF_BENCH_SLOW=1 runs it)`,
          );
        } else {
          const g = tf.grads((xx: tf.Tensor, ww: tf.Tensor) =>
            tf.sum(tf.conv2d(xx as tf.Tensor4D, ww as tf.Tensor4D, 1, "same"))
          );
          rows.push(
            ...await versusIm2col(
              bwdName,
              () => g([x, w]),
              heavyCap(opts),
              (r) => `${gflops(3 * flop, r.medianMs)} (3× fwd FLOPs)`,
            ),
          );
        }
      }
    } finally {
      x.dispose();
      w.dispose();
    }
  }
  return rows;
};

const convnetRows = async (
  opts: BenchOptions,
  want: (n: string) => boolean,
): Promise<BenchRow[]> => {
  const name = `${P}convnet SGD step b${BATCH} 32x32x3 (CUDA-convnet, manual CE)`;
  if (!want(name)) return [];
  if (!slowOk()) {
    console.error(
      `  note: skipped '${name}' on cpu (about a minute per step; MLHF_BENCH_SLOW=1 runs it)`,
    );
    return [];
  }
  const p0 = initConvnet(1);
  const vars = Object.fromEntries(
    Object.entries(p0).map(([k, t]) => [k, tf.variable(t as tf.Tensor, true, `bench_native_${k}`)]),
  ) as unknown as Record<keyof ConvnetParams, tf.Variable>;
  Object.values(p0).forEach((t) => (t as tf.Tensor).dispose());
  const x = tf.randomUniform([BATCH, 32, 32, 3], 0, 1, "float32", 3) as tf.Tensor4D;
  const labels = tf.randomUniform([BATCH], 0, 10, "int32", 4) as tf.Tensor1D;
  const lr = tf.scalar(0.01);
  // Forward: conv layers + dense layers, ×3 for a step (forward, dx, dW).
  const fwd = 2 * BATCH *
    (32 * 32 * 75 * 64 + 16 * 16 * 1600 * 64 + 4096 * 384 + 384 * 192 + 192 * 10);
  try {
    return await versusIm2col(
      name,
      () => {
        const { value, grads } = tf.variableGrads(() =>
          convnetLoss(vars as unknown as ConvnetParams, x, labels)
        );
        for (const v of Object.values(vars)) v.assign(tf.sub(v, tf.mul(lr, grads[v.name])));
        return value;
      },
      heavyCap(opts),
      (r) => `${gflops(3 * fwd, r.medianMs)} (3× fwd FLOPs)`,
    );
  } finally {
    Object.values(vars).forEach((v) => v.dispose());
    x.dispose();
    labels.dispose();
    lr.dispose();
  }
};

/** The suite `deno task bench` runs. */
export const nativeSuite: BenchSuite = {
  name: "native",
  async run(opts) {
    const want = (n: string) => opts.filter === "" || n.includes(opts.filter);
    return [
      ...await matMulRows(opts, want),
      ...await convRows(opts, want),
      ...await convnetRows(opts, want),
    ];
  },
};
