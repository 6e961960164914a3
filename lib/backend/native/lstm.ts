/**
 * The coordinatewise LSTM meta-networks (`lib/optim/mlhf/lstm.ts`) as single-pass native kernels: the
 * op composition runs ~14 element-wise kernels over [N, 4] per layer, each a full pass over memory
 * (≈ 2.3 s for one 2-layer step at N = 1.6 M on this backend); these kernels walk the rows once
 * (≈ 0.4 s on one thread, bench row `mlhf-native/LSTM pass`): gate pre-activations by
 * `cblas_sgemm`, activations in JS loops (`lstm_rows.ts`), shared out over threads
 * (`lstm_threads.ts`).
 *
 * - `MlhfLstmCell` (inputs `kernel`, `bias`, `x`, `c`, `h`): TF 1.7's LSTMBlockCell with forget
 *   bias 1 (gates [i, ĉ, f, o] = [x, h]·W + b; c′ = σ(i)·tanh(ĉ) + c·σ(f + 1); h′ = tanh(c′)·σ(o)),
 *   output c′ and h′ packed flat: [c′ (N·U) | h′ (N·U)].
 * - `MlhfLstmNet` (inputs `x`, per layer l `kernel<l>`, `bias<l>`, `c<l>`, `h<l>`, then
 *   `headKernel`, `headBias`; attr `layers`): a whole `lstmNetStep` (stacked cells, then the U → 1
 *   head), output packed flat: [out (N) | c′₀ | h′₀ | c′₁ | h′₁ | …].
 *
 * Pre-activations are float32 GEMM sums like the composition's matMul; the activations are computed
 * in float64 (exp by table + cubic, relative error < 6e-10) and stored as float32, so the two agree
 * to float32 precision. The fast paths wrap the kernels in `tf.customGrad` whose gradient
 * recomputes the forward pass from the saved inputs and applies the cell's derivative, all in
 * standard differentiable ops (per-gate products, no wide concat or split), so gradients equal the
 * composition's, and the second order is right (TF.js keeps the second-order path through saved
 * inputs, not through saved outputs as the composition's sigmoid and tanh use). They return null off the native backend, for other
 * dtypes or for shapes the composition would broadcast; `lstmCell`/`lstmNetStep` then compose ops.
 * @module
 */
import { tf } from "../../_deps.ts";
import {
  installLstmFastPaths,
  type LstmNetWeights,
  type LstmState,
} from "../../optim/mlhf/lstm.ts";
import type { Blas } from "./blas.ts";
import { NATIVE_BACKEND } from "./backend.ts";
import { cpuBackend, f32, type KernelArgs, type NativeKernel } from "./kernels/_util.ts";
import { U } from "./lstm_rows.ts";
import { runLstmRows } from "./lstm_threads.ts";

/** Kernel names (registered for the `native` backend only). */
export const LSTM_CELL_KERNEL = "MlhfLstmCell";
export const LSTM_NET_KERNEL = "MlhfLstmNet";

const cellKernel = (blas: Blas): NativeKernel => ({
  kernelName: LSTM_CELL_KERNEL,
  kernelFunc: (args: KernelArgs) => {
    const { kernel, bias, x, c, h } = args.inputs;
    const be = cpuBackend(args);
    const [n, inW] = x.shape;
    const packed = runLstmRows(blas, n, f32(be, x), inW, [{
      w: f32(be, kernel),
      b: f32(be, bias),
      c: f32(be, c),
      h: f32(be, h),
    }]);
    return be.makeTensorInfo([packed.length], "float32", packed);
  },
});

const netKernel = (blas: Blas): NativeKernel => ({
  kernelName: LSTM_NET_KERNEL,
  kernelFunc: (args: KernelArgs) => {
    const ins = args.inputs;
    const L = (args.attrs as { layers: number }).layers;
    const be = cpuBackend(args);
    const [n, inW] = ins.x.shape;
    const layers = Array.from({ length: L }, (_, l) => ({
      w: f32(be, ins[`kernel${l}`]),
      b: f32(be, ins[`bias${l}`]),
      c: f32(be, ins[`c${l}`]),
      h: f32(be, ins[`h${l}`]),
    }));
    const head = { w: f32(be, ins.headKernel), b: f32(be, ins.headBias)[0] };
    const packed = runLstmRows(blas, n, f32(be, ins.x), inW, layers, head);
    return be.makeTensorInfo([packed.length], "float32", packed);
  },
});

