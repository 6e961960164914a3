/**
 * The project's own TF.js kernels: their names and contracts, and how a call site chooses one.
 *
 * A backend may register kernels under these names (the native BLAS backend registers all of them
 * when it is registered, `lib/backend/native/backend.ts`); no other backend has them. A call site
 * that can use one says so where it runs: when {@link backendHasKernel} is true for the kernel's
 * name it runs the kernel, else an op composition that computes the same function. The TF.js
 * kernel registry is the only registry: nothing is installed into module state by an import.
 *
 * The two window-gradient kernels have project names, not the stock `Conv2DBackpropFilter` and
 * `MaxPoolGrad`, because the stock names do not carry the contract: stock wasm has no filter
 * gradient, stock cpu's takes ~50 s on a CIFAR layer, and wasm's max-pool gradient sends the
 * cotangent to the wrong element in all-negative windows (docs/tfjs-notes.md#conv2d-filter-gradient, docs/tfjs-notes.md#wasm-maxpoolgrad).
 * @module
 */
import { tf } from "./_deps.ts";

/**
 * The filter gradient of a NHWC conv2d without dilation: inputs `x`, `dy`; attrs as TF.js's
 * `Conv2DBackpropFilter` (`strides`, `pad`, `dataFormat: "NHWC"`, `filterShape`); output the
 * filter-shaped gradient. Callers: `conv2dFilterGrad` (`ops/windows.ts`).
 */
export const CONV2D_FILTER_GRAD_KERNEL = "MlhfConv2DBackpropFilter";

/**
 * The input gradient of a NHWC max-pool that sends each cotangent to the FIRST maximum of its
 * window in row-major window order (docs/algorithm.md#max-pool-ties), also when every value is negative: inputs
 * `dy`, `input` (x), `output` (read only by fallbacks, for its dtype); attrs `filterSize`,
 * `strides`, `pad`. Callers: `maxPoolInputGrad` (`ops/windows.ts`), max-pool's transpose.
 */
export const MAX_POOL_GRAD_KERNEL = "MlhfMaxPoolGrad";

/**
 * Max-pool's first arg-max as indices: input `x` (NHWC); attrs `filterSize`, `strides`, `pad`;
 * output int32 of the pool's output shape, the flat index into x of the element
 * {@link MAX_POOL_GRAD_KERNEL} routes each window's cotangent to (NaN never wins; a window with no
 * value above −∞ gives its first in-bounds element). Caller: max-pool's residuals (`ops/conv.ts`).
 */
export const MAX_POOL_ARG_MAX_KERNEL = "MlhfMaxPoolArgMax";

/**
 * Max-pool's values and {@link MAX_POOL_ARG_MAX_KERNEL}'s indices of one input in one pass: input
 * `x` (float32 NHWC), attrs as `MaxPool`'s; outputs [y, indices], y bit for bit `MaxPool`'s, the
 * indices those of the arg-max kernel (a window entirely in the padding throws, as there). Its
 * gradient (y's cotangent scattered to the indices) is registered with it. Caller: max-pool's primal
 * (`ops/conv.ts`), which keeps the indices for its residuals.
 */
export const MAX_POOL_WITH_ARG_MAX_KERNEL = "MlhfMaxPoolWithArgMax";

/**
 * A flat gather: inputs `x`, `indices` (int32); output float32 shaped like `indices`,
 * out[o] = x.flat[indices[o]] (max-pool's J·v at its arg-max indices). Its gradient is
 * {@link SCATTER_ADD_FLAT_KERNEL}, registered with it.
 */
export const GATHER_FLAT_KERNEL = "MlhfGatherFlat";

/**
 * The adjoint of {@link GATHER_FLAT_KERNEL}: inputs `updates`, `indices` (same shape); attr `shape`;
 * output float32 zeros of `shape`, then out.flat[indices[o]] += updates[o] in increasing o
 * (max-pool's Jᵀ·u at its arg-max indices).
 */
export const SCATTER_ADD_FLAT_KERNEL = "MlhfScatterAddFlat";

/** Units per layer of the LSTM kernels (U, the meta-network's `LSTM_UNITS`). */
export const LSTM_KERNEL_UNITS = 4;

