/**
 * Checks the project's WGSL kernels (`lib/backend/webgpu/`) on the machine's WebGPU adapter (Mesa's
 * llvmpipe where there is no GPU) against TF.js's cpu backend: matmuls (odd sizes, transposes,
 * batches, broadcasts, every tiling and a split k), the three convolution passes (odd channel
 * counts, strides, SAME/VALID/explicit padding, the dilated fallback), the project's filter-gradient
 * and LSTM kernels through their call sites, registration (idempotent, restorable) and leaks.
 *
 * Run in its own process by `webgpu_kernels_test.ts` (a software adapter in the test runner's
 * process was followed by a heap-corruption crash in the native oneDNN tests). Prints one line per
 * check; exits 0 when all pass, 1 on the first failure (its message on stderr), 3 when there is no
 * adapter (the reason on stdout).
 * @module
 */
import { importWebGpuBackend, tf } from "../lib/_deps.ts";
import {
  backendHasKernel,
  CONV2D_FILTER_GRAD_KERNEL,
  LSTM_CELL_KERNEL,
  LSTM_NET_KERNEL,
} from "../lib/kernels.ts";
import { keyFromSeed, normal, split } from "../lib/prng.ts";
import {
  registerWebGpuKernels,
  restoreTfjsWebGpuKernels,
  WEBGPU_BACKEND,
} from "../lib/backend/webgpu/register.ts";
import { matMulInfo } from "../lib/backend/webgpu/kernels/matmul.ts";
import { conv2dFilterGradInfo } from "../lib/backend/webgpu/kernels/conv2d.ts";
import { type Tiling, withSplits } from "../lib/backend/webgpu/kernels/gemm.ts";
import type { WebGpuBackendLike } from "../lib/backend/webgpu/kernels/_util.ts";
import { conv2dFilterGrad } from "../ops/windows.ts";
import {
  initLstmNet,
  lstmCell,
  lstmCellComposed,
  lstmNetStep,
  lstmNetStepComposed,
  type LstmNetWeights,
  type LstmState,
} from "../lib/optim/mlhf/lstm.ts";
import { assertAllClose, withNoLeaks } from "./_util/numeric.ts";

const adapter = "gpu" in navigator ? await navigator.gpu.requestAdapter() : null;
if (!adapter) {
  console.log(
    `no WebGPU adapter (navigator.gpu ${"gpu" in navigator ? "has no adapter" : "is missing"})`,
  );
  Deno.exit(3);
}
await importWebGpuBackend();
if (!(await tf.setBackend(WEBGPU_BACKEND))) throw new Error("setBackend('webgpu') returned false");
await tf.setBackend("cpu");
tf.env().set("IS_NODE", false);
registerWebGpuKernels();
registerWebGpuKernels(); // idempotent

let key = keyFromSeed(15);
/** Seeded normal values. */
const data = (n: number): Float32Array => {
  const [k, next] = split(key);
  key = next;
  return normal(k, n);
};

/** Runs `f` on a backend: its tensors there, its result read back (webgpu reads are async). */
const on = async (
  backend: string,
  f: () => tf.Tensor | tf.Tensor[],
): Promise<Float32Array[]> => {
  await tf.setBackend(backend);
  const out = tf.tidy(f);
  const ts = Array.isArray(out) ? out : [out];
  const values = await Promise.all(ts.map(async (t) => (await t.data()) as Float32Array));
  ts.forEach((t) => t.dispose());
  return values;
};

let checks = 0;
/** f on webgpu equals f on cpu to float32 tolerance (tensors built inside from plain arrays). */
const same = async (what: string, f: () => tf.Tensor | tf.Tensor[]) => {
  await withNoLeaks(async () => {
    const want = await on("cpu", f);
    const got = await on(WEBGPU_BACKEND, f);
    want.forEach((w, i) => close(got[i], w, `${what} [${i}]`));
  }, what);
  pass(what);
};

/**
 * Float32 closeness for sums of many products: within 1e-4 relative plus 4e-6 of the largest
 * expected magnitude (a cancelling sum of k terms keeps the rounding of its terms' size).
 */
const close = (got: Float32Array, want: Float32Array, what: string) => {
  const scale = want.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  assertAllClose(got, want, { rtol: 1e-4, atol: 4e-6 * scale + 1e-7 }, what);
};

