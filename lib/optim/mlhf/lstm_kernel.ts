/**
 * The meta-network's LSTM steps (`lstm.ts`) by the project's fused kernels `MlhfLstmCell` and
 * `MlhfLstmNet` (`lib/kernels.ts`; the native backend registers them: single-pass row loops,
 * `lib/backend/native/lstm.ts`). `lstmCell` and `lstmNetStep` call these where the active backend
 * registers the kernel and the inputs fit it, and the op compositions elsewhere.
 *
 * The kernels compute the forward pass only. Each call here wraps its kernel in `tf.customGrad`
 * whose gradient recomputes the forward pass from the saved inputs and applies the cell's
 * derivative, all in standard differentiable ops (per-gate products, no wide concat or split), so
 * gradients equal the composition's, and the second order is right (TF.js keeps the second-order
 * path through saved inputs, not through saved outputs as the composition's sigmoid and tanh use).
 * The network step's gradient runs the backend's `MlhfLstmNetGrad` kernel instead where it has one
 * and no tape records the gradient (`tf.engine().isTapeOn()` false: nobody asks for its second
 * order, as in meta-training's one backward pass): the same values to float32 rounding, one pass.
 * @module
 */
import { tf } from "../../_deps.ts";
import {
  backendHasKernel,
  LSTM_CELL_KERNEL,
  LSTM_KERNEL_UNITS as U,
  LSTM_NET_GRAD_KERNEL,
  LSTM_NET_KERNEL,
} from "../../kernels.ts";
import type { LstmNetWeights, LstmState } from "./lstm.ts";

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

/**
 * True when the cell's inputs are the `MlhfLstmCell` kernel's case (float32, U = 4 units, exact
 * shapes: nothing the composition would broadcast).
 */
export const lstmCellKernelFits = (
  kernel: tf.Tensor,
  bias: tf.Tensor,
  x: tf.Tensor,
  c: tf.Tensor,
  h: tf.Tensor,
): boolean =>
  x.rank === 2 && allF32([kernel, bias, x, c, h]) &&
  layerFits(kernel, bias, c, h, x.shape[0], x.shape[1]!, U);

/**
 * The LSTM cell by the `MlhfLstmCell` kernel (differentiable): c′ and h′. The active backend must
 * register the kernel and the inputs must fit it ({@link lstmCellKernelFits}).
 */
export const lstmCellKernel = (
  kernel: tf.Tensor2D,
  bias: tf.Tensor1D,
  x: tf.Tensor2D,
  c: tf.Tensor2D,
  h: tf.Tensor2D,
): [tf.Tensor2D, tf.Tensor2D] => {
  const n = x.shape[0];
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

/** The network step's inputs in the `MlhfLstmNet` kernel's order. */
const netInputs = (w: LstmNetWeights, state: LstmState, input: tf.Tensor2D): tf.Tensor[] => [
  input,
  ...w.layers.flatMap((ly, l) => [ly.kernel, ly.bias, state.c[l], state.h[l]]),
  w.head.kernel,
  w.head.bias,
];

/** The `MlhfLstmNet` kernel's named inputs from the list in {@link netInputs}' order. */
const netNamed = (ts: readonly tf.Tensor[], L: number): tf.NamedTensorMap => {
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
  return named;
};

/**
 * True when a network step's inputs are the `MlhfLstmNet` kernel's case (float32, at least one
 * layer, U = 4 units, a U → 1 head, exact shapes: nothing the composition would broadcast).
 */
export const lstmNetKernelFits = (
  w: LstmNetWeights,
  state: LstmState,
  input: tf.Tensor2D,
): boolean => {
  if (input.rank !== 2) return false;
  const L = w.layers.length;
  if (L === 0 || state.c.length !== L || state.h.length !== L || state.c[0].rank !== 2) {
    return false;
  }
  const [n, inW] = input.shape;
  return w.layers.every((ly, l) =>
    layerFits(ly.kernel, ly.bias, state.c[l], state.h[l], n, l === 0 ? inW : U, U)
  ) && is2d(w.head.kernel, U, 1) && w.head.bias.rank === 1 && w.head.bias.shape[0] === 1 &&
    allF32(netInputs(w, state, input));
};

/**
 * One network step (all layers and the head) by the `MlhfLstmNet` kernel (differentiable). The
 * active backend must register the kernel and the inputs must fit it ({@link lstmNetKernelFits}).
 */
export const lstmNetStepKernel = (
  w: LstmNetWeights,
  state: LstmState,
  input: tf.Tensor2D,
): { readonly out: tf.Tensor1D; readonly state: LstmState } => {
  const L = w.layers.length;
  const n = input.shape[0];
  const ins = netInputs(w, state, input);
  const nU = n * U;
  const op = tf.customGrad(
    ((...args: unknown[]) => {
      const save = args.pop() as tf.GradSaveFunc;
      const ts = args as tf.Tensor[];
      save(ts);
      const value = tf.engine().runKernel(LSTM_NET_KERNEL, netNamed(ts, L), { layers: L });
      return {
        value,
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
          // No tape records this gradient (no second order asked): the backend's one-pass kernel.
          if (!tf.engine().isTapeOn() && backendHasKernel(LSTM_NET_GRAD_KERNEL)) {
            return tf.engine().runKernel(
              LSTM_NET_GRAD_KERNEL,
              { ...netNamed(saved, L), dy },
              { layers: L },
            ) as unknown as tf.Tensor[];
          }
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
