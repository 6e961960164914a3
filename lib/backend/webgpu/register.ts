/**
 * Puts the project's WGSL kernels under TF.js's `webgpu` backend (issue 15, point 5), as the native
 * backend did for the CPU: `BatchMatMul` by a register-blocked GEMM, `Conv2D` and its two gradients
 * as implicit GEMMs (`kernels/`), plus the project's own `MlhfConv2DBackpropFilter`, `MlhfLstmCell`
 * and `MlhfLstmNet` (`lib/kernels.ts`), which the library's call sites run where the backend
 * registers them. Each replaced kernel keeps TF.js's original as its fallback for what it does not
 * take (other dtypes, dilation, NCHW, thin products).
 *
 * Nothing happens on import: {@link registerWebGpuKernels} registers them (after the webgpu
 * backend's package is imported) and {@link restoreTfjsWebGpuKernels} puts TF.js's originals back
 * (benchmarks compare both).
 * @module
 */
import { tf } from "../../_deps.ts";
import { CONV2D_FILTER_GRAD_KERNEL, LSTM_CELL_KERNEL, LSTM_NET_KERNEL } from "../../kernels.ts";
import { convKernels } from "./kernels/conv2d.ts";
import { lstmKernels } from "./kernels/lstm.ts";
import { batchMatMulKernel } from "./kernels/matmul.ts";
import type { Fallback, KernelArgs, WebGpuKernel } from "./kernels/_util.ts";

/** TF.js's name of the backend. */
export const WEBGPU_BACKEND = "webgpu";

/** The TF.js kernels replaced on webgpu. */
export const REPLACED_WEBGPU_KERNELS: readonly string[] = [
  "BatchMatMul",
  "Conv2D",
  "Conv2DBackpropInput",
  "Conv2DBackpropFilter",
];

/** The project's kernels added on webgpu (no TF.js kernel of that name). */
export const ADDED_WEBGPU_KERNELS: readonly string[] = [
  CONV2D_FILTER_GRAD_KERNEL,
  LSTM_CELL_KERNEL,
  LSTM_NET_KERNEL,
];

/** TF.js's original kernel configs, taken when first replaced. */
let originals: Map<string, tf.KernelConfig> | null = null;

const asFallback = (k: tf.KernelConfig | undefined): Fallback =>
  k
    ? (args: KernelArgs) =>
      k.kernelFunc(args as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo | tf.TensorInfo[]
    : null;

const ourKernels = (orig: Map<string, tf.KernelConfig>): WebGpuKernel[] => [
  batchMatMulKernel(asFallback(orig.get("BatchMatMul"))),
  ...convKernels((name) => asFallback(orig.get(name))),
  ...lstmKernels(),
];

const put = (name: string, kernelFunc: tf.KernelFunc | WebGpuKernel["kernelFunc"]) => {
  if (tf.getKernel(name, WEBGPU_BACKEND)) tf.unregisterKernel(name, WEBGPU_BACKEND);
  tf.registerKernel({
    kernelName: name,
    backendName: WEBGPU_BACKEND,
    kernelFunc: kernelFunc as tf.KernelFunc,
  });
};

/**
 * Registers the project's WGSL kernels for the `webgpu` backend, replacing TF.js's (idempotent).
 * The backend's package must have been imported (it registers TF.js's kernels); throws naming what
 * is missing otherwise.
 */
export const registerWebGpuKernels = (): void => {
  if (!originals) {
    const o = new Map<string, tf.KernelConfig>();
    for (const name of REPLACED_WEBGPU_KERNELS) {
      const k = tf.getKernel(name, WEBGPU_BACKEND);
      if (!k) {
        throw new Error(
          `registerWebGpuKernels: TF.js has no '${name}' kernel for '${WEBGPU_BACKEND}' (import npm:@tensorflow/tfjs-backend-webgpu first)`,
        );
      }
      o.set(name, k);
    }
    originals = o;
  }
  for (const k of ourKernels(originals)) put(k.kernelName, k.kernelFunc);
};

/** Puts TF.js's original webgpu kernels back and removes the added ones (no-op if none). */
export const restoreTfjsWebGpuKernels = (): void => {
  if (!originals) return;
  for (const [name, k] of originals) put(name, k.kernelFunc);
  for (const name of ADDED_WEBGPU_KERNELS) {
    if (tf.getKernel(name, WEBGPU_BACKEND)) tf.unregisterKernel(name, WEBGPU_BACKEND);
  }
};