const t0 = performance.now();
const pass = (what: string) => {
  checks++;
  console.log(`ok  ${what} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
};

// ---- matmul through tf.matMul (the registered BatchMatMul) ----------------------------------
const mm = (as: number[], bs: number[], ta = false, tb = false) => {
  const av = data(as.reduce((p, q) => p * q, 1)), bv = data(bs.reduce((p, q) => p * q, 1));
  return () => tf.matMul(tf.tensor(av, as), tf.tensor(bv, bs), ta, tb);
};
// Each case a different shader where it can (llvmpipe compiles each in seconds): A's rows or
// columns contiguous, scalar or vector loads; B likewise; scalar or vector stores.
await same("matMul [37,13]·[13,45]", mm([37, 13], [13, 45]));
await same(
  "matMul [21,40]ᵀ·[50,21]ᵀ (A read by columns, as vectors)",
  mm([21, 40], [50, 21], true, true),
);
await same(
  "matMul [24,33]ᵀ·[44,24]ᵀ (B read by columns, as vectors)",
  mm([24, 33], [44, 24], true, true),
);
await same(
  "matMul batch [3,20,24]·[3,24,36] (vector loads and stores)",
  mm([3, 20, 24], [3, 24, 36]),
);
await same("matMul broadcast [1,19,9]·[3,9,17]", mm([1, 19, 9], [3, 9, 17]));
await same("matMul broadcast [2,2,17,9]·[9,18]", mm([2, 2, 17, 9], [9, 18]));
await same("matMul thin [5,40]·[40,3] (TF.js's program)", mm([5, 40], [40, 3]));
await same("matMul k = 0 [20,0]·[0,20]", mm([20, 0], [0, 20]));

// ---- every tiling, and k split over workgroups (called directly) ------------------------------
const direct = (as: number[], bs: number[], ta: boolean, tb: boolean, tiling: Tiling) => {
  const av = data(as.reduce((p, q) => p * q, 1)), bv = data(bs.reduce((p, q) => p * q, 1));
  return async () => {
    const want = await on("cpu", () => tf.matMul(tf.tensor(av, as), tf.tensor(bv, bs), ta, tb));
    const got = await on(WEBGPU_BACKEND, () => {
      const a = tf.tensor(av, as), b = tf.tensor(bv, bs);
      const info = matMulInfo(tf.backend() as unknown as WebGpuBackendLike, a, b, ta, tb, tiling);
      if (!info) throw new Error("matMulInfo declined the case");
      return tf.engine().makeTensorFromTensorInfo(info);
    });
    close(got[0], want[0], "direct matMul");
  };
};
const tiled = async (what: string, f: () => Promise<void>) => {
  await withNoLeaks(f, what);
  pass(what);
};
await tiled(
  "matMul 128×128 tiles covering it exactly (unchecked loads) [2,128,16]·[2,16,256]",
  direct([2, 128, 16], [2, 16, 256], false, false, withSplits(8, 8, 16, 1)),
);
await tiled(
  "matMul 128×128 tiles, k split in 3, [2,997,130]ᵀ·[2,997,36]",
  direct([2, 997, 130], [2, 997, 36], true, false, withSplits(8, 8, 997, 3)),
);
await tiled(
  "matMul 128×64 tiles [2,130,100]ᵀ·[130,70] (batch broadcast)",
  direct([2, 130, 100], [130, 70], true, false, withSplits(8, 4, 130, 1)),
);
await tiled(
  "matMul 64×64 tiles, k split in 4, [1000,33]ᵀ·[36,1000]ᵀ",
  direct([1000, 33], [36, 1000], true, true, withSplits(4, 4, 1000, 4)),
);

// ---- convolutions -----------------------------------------------------------------------------
type Pad = "same" | "valid" | number;
interface ConvCase {
  readonly x: [number, number, number, number];
  readonly f: [number, number, number, number];
  readonly s: [number, number];
  readonly pad: Pad;
  readonly dilation?: number;
}
// Channel counts ≥ 16 so that the GEMMs are not thin (thin ones run TF.js's programs: the input
// gradient of case 1, the dilated case), some not multiples of 4 (scalar loads and stores).
const convCases: ConvCase[] = [
  { x: [2, 7, 9, 3], f: [3, 3, 3, 18], s: [1, 1], pad: "same" },
  { x: [2, 8, 8, 20], f: [5, 5, 20, 16], s: [2, 2], pad: "same" },
  { x: [1, 9, 7, 17], f: [2, 3, 17, 18], s: [2, 3], pad: "valid" },
  { x: [3, 6, 6, 16], f: [1, 1, 16, 20], s: [1, 1], pad: "valid" },
  { x: [2, 10, 10, 16], f: [2, 2, 16, 16], s: [3, 3], pad: "same" },
  { x: [2, 5, 6, 16], f: [3, 3, 16, 16], s: [1, 1], pad: 1 },
  { x: [1, 8, 8, 16], f: [3, 3, 16, 16], s: [1, 1], pad: "same", dilation: 2 },
];
for (const c of convCases) {
  const [n, , , ci] = c.x, [kh, kw, , co] = c.f;
  const xv = data(c.x.reduce((p, q) => p * q, 1)), fv = data(c.f.reduce((p, q) => p * q, 1));
  const d = c.dilation ?? 1;
  const name = `x ${c.x} f ${c.f} s ${c.s} ${c.pad}${d > 1 ? ` dilation ${d}` : ""}`;
  let yShape: number[] = [];
  await same(`conv2d ${name}`, () => {
    const y = tf.conv2d(tf.tensor4d(xv, c.x), tf.tensor4d(fv, c.f), c.s, c.pad, "NHWC", d);
    yShape = y.shape;
    return y;
  });
  if (d > 1) continue;
  const dyv = data(yShape.reduce((p, q) => p * q, 1));
  const dy = () => tf.tensor4d(dyv, yShape as [number, number, number, number]);
  await same(
    `conv2d input gradient ${name}`,
    () => tf.conv2dTranspose(dy(), tf.tensor4d(fv, c.f), c.x, c.s, c.pad),
  );
  const filterGrad = (kernel: string) => () =>
    tf.engine().runKernel(kernel, { x: tf.tensor4d(xv, c.x), dy: dy() }, {
      strides: c.s,
      pad: c.pad,
      dataFormat: "NHWC",
      dimRoundingMode: undefined,
      filterShape: [kh, kw, ci, co],
    } as unknown as tf.NamedAttrMap) as tf.Tensor;
  await same(`Conv2DBackpropFilter ${name}`, filterGrad("Conv2DBackpropFilter"));
  if (typeof c.pad === "string") {
    const pad = c.pad;
    const want = await on("cpu", filterGrad("Conv2DBackpropFilter"));
    const got = await on(
      WEBGPU_BACKEND,
      () => conv2dFilterGrad(tf.tensor4d(xv, c.x), dy() as tf.Tensor4D, c.f, c.s, pad),
    );
    close(got[0], want[0], `conv2dFilterGrad ${name}`);
    pass(`conv2dFilterGrad (${CONV2D_FILTER_GRAD_KERNEL}) ${name} (n = ${n})`);
  }
}
if (!backendHasKernel(CONV2D_FILTER_GRAD_KERNEL)) {
  throw new Error(`${CONV2D_FILTER_GRAD_KERNEL} is not registered on webgpu`);
}

// The filter gradient's k split over workgroups (forced; 8-row tiles are tested on matmuls: each
// tiling of each conv loader would be one more shader for llvmpipe to compile).
{
  const xs: [number, number, number, number] = [2, 9, 8, 4],
    fs: [number, number, number, number] = [3, 3, 4, 8];
  const xv = data(2 * 9 * 8 * 4), dyv = data(2 * 9 * 8 * 8);
  const attrs = { strides: [1, 1], pad: "same", dataFormat: "NHWC", filterShape: fs };
  const viaInfo = (
    run: (b: WebGpuBackendLike, p: tf.Tensor, q: tf.Tensor) => tf.TensorInfo | null,
    p: () => tf.Tensor,
    q: () => tf.Tensor,
  ) =>
  () => {
    const info = run(tf.backend() as unknown as WebGpuBackendLike, p(), q());
    if (!info) throw new Error("the conv kernel declined the case");
    return tf.engine().makeTensorFromTensorInfo(info);
  };
  const x = () => tf.tensor4d(xv, xs);
  const dy = () => tf.tensor4d(dyv, [2, 9, 8, 8]);
  await tiled("conv2d filter gradient with k split in 5", async () => {
    const want = await on(
      "cpu",
      () =>
        tf.engine().runKernel("Conv2DBackpropFilter", { x: x(), dy: dy() }, {
          ...attrs,
          dimRoundingMode: undefined,
        } as unknown as tf.NamedAttrMap) as tf.Tensor,
    );
    const got = await on(
      WEBGPU_BACKEND,
      viaInfo(
        (b, p, q) => conv2dFilterGradInfo(b, p, q, attrs, withSplits(4, 4, 2 * 9 * 8, 5)),
        x,
        dy,
      ),
    );
    close(got[0], want[0], "filter gradient, split k");
  });
}

// ---- the LSTM kernels through their call sites --------------------------------------------------
for (const k of [LSTM_CELL_KERNEL, LSTM_NET_KERNEL]) {
  if (!backendHasKernel(k)) {
    await tf.setBackend(WEBGPU_BACKEND);
    if (!backendHasKernel(k)) throw new Error(`${k} is not registered on webgpu`);
  }
}
{
  const n = 37, inW = 3;
  const kv = data((inW + 4) * 16),
    bv = data(16),
    xv = data(n * inW),
    cv = data(n * 4),
    hv = data(n * 4);
  const cellArgs = () =>
    [
      tf.tensor2d(kv, [inW + 4, 16]),
      tf.tensor1d(bv),
      tf.tensor2d(xv, [n, inW]),
      tf.tensor2d(cv, [n, 4]),
      tf.tensor2d(hv, [n, 4]),
    ] as const;
  await withNoLeaks(async () => {
    const want = await on("cpu", () => lstmCellComposed(...cellArgs()));
    const got = await on(WEBGPU_BACKEND, () => {
      if (!backendHasKernel(LSTM_CELL_KERNEL)) throw new Error("no LSTM cell kernel on webgpu");
      return lstmCell(...cellArgs());
    });
    want.forEach((w, i) =>
      assertAllClose(got[i], w, { rtol: 1e-5, atol: 1e-6 }, `lstmCell [${i}]`)
    );
  }, "lstmCell");
  pass(`lstmCell (${LSTM_CELL_KERNEL}), ${n} rows`);

  const wKey = keyFromSeed(7);
  const sv = Array.from({ length: 4 }, () => data(n * 4));
  const net = () => {
    const w = initLstmNet(wKey, inW);
    const state: LstmState = {
      c: [tf.tensor2d(sv[0], [n, 4]), tf.tensor2d(sv[1], [n, 4])],
      h: [tf.tensor2d(sv[2], [n, 4]), tf.tensor2d(sv[3], [n, 4])],
    };
    return { w, state, x: tf.tensor2d(xv, [n, inW]) };
  };
  const flat = (r: { out: tf.Tensor; state: LstmState }) => [
    r.out,
    ...r.state.c,
    ...r.state.h,
  ];
  await withNoLeaks(async () => {
    const want = await on("cpu", () => {
      const { w, state, x } = net();
      return flat(lstmNetStepComposed(w, state, x));
    });
    const got = await on(WEBGPU_BACKEND, () => {
      if (!backendHasKernel(LSTM_NET_KERNEL)) throw new Error("no LSTM net kernel on webgpu");
      const { w, state, x } = net();
      return flat(lstmNetStep(w, state, x));
    });
    want.forEach((w, i) =>
      assertAllClose(got[i], w, { rtol: 1e-5, atol: 1e-6 }, `lstmNetStep [${i}]`)
    );
  }, "lstmNetStep");
  pass(`lstmNetStep (${LSTM_NET_KERNEL}), ${n} rows, 2 layers and the head`);

  // Three layers: past FUSED_MAX_LAYERS, one cell program per layer, then the head.
  const wv = [
    data(7 * 16),
    data(16),
    data(8 * 16),
    data(16),
    data(8 * 16),
    data(16),
    data(4),
    data(1),
  ];
  const sv3 = Array.from({ length: 6 }, () => data(n * 4));
  const net3 = () => {
    const w: LstmNetWeights = {
      layers: [0, 1, 2].map((l) => ({
        kernel: tf.tensor2d(wv[2 * l], [l === 0 ? 7 : 8, 16]),
        bias: tf.tensor1d(wv[2 * l + 1]),
      })),
      head: { kernel: tf.tensor2d(wv[6], [4, 1]), bias: tf.tensor1d(wv[7]) },
    };
    const st = (o: number) => [0, 1, 2].map((l) => tf.tensor2d(sv3[o + l], [n, 4]));
    return { w, state: { c: st(0), h: st(3) }, x: tf.tensor2d(xv, [n, inW]) };
  };
  await withNoLeaks(async () => {
    const want = await on("cpu", () => {
      const { w, state, x } = net3();
      return flat(lstmNetStepComposed(w, state, x));
    });
    const got = await on(WEBGPU_BACKEND, () => {
      const { w, state, x } = net3();
      return flat(lstmNetStep(w, state, x));
    });
    want.forEach((w, i) =>
      assertAllClose(got[i], w, { rtol: 1e-5, atol: 1e-6 }, `3 layers [${i}]`)
    );
  }, "lstmNetStep, 3 layers");
  pass(
    `lstmNetStep (${LSTM_NET_KERNEL}), ${n} rows, 3 layers (one program per layer) and the head`,
  );
}

// ---- restoring TF.js's kernels and registering again ------------------------------------------
restoreTfjsWebGpuKernels();
await tf.setBackend(WEBGPU_BACKEND);
if (backendHasKernel(LSTM_CELL_KERNEL)) throw new Error("restore left MlhfLstmCell registered");
await same("matMul [37,13]·[13,45] on TF.js's restored kernel", mm([37, 13], [13, 45]));
registerWebGpuKernels();
await tf.setBackend(WEBGPU_BACKEND);
if (!backendHasKernel(LSTM_CELL_KERNEL)) throw new Error("registering again failed");
await same("matMul [37,13]·[13,45] registered again", mm([37, 13], [13, 45]));

console.log(`all ${checks} checks passed`);