/** The native LSTM kernels, given the BLAS. */
export const lstmKernels = (blas: Blas): NativeKernel[] => [cellKernel(blas), netKernel(blas)];

/** Registers the LSTM kernels for the native backend (idempotent). */
export const registerLstmKernels = (blas: Blas): void => {
  for (const k of lstmKernels(blas)) {
    if (tf.getKernel(k.kernelName, NATIVE_BACKEND)) continue;
    tf.registerKernel({
      kernelName: k.kernelName,
      backendName: NATIVE_BACKEND,
      kernelFunc: k.kernelFunc as tf.KernelFunc,
    });
  }
};

// ---- Gradients in standard ops --------------------------------------------------------------

/** A cell's forward pass recomputed in ops, keeping what its derivative needs. */
interface CellForward {
  readonly x: tf.Tensor2D;
  readonly h: tf.Tensor2D;
  readonly c: tf.Tensor2D;
  /** Per gate k: the input rows W_x,k [inW, U] and the recurrent rows W_h,k [U, U]. */
  readonly wx: tf.Tensor2D[];
  readonly wh: tf.Tensor2D[];
  readonly i: tf.Tensor;
  readonly j: tf.Tensor;
  readonly f: tf.Tensor;
  readonly o: tf.Tensor;
  readonly tc: tf.Tensor;
  readonly hNext: tf.Tensor2D;
}

const cellForward = (
  kernel: tf.Tensor2D,
  bias: tf.Tensor1D,
  x: tf.Tensor2D,
  c: tf.Tensor2D,
  h: tf.Tensor2D,
): CellForward => {
  const inW = x.shape[1], U = c.shape[1];
  const [kx, kh] = tf.split(kernel, [inW, U], 0);
  const wx = tf.split(kx, 4, 1) as tf.Tensor2D[], wh = tf.split(kh, 4, 1) as tf.Tensor2D[];
  const bs = tf.split(bias, 4, 0);
  const pre = (k: number) => tf.add(tf.add(tf.matMul(x, wx[k]), tf.matMul(h, wh[k])), bs[k]);
  const i = tf.sigmoid(pre(0)), j = tf.tanh(pre(1));
  const f = tf.sigmoid(tf.add(pre(2), 1)), o = tf.sigmoid(pre(3));
  const tc = tf.tanh(tf.add(tf.mul(i, j), tf.mul(c, f)));
  return { x, h, c, wx, wh, i, j, f, o, tc, hNext: tf.mul(tc, o) as tf.Tensor2D };
};

/** σ′ in terms of σ: s·(1 − s). */
const dSigmoid = (s: tf.Tensor) => tf.mul(s, tf.sub(1, s));
/** tanh′ in terms of tanh: 1 − t². */
const dTanh = (t: tf.Tensor) => tf.sub(1, tf.square(t));

/** The cell's vector-Jacobian product: cotangents of (c′, h′) → of (kernel, bias, x, c, h). */
const cellBackward = (
  fw: CellForward,
  dcNext: tf.Tensor,
  dhNext: tf.Tensor,
): [tf.Tensor2D, tf.Tensor1D, tf.Tensor2D, tf.Tensor2D, tf.Tensor2D] => {
  const dcT = tf.add(dcNext, tf.mul(tf.mul(dhNext, fw.o), dTanh(fw.tc)));
  const da = [
    tf.mul(tf.mul(dcT, fw.j), dSigmoid(fw.i)),
    tf.mul(tf.mul(dcT, fw.i), dTanh(fw.j)),
    tf.mul(tf.mul(dcT, fw.c), dSigmoid(fw.f)),
    tf.mul(tf.mul(dhNext, fw.tc), dSigmoid(fw.o)),
  ] as tf.Tensor2D[];
  const dKx = tf.concat(da.map((d) => tf.matMul(fw.x, d, true, false)), 1);
  const dKh = tf.concat(da.map((d) => tf.matMul(fw.h, d, true, false)), 1);
  const dKernel = tf.concat([dKx, dKh], 0) as tf.Tensor2D;
  const dBias = tf.concat(da.map((d) => tf.sum(d, 0)), 0) as tf.Tensor1D;
  const dx = tf.addN(da.map((d, k) => tf.matMul(d, fw.wx[k], false, true))) as tf.Tensor2D;
  const dh = tf.addN(da.map((d, k) => tf.matMul(d, fw.wh[k], false, true))) as tf.Tensor2D;
  return [dKernel, dBias, dx, tf.mul(dcT, fw.f) as tf.Tensor2D, dh];
};

