/**
 * Bench suite of issue 15, point 5 (the project's WGSL kernels, `lib/backend/webgpu/`): each row is
 * timed in alternation with the same work on TF.js's own webgpu programs (rows ending `(TF.js)`;
 * the `(mlhf)` row's note gives GFLOP/s and the ratio of medians):
 * - `tf.matMul` 4096³ (target on an H200: ≥ 15 TFLOP/s);
 * - conv2d forward and forward + dx + dW (`tf.grads`) at the CUDA-convnet's two layer sizes;
 * - one SGD step of the CUDA-convnet (target on an H200: ≤ 5 ms);
 * - one step of MLHF's 2-layer LSTM meta-network over 1.6 M coordinates (`MlhfLstmNet` against
 *   the op composition).
 * Row names start with `webgpu/`. The rows run when the active backend is webgpu, or when
 * `--filter` starts with `webgpu/` (`--filter webgpu/`, `--filter webgpu/matMul`): then the suite
 * activates webgpu itself for its rows and switches back. On a software adapter (llvmpipe) the sizes shrink (matMul 512³, batch 8,
 * 16 k coordinates; the names say so): there only the ratio means anything.
 * @module
 */
import { importWebGpuBackend, tf } from "../../lib/_deps.ts";
import {
  type BenchOptions,
  type BenchRow,
  type BenchSuite,
  measureInterleaved,
} from "../../lib/bench/harness.ts";
import { LSTM_CELL_KERNEL } from "../../lib/kernels.ts";
import {
  registerWebGpuKernels,
  restoreTfjsWebGpuKernels,
  WEBGPU_BACKEND,
} from "../../lib/backend/webgpu/register.ts";
import {
  initLstmNet,
  lstmNetStep,
  lstmNetStepComposed,
  zeroLstmState,
} from "../../lib/optim/mlhf/lstm.ts";
import { keyFromSeed } from "../../lib/prng.ts";
import { convnetLoss, type ConvnetParams, initConvnet } from "./native.ts";

const P = "webgpu/";

const gflops = (flop: number, ms: number): string => `${(flop / ms / 1e6).toFixed(1)} GFLOP/s`;

/** The adapter's description, and whether it is a software rasterizer. */
const adapterKind = async (): Promise<{ description: string; software: boolean } | null> => {
  const a = "gpu" in navigator ? await navigator.gpu.requestAdapter() : null;
  if (!a) return null;
  const description = a.info.description || a.info.vendor;
  return {
    description,
    software: a.info.isFallbackAdapter || /llvmpipe|lavapipe|swiftshader/i.test(description),
  };
};

/**
 * Times `ours` and `theirs` in alternation: `ours` with the project's kernels registered, `theirs`
 * with TF.js's originals back in place; returns both rows, the note on ours.
 */
const versusTfjs = async (
  name: string,
  fn: () => tf.TensorContainer,
  opts: BenchOptions,
  flop: number | null,
  theirsFn: () => tf.TensorContainer = fn,
): Promise<BenchRow[]> => {
  const withTfjs = () => {
    restoreTfjsWebGpuKernels();
    try {
      return theirsFn();
    } finally {
      registerWebGpuKernels();
    }
  };
  const [ours, theirs] = await measureInterleaved([
    [`${name} (mlhf)`, fn],
    [`${name} (TF.js)`, withTfjs],
  ], opts);
  const rate = (r: BenchRow) => (flop ? `${gflops(flop, r.medianMs)}, ` : "");
  return [
    {
      ...ours,
      note: `${rate(ours)}${(theirs.medianMs / ours.medianMs).toFixed(2)}× TF.js (medians; min ${
        (theirs.minMs / ours.minMs).toFixed(2)
      }×)`,
    },
    { ...theirs, note: flop ? gflops(flop, theirs.medianMs) : undefined },
  ];
};

const matMulRow = (n: number) => async (opts: BenchOptions) => {
  const a = tf.randomNormal([n, n], 0, 1, "float32", 1),
    b = tf.randomNormal([n, n], 0, 1, "float32", 2);
  try {
    // One element read back: the whole n² result would time the download.
    return await versusTfjs(
      `${P}matMul ${n}³`,
      () => tf.slice(tf.matMul(a, b), [0, 0], [1, 1]),
      opts,
      2 * n ** 3,
    );
  } finally {
    a.dispose();
    b.dispose();
  }
};

