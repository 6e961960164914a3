/**
 * The `native` TF.js backend: an instance of the cpu backend's own class (`MathBackendCPU`, taken
 * from the registered cpu backend, so every kernel works on it), with every kernel registered for
 * "cpu" copied to "native" and the BLAS-backed and loop kernels registered over them through the
 * public kernel API (`tf.registerBackend`, `tf.getKernelsForBackend`, `tf.registerKernel`): the
 * GEMM-based matMul and conv kernels, the pooling kernels, the few element-wise kernels that
 * dominate a conv-net step once the GEMMs are fast, and block-copy `Slice`/`PadV2` (the window ops
 * of `ops/windows.ts` are built from them; the stock cpu ones are element by element). The
 * project's own kernels (`lib/kernels.ts`) have no cpu counterpart ({@link NATIVE_ONLY_KERNELS}:
 * the conv filter and max-pool gradients under the project's names, max-pool's arg-max indices and
 * the flat gather/scatter-add over them, the meta-networks' LSTM steps); the library's call sites
 * run them where the active backend registers them, and the gradients of the index kernels are
 * registered with them.
 * The backend instance recycles its kernels' large output arrays (`kernels/_util.ts`,
 * `installRecycling`): first-touch page faults of fresh arrays cost more than most kernels' work;
 * for the same reason it raises glibc's mmap and trim thresholds (`malloc.ts`).
 * Registration happens at most once per process.
 * @module
 */
import { tf } from "../../_deps.ts";
import { PROJECT_KERNELS } from "../../kernels.ts";
import type { Blas } from "./blas.ts";
import { batchNormGradients, batchNormKernels } from "./kernels/batch_norm.ts";
import { convKernels } from "./kernels/conv.ts";
import { elementwiseKernels, reluGradGradient } from "./kernels/elementwise.ts";
import { matMulKernels } from "./kernels/matmul.ts";
import { poolIndexGradients, poolKernels } from "./kernels/pool.ts";
import { shapeKernels } from "./kernels/shape.ts";
import { lstmKernels } from "./lstm.ts";
import { installRecycling, type NativeKernel } from "./kernels/_util.ts";
import { keepHeapInProcess } from "./malloc.ts";

/** TF.js's name of the backend. */
export const NATIVE_BACKEND = "native";

/** Names of the kernels the native backend overrides (the rest are the cpu backend's). */
export const OVERRIDDEN_KERNELS: readonly string[] = [
  "BatchMatMul",
  "_FusedMatMul",
  "Conv2D",
  "FusedConv2D",
  "Conv2DBackpropInput",
  "Conv2DBackpropFilter",
  "MaxPool",
  "AvgPool",
  "MaxPoolGrad",
  "AvgPoolGrad",
  "Add",
  "Sub",
  "Multiply",
  "Relu",
  "Step",
  "Neg",
  "Square",
  "Tanh",
  "Softplus",
  "Greater",
  "GreaterEqual",
  "Less",
  "LessEqual",
  "Cast",
  "Sum",
  "Mean",
  "ArgMax",
  "Equal",
  "Slice",
  "PadV2",
  "Tile",
  "Pack",
  // The meta-iteration's (kernels/elementwise.ts, kernels/shape.ts).
  "Sigmoid",
  "Softmax",
  "RealDiv",
  "AddN",
  "Unpack",
  "SplitV",
  "Transpose",
  "Concat",
];

/**
 * Kernels only the native backend has (no cpu kernel of that name): the project's kernels
 * (`lib/kernels.ts`): the conv filter gradient (`kernels/conv.ts`); max-pool's gradient, its
 * arg-max indices and the flat gather and scatter-add that route its tangents and cotangents, with
 * the index kernels' gradients registered alongside (`kernels/pool.ts`); the LSTM steps
 * (`lstm.ts`); train-mode batch norm and its gradient (`kernels/batch_norm.ts`).
 */
export const NATIVE_ONLY_KERNELS: readonly string[] = PROJECT_KERNELS;

const allKernels = (blas: Blas): NativeKernel[] => [
  ...matMulKernels(blas),
  ...convKernels(blas),
  ...poolKernels(),
  ...elementwiseKernels(),
  ...shapeKernels(),
  ...lstmKernels(blas),
  ...batchNormKernels(),
];

let registered = false;

/**
 * Registers the `native` backend and its kernels (idempotent). Priority 0 keeps it from being
 * picked implicitly over cpu/wasm; `tf.setBackend("native")` or `selectBackend` activates it.
 */
export const registerNativeBackend = (blas: Blas): void => {
  if (registered) return;
  keepHeapInProcess();
  const cpu = tf.findBackend("cpu");
  if (!cpu) throw new Error("native backend: the cpu backend is not registered");
  const Cpu = cpu.constructor as new () => tf.KernelBackend & { firstUse?: boolean };
  tf.registerBackend(NATIVE_BACKEND, () => {
    const b = new Cpu();
    b.firstUse = false; // no "install tfjs-node" banner: this backend is the native one
    installRecycling(b);
    return b;
  }, 0);
  for (const k of tf.getKernelsForBackend("cpu")) {
    tf.registerKernel({ ...k, backendName: NATIVE_BACKEND });
  }
  const kernels = allKernels(blas);
  const listed = [...OVERRIDDEN_KERNELS, ...NATIVE_ONLY_KERNELS].sort().join();
  if (kernels.map((k) => k.kernelName).sort().join() !== listed) {
    throw new Error("native backend: OVERRIDDEN_KERNELS or NATIVE_ONLY_KERNELS is out of date");
  }
  for (const k of kernels) {
    if (tf.getKernel(k.kernelName, NATIVE_BACKEND)) {
      tf.unregisterKernel(k.kernelName, NATIVE_BACKEND);
    }
    tf.registerKernel({
      kernelName: k.kernelName,
      backendName: NATIVE_BACKEND,
      kernelFunc: k.kernelFunc as tf.KernelFunc,
    });
  }
  for (const g of [...poolIndexGradients(), ...batchNormGradients(), reluGradGradient()]) {
    tf.registerGradient(g);
  }
  registered = true;
};