// ---- Fast paths -------------------------------------------------------------------------------

const is2d = (t: tf.Tensor, rows: number, cols: number) =>
  t.rank === 2 && t.shape[0] === rows && t.shape[1] === cols;

/** True when one layer's tensors have the exact shapes the kernel reads (else: composition). */
const layerFits = (
  kernel: tf.Tensor,
  bias: tf.Tensor,
  c: tf.Tensor,
  h: tf.Tensor,
  n: number,
  inW: number,
  U: number,
) =>
  is2d(kernel, inW + U, 4 * U) && bias.rank === 1 && bias.shape[0] === 4 * U &&
  is2d(c, n, U) && is2d(h, n, U);

const allF32 = (ts: readonly tf.Tensor[]) => ts.every((t) => t.dtype === "float32");

/** Slices `len` values at `off` of a flat tensor into `shape`. */
const part = (t: tf.Tensor, off: number, len: number, shape: number[]) =>
  tf.reshape(tf.slice(t, [off], [len]), shape);

type CustomFn = Parameters<typeof tf.customGrad>[0];

/** The native fused LSTM cell (differentiable), or null when it does not apply. */
export const nativeLstmCell = (
  kernel: tf.Tensor2D,
  bias: tf.Tensor1D,
  x: tf.Tensor2D,
  c: tf.Tensor2D,
  h: tf.Tensor2D,
): [tf.Tensor2D, tf.Tensor2D] | null => {
  if (tf.getBackend() !== NATIVE_BACKEND || x.rank !== 2 || c.rank !== 2) return null;
  const [n, inW] = x.shape;
  if (!allF32([kernel, bias, x, c, h]) || !layerFits(kernel, bias, c, h, n, inW, U)) return null;
  const nU = n * U;
  const op = tf.customGrad(
    ((...args: unknown[]) => {
      const save = args.pop() as tf.GradSaveFunc;
      const ts = args as tf.Tensor[];
      save(ts);
      const [k, b, xi, ci, hi] = ts;
      const value = tf.engine().runKernel(LSTM_CELL_KERNEL, {
        kernel: k,
        bias: b,
        x: xi,
        c: ci,
        h: hi,
      });
      return {
        value,
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
          const [ks, bs, xs, cs, hs] = saved as [
            tf.Tensor2D,
            tf.Tensor1D,
            tf.Tensor2D,
            tf.Tensor2D,
            tf.Tensor2D,
          ];
          const fw = cellForward(ks, bs, xs, cs, hs);
          return cellBackward(fw, part(dy, 0, nU, [n, U]), part(dy, nU, nU, [n, U]));
        },
      };
    }) as unknown as CustomFn,
  );
  return tf.tidy(() => {
    const packed = op(kernel, bias, x, c, h);
    return [part(packed, 0, nU, [n, U]), part(packed, nU, nU, [n, U])] as [
      tf.Tensor2D,
      tf.Tensor2D,
    ];
  });
};