/**
 * TF 1.7's LSTMBlockCell with forget bias 1 in one pass: inputs `kernel` [inW+U, 4U], `bias` [4U],
 * `x` [N, inW], `c`, `h` [N, U] (float32, U = {@link LSTM_KERNEL_UNITS}); output float32 [2·N·U],
 * c′ then h′ packed flat. Caller: `lstmCell` (`lib/optim/mlhf/lstm.ts`).
 */
export const LSTM_CELL_KERNEL = "MlhfLstmCell";

/**
 * A whole step of MLHF's meta-network (stacked LSTM cells, then the U → 1 head): inputs `x`, per
 * layer l `kernel<l>`, `bias<l>`, `c<l>`, `h<l>`, then `headKernel`, `headBias`; attr `layers`;
 * output float32 packed flat [out (N) | c′₀ | h′₀ | c′₁ | h′₁ | …]. Caller: `lstmNetStep`
 * (`lib/optim/mlhf/lstm.ts`).
 */
export const LSTM_NET_KERNEL = "MlhfLstmNet";

/**
 * The vector-Jacobian product of {@link LSTM_NET_KERNEL}: its inputs (same names, attr `layers`)
 * plus `dy`, the cotangent of its packed output; outputs the cotangents of `x`, then per layer of
 * `kernel<l>`, `bias<l>`, `c<l>`, `h<l>`, then of `headKernel` and `headBias`, each shaped like its
 * input (equal to the composition's gradient to float32 rounding). Not differentiable itself: the
 * caller (`lstmNetStepKernel`'s gradient) runs it only when no tape records the gradient, and the
 * differentiable composition otherwise.
 */
export const LSTM_NET_GRAD_KERNEL = "MlhfLstmNetGrad";

/**
 * Train-mode batch norm over every axis but the last in one kernel: inputs `x`, `gamma`, `beta`
 * ([C]), attr `epsilon`; outputs y (x's shape), the batch mean and variance ([C]). Caller:
 * `batchNormTrain` (`ops/batch_norm.ts`).
 */
export const BATCH_NORM_TRAIN_KERNEL = "MlhfBatchNormTrain";

/**
 * The gradient of {@link BATCH_NORM_TRAIN_KERNEL}: inputs `dy`, `x`, `mean`, `variance`, `gamma`,
 * `dMean`, `dVariance`; attr `epsilon`; outputs dx, dγ, dβ. Callers: the kernel's registered
 * gradient and batch norm's Jᵀ·u (`ops/batch_norm.ts`).
 */
export const BATCH_NORM_TRAIN_GRAD_KERNEL = "MlhfBatchNormTrainGrad";

/**
 * ReLU's tangent and cotangent from its output: inputs `dy`, `y` (float32, one shape); output
 * dy·1[y > 0], the product with the 0/1 mask, bit for bit (±0 where y ≤ 0 or NaN, NaN where dy is
 * NaN or ±∞ there). Caller: relu's rules (`ops/elementwise.ts`), which then keep y instead of a
 * mask. Its gradient is itself in dy and zero in y, registered with it.
 */
export const RELU_GRAD_KERNEL = "MlhfReluGrad";

/** Every kernel name above. */
export const PROJECT_KERNELS: readonly string[] = [
  CONV2D_FILTER_GRAD_KERNEL,
  MAX_POOL_GRAD_KERNEL,
  MAX_POOL_ARG_MAX_KERNEL,
  MAX_POOL_WITH_ARG_MAX_KERNEL,
  GATHER_FLAT_KERNEL,
  SCATTER_ADD_FLAT_KERNEL,
  LSTM_CELL_KERNEL,
  LSTM_NET_KERNEL,
  LSTM_NET_GRAD_KERNEL,
  BATCH_NORM_TRAIN_KERNEL,
  BATCH_NORM_TRAIN_GRAD_KERNEL,
  RELU_GRAD_KERNEL,
];

/** True when the active TF.js backend registers a kernel named `name`. */
export const backendHasKernel = (name: string): boolean =>
  tf.getKernel(name, tf.getBackend()) !== undefined;