const convRows = (batch: number) => async (opts: BenchOptions, want: (n: string) => boolean) => {
  const rows: BenchRow[] = [];
  for (const [hw, ci] of [[32, 3], [16, 64]]) {
    const x = tf.randomNormal([batch, hw, hw, ci], 0, 1, "float32", 5) as tf.Tensor4D;
    const w = tf.randomNormal([5, 5, ci, 64], 0, 0.1, "float32", 6) as tf.Tensor4D;
    const flop = 2 * batch * hw * hw * 25 * ci * 64;
    const base = `${P}conv 5×5 ${ci}→64, ${hw}×${hw}, batch ${batch}`;
    try {
      if (want(`${base}, forward`)) {
        rows.push(
          ...await versusTfjs(
            `${base}, forward`,
            () => {
              const y = tf.conv2d(x, w, 1, "same");
              return tf.slice(y, [0, 0, 0, 0], [1, 1, 1, 1]);
            },
            opts,
            flop,
          ),
        );
      }
      if (want(`${base}, forward + dx + dW`)) {
        const g = tf.grads((xi: tf.Tensor, wi: tf.Tensor) =>
          tf.sum(tf.conv2d(xi as tf.Tensor4D, wi as tf.Tensor4D, 1, "same"))
        );
        rows.push(
          ...await versusTfjs(
            `${base}, forward + dx + dW`,
            () => {
              const [dx, dw] = g([x, w]);
              return [
                tf.slice(dx, [0, 0, 0, 0], [1, 1, 1, 1]),
                tf.slice(dw, [0, 0, 0, 0], [1, 1, 1, 1]),
              ];
            },
            opts,
            3 * flop,
          ),
        );
      }
    } finally {
      x.dispose();
      w.dispose();
    }
  }
  return rows;
};

const convnetRow = (batch: number) => async (opts: BenchOptions) => {
  const p0 = initConvnet(1);
  const vars = Object.fromEntries(
    Object.entries(p0).map(([k, t]) => [k, tf.variable(t as tf.Tensor, true, `bench_webgpu_${k}`)]),
  ) as unknown as Record<keyof ConvnetParams, tf.Variable>;
  Object.values(p0).forEach((t) => (t as tf.Tensor).dispose());
  const x = tf.randomUniform([batch, 32, 32, 3], 0, 1, "float32", 3) as tf.Tensor4D;
  const labels = tf.randomUniform([batch], 0, 10, "int32", 4) as tf.Tensor1D;
  const lr = tf.scalar(0.01);
  try {
    return await versusTfjs(
      `${P}convnet SGD step b${batch} 32x32x3 (CUDA-convnet)`,
      () => {
        const { value, grads } = tf.variableGrads(() =>
          convnetLoss(vars as unknown as ConvnetParams, x, labels)
        );
        for (const v of Object.values(vars)) v.assign(tf.sub(v, tf.mul(lr, grads[v.name])));
        return value;
      },
      opts,
      null,
    );
  } finally {
    Object.values(vars).forEach((v) => v.dispose());
    x.dispose();
    labels.dispose();
    lr.dispose();
  }
};

const lstmRow = (n: number) => async (opts: BenchOptions) => {
  const w = initLstmNet(keyFromSeed(1));
  const state = zeroLstmState(n);
  const x = tf.randomNormal([n, 3], 0, 1, "float32", 7) as tf.Tensor2D;
  try {
    const r = await versusTfjs(
      `${P}LSTM meta-network step, ${n} coordinates`,
      () => lstmNetStep(w, state, x).out,
      opts,
      null,
      () => lstmNetStepComposed(w, state, x).out,
    );
    return r;
  } finally {
    [...state.c, ...state.h, x, w.head.kernel, w.head.bias].forEach((t) => t.dispose());
    w.layers.forEach((l) => [l.kernel, l.bias].forEach((t) => t.dispose()));
  }
};

/** The suite `deno task bench` runs. */
export const webgpuSuite: BenchSuite = {
  name: "webgpu",
  async run(opts) {
    const active = tf.getBackend() === WEBGPU_BACKEND;
    if (!active && !opts.filter.startsWith(P)) return [];
    const adapter = await adapterKind();
    if (!adapter) {
      console.error(`  note: skipped the ${P} rows (navigator.gpu gives no adapter)`);
      return [];
    }
    const previous = tf.getBackend();
    if (!active) {
      await importWebGpuBackend();
      if (!(await tf.setBackend(WEBGPU_BACKEND))) {
        console.error(`  note: skipped the ${P} rows (setBackend('webgpu') returned false)`);
        await tf.setBackend(previous);
        return [];
      }
    }
    const hadOurs = tf.getKernel(LSTM_CELL_KERNEL, WEBGPU_BACKEND) !== undefined;
    registerWebGpuKernels();
    const small = adapter.software;
    console.error(
      `  webgpu adapter: ${adapter.description}${small ? " (software: small sizes)" : ""}`,
    );
    const want = (n: string) => opts.filter === "" || n.includes(opts.filter);
    const rows: BenchRow[] = [];
    try {
      const mmN = small ? 512 : 4096;
      if (want(`${P}matMul ${mmN}³`)) rows.push(...await matMulRow(mmN)(opts));
      rows.push(...await convRows(small ? 8 : 128)(opts, want));
      const b = small ? 8 : 128;
      if (want(`${P}convnet SGD step b${b}`)) rows.push(...await convnetRow(b)(opts));
      const n = small ? 16_000 : 1_600_000;
      if (want(`${P}LSTM meta-network step, ${n}`)) rows.push(...await lstmRow(n)(opts));
    } finally {
      if (!hadOurs) restoreTfjsWebGpuKernels();
      if (!active) await tf.setBackend(previous);
    }
    return rows;
  },
};
