/**
 * The coordinatewise LSTM meta-networks (`lib/optim/mlhf/lstm.ts`) as single-pass native kernels: the
 * op composition runs ~14 element-wise kernels over [N, 4] per layer, each a full pass over memory
 * (≈ 2.3 s for one 2-layer step at N = 1.6 M on this backend); these kernels walk the rows once
 * (bench rows `mlhf-native/LSTM pass`): every layer and the head of a row in one float32
 * WebAssembly SIMD kernel (`lstm_cell.wat`, run by `lstm_rows.ts`), rows shared out over threads
 * (`lstm_threads.ts`). Their contracts are in `lib/kernels.ts`:
 *
 * - `MlhfLstmCell` (inputs `kernel`, `bias`, `x`, `c`, `h`): TF 1.7's LSTMBlockCell with forget
 *   bias 1 (gates [i, ĉ, f, o] = [x, h]·W + b; c′ = σ(i)·tanh(ĉ) + c·σ(f + 1); h′ = tanh(c′)·σ(o)),
 *   output c′ and h′ packed flat: [c′ (N·U) | h′ (N·U)].
 * - `MlhfLstmNet` (inputs `x`, per layer l `kernel<l>`, `bias<l>`, `c<l>`, `h<l>`, then
 *   `headKernel`, `headBias`; attr `layers`): a whole `lstmNetStep` (stacked cells, then the U → 1
 *   head), output packed flat: [out (N) | c′₀ | h′₀ | c′₁ | h′₁ | …].
 *
 * Everything is float32: the pre-activations are sums like the composition's matMul (in another
 * order), σ and tanh are within 3 and 2 ulp of the exact values (`lstm_wasm_test.ts`), so the
 * kernels agree with the composition to a few float32 ulp of each value. The packed output comes
 * from the backend's pool of recycled arrays (`kernels/_util.ts`; on shared memory when the row
 * workers share the pass): its slices are views of it, and it goes back to the pool when the last
 * of them is disposed, so a step's pass writes into warm pages instead of a fresh 112 MB mmap (for
 * the CUDA-convnet). The kernels compute the forward pass only: `lstmCell` and `lstmNetStep` run them
 * where the backend registers them (`registerNativeBackend` does, with the others) and carry their
 * gradients (`lib/optim/mlhf/lstm_kernel.ts`). `MlhfLstmNetGrad` is the network step's
 * vector-Jacobian product in one blocked pass (`lstm_grad.ts`: GEMMs by the BLAS, σ and tanh by
 * the same wasm passes), which that gradient runs when no tape records it.
 * @module
 */
import { LSTM_CELL_KERNEL, LSTM_NET_GRAD_KERNEL, LSTM_NET_KERNEL } from "../../kernels.ts";
import {
  allocF32,
  allocSharedF32,
  cpuBackend,
  f32,
  type KernelArgs,
  type NativeKernel,
} from "./kernels/_util.ts";
import { packedLength } from "./lstm_rows.ts";
import { lstmNetGradRows } from "./lstm_grad.ts";
import type { Blas } from "./blas.ts";
import { rowPassShared, runLstmRows } from "./lstm_threads.ts";

/**
 * The packed output of a pass over n rows, from the recycling pool: on shared memory when row
 * workers will write into it, else a plain array, as before the pool (a pass on the calling thread
 * needs no shared memory, and V8 may copy shared memory more slowly: relaxed atomic copies).
 */
const packedOut = (n: number, layers: number, head: boolean): Float32Array => {
  const len = packedLength(n, layers, head);
  return rowPassShared(n) ? allocSharedF32(len) : allocF32(len);
};

const cellKernel = (): NativeKernel => ({
  kernelName: LSTM_CELL_KERNEL,
  kernelFunc: (args: KernelArgs) => {
    const { kernel, bias, x, c, h } = args.inputs;
    const be = cpuBackend(args);
    const [n, inW] = x.shape;
    const packed = runLstmRows(
      n,
      f32(be, x),
      inW,
      [{
        w: f32(be, kernel),
        b: f32(be, bias),
        c: f32(be, c),
        h: f32(be, h),
      }],
      undefined,
      packedOut(n, 1, false),
    );
    return be.makeTensorInfo([packed.length], "float32", packed);
  },
});

/** The L layers' weights and carried state of a network-step kernel's inputs, as arrays. */
const netLayers = (be: ReturnType<typeof cpuBackend>, ins: KernelArgs["inputs"], L: number) =>
  Array.from({ length: L }, (_, l) => ({
    w: f32(be, ins[`kernel${l}`]),
    b: f32(be, ins[`bias${l}`]),
    c: f32(be, ins[`c${l}`]),
    h: f32(be, ins[`h${l}`]),
  }));

const netKernel = (): NativeKernel => ({
  kernelName: LSTM_NET_KERNEL,
  kernelFunc: (args: KernelArgs) => {
    const ins = args.inputs;
    const L = (args.attrs as { layers: number }).layers;
    const be = cpuBackend(args);
    const [n, inW] = ins.x.shape;
    const layers = netLayers(be, ins, L);
    const head = { w: f32(be, ins.headKernel), b: f32(be, ins.headBias)[0] };
    const packed = runLstmRows(
      n,
      f32(be, ins.x),
      inW,
      layers,
      head,
      packedOut(n, L, true),
    );
    return be.makeTensorInfo([packed.length], "float32", packed);
  },
});

/** `MlhfLstmNetGrad`: the network step's vector-Jacobian product (`lstm_grad.ts`), one thread. */
const netGradKernel = (blas: Blas): NativeKernel => ({
  kernelName: LSTM_NET_GRAD_KERNEL,
  kernelFunc: (args: KernelArgs) => {
    const ins = args.inputs;
    const L = (args.attrs as { layers: number }).layers;
    const be = cpuBackend(args);
    const [n, inW] = ins.x.shape;
    const layers = netLayers(be, ins, L);
    const g = lstmNetGradRows(
      blas,
      n,
      f32(be, ins.x),
      inW,
      layers,
      f32(be, ins.headKernel),
      f32(be, ins.dy),
      allocF32,
    );
    const like = (name: string, v: Float32Array) =>
      be.makeTensorInfo([...ins[name].shape], "float32", v);
    return [
      like("x", g.x),
      ...g.layers.flatMap((gl, l) => [
        like(`kernel${l}`, gl.w),
        like(`bias${l}`, gl.b),
        like(`c${l}`, gl.c),
        like(`h${l}`, gl.h),
      ]),
      like("headKernel", g.headW),
      like("headBias", g.headB),
    ];
  },
});

/** The native LSTM kernels (the gradient's GEMMs are the BLAS's). */
export const lstmKernels = (blas: Blas): NativeKernel[] => [
  cellKernel(),
  netKernel(),
  netGradKernel(blas),
];