/** The native fused network step (all layers and the head; differentiable), or null. */
export const nativeLstmNetStep = (
  w: LstmNetWeights,
  state: LstmState,
  input: tf.Tensor2D,
): { readonly out: tf.Tensor1D; readonly state: LstmState } | null => {
  if (tf.getBackend() !== NATIVE_BACKEND || input.rank !== 2) return null;
  const L = w.layers.length;
  if (L === 0 || state.c.length !== L || state.h.length !== L || state.c[0].rank !== 2) return null;
  const [n, inW] = input.shape;
  const fits =
    w.layers.every((ly, l) =>
      layerFits(ly.kernel, ly.bias, state.c[l], state.h[l], n, l === 0 ? inW : U, U)
    ) && is2d(w.head.kernel, U, 1) && w.head.bias.rank === 1 && w.head.bias.shape[0] === 1;
  const ins: tf.Tensor[] = [
    input,
    ...w.layers.flatMap((ly, l) => [ly.kernel, ly.bias, state.c[l], state.h[l]]),
    w.head.kernel,
    w.head.bias,
  ];
  if (!fits || !allF32(ins)) return null;
  const nU = n * U;
  const op = tf.customGrad(
    ((...args: unknown[]) => {
      const save = args.pop() as tf.GradSaveFunc;
      const ts = args as tf.Tensor[];
      save(ts);
      const named: tf.NamedTensorMap = {
        x: ts[0],
        headKernel: ts[1 + 4 * L],
        headBias: ts[2 + 4 * L],
      };
      for (let l = 0; l < L; l++) {
        named[`kernel${l}`] = ts[1 + 4 * l];
        named[`bias${l}`] = ts[2 + 4 * l];
        named[`c${l}`] = ts[3 + 4 * l];
        named[`h${l}`] = ts[4 + 4 * l];
      }
      const value = tf.engine().runKernel(LSTM_NET_KERNEL, named, { layers: L });
      return {
        value,
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
          const lay = (l: number) =>
            saved.slice(1 + 4 * l, 5 + 4 * l) as [
              tf.Tensor2D,
              tf.Tensor1D,
              tf.Tensor2D,
              tf.Tensor2D,
            ];
          const hk = saved[1 + 4 * L] as tf.Tensor2D;
          const fws: CellForward[] = [];
          let xl = saved[0] as tf.Tensor2D;
          for (let l = 0; l < L; l++) {
            const [k, b, c, h] = lay(l);
            fws.push(cellForward(k, b, xl, c, h));
            xl = fws[l].hNext;
          }
          const dOut = part(dy, 0, n, [n, 1]);
          const dHeadKernel = tf.matMul(xl, dOut, true, false);
          const dHeadBias = tf.sum(dOut, 0);
          const grads: tf.Tensor[] = new Array(ins.length);
          let dhAbove: tf.Tensor = tf.matMul(dOut, hk, false, true);
          for (let l = L - 1; l >= 0; l--) {
            const dc = part(dy, n + 2 * l * nU, nU, [n, U]);
            const dh = tf.add(part(dy, n + (2 * l + 1) * nU, nU, [n, U]), dhAbove);
            const [dK, dB, dX, dC, dH] = cellBackward(fws[l], dc, dh);
            grads[1 + 4 * l] = dK;
            grads[2 + 4 * l] = dB;
            grads[3 + 4 * l] = dC;
            grads[4 + 4 * l] = dH;
            dhAbove = dX;
          }
          grads[0] = dhAbove;
          grads[1 + 4 * L] = dHeadKernel;
          grads[2 + 4 * L] = dHeadBias;
          return grads;
        },
      };
    }) as unknown as CustomFn,
  );
  return tf.tidy(() => {
    const packed = op(...ins);
    const c: tf.Tensor2D[] = [], h: tf.Tensor2D[] = [];
    for (let l = 0; l < L; l++) {
      c.push(part(packed, n + 2 * l * nU, nU, [n, U]) as tf.Tensor2D);
      h.push(part(packed, n + (2 * l + 1) * nU, nU, [n, U]) as tf.Tensor2D);
    }
    return { out: part(packed, 0, n, [n]) as tf.Tensor1D, state: { c, h } };
  });
};

/**
 * Registers the kernels and installs the fast paths into `lib/optim/mlhf/lstm.ts` (called by the native
 * backend's registration).
 */
export const installNativeLstm = (blas: Blas): void => {
  registerLstmKernels(blas);
  installLstmFastPaths({ cell: nativeLstmCell, netStep: nativeLstmNetStep });
};
