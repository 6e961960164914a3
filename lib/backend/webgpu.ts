/**
 * The WebGPU backend's adapter check: `auto` takes webgpu only on real hardware, never on a software
 * adapter (Mesa's llvmpipe, SwiftShader, a "CPU" device type), which is slower than the CPU
 * backends; an explicit `--backend webgpu` takes any adapter (tests run on llvmpipe).
 * @module
 */
import { importWebGpuBackend, tf } from "../_deps.ts";

/** The fields of `GPUAdapterInfo` this check reads (Deno may leave some empty). */
export interface AdapterInfo {
  readonly vendor?: string;
  readonly architecture?: string;
  readonly device?: string;
  readonly description?: string;
  readonly isFallbackAdapter?: boolean;
}

const SOFTWARE = /llvmpipe|lavapipe|softpipe|swiftshader|software|\bcpu\b/i;

/** A one-line description of the adapter ("llvmpipe (LLVM 15.0.6, 256 bits)", or its vendor). */
export const adapterName = (info: AdapterInfo): string =>
  info.description || [info.vendor, info.architecture, info.device].filter(Boolean).join(" ") ||
  "unnamed adapter";

/** Why an adapter is a software one (null for real hardware, as far as its info tells). */
export const softwareAdapterReason = (
  info: AdapterInfo,
  isFallbackAdapter = false,
): string | null => {
  if (isFallbackAdapter || info.isFallbackAdapter) {
    return `the adapter '${adapterName(info)}' is a fallback (software) adapter`;
  }
  const text = [info.description, info.architecture, info.vendor, info.device].join(" ");
  return SOFTWARE.test(text) ? `the adapter '${adapterName(info)}' is a software rasterizer` : null;
};

interface GpuLike {
  requestAdapter(): Promise<
    { info?: AdapterInfo; isFallbackAdapter?: boolean } | null
  >;
}

/**
 * Probes `navigator.gpu` and its adapter; with `hardwareOnly`, refuses a software adapter. Returns
 * null when webgpu is active, else why not (naming what is missing).
 */
export const loadWebgpu = async (hardwareOnly: boolean): Promise<string | null> => {
  const gpu = (globalThis.navigator as { gpu?: GpuLike } | undefined)?.gpu;
  if (!gpu) return "navigator.gpu is missing (this runtime exposes no WebGPU)";
  let adapter;
  try {
    adapter = await gpu.requestAdapter();
  } catch (e) {
    return `navigator.gpu.requestAdapter() failed: ${(e as Error).message.split("\n")[0]}`;
  }
  if (!adapter) {
    return "navigator.gpu.requestAdapter() returned no adapter (no GPU, and no Vulkan/GL driver such as Mesa's: Debian mesa-vulkan-drivers or libegl-mesa0 libgl1-mesa-dri)";
  }
  if (hardwareOnly) {
    const why = softwareAdapterReason(adapter.info ?? {}, adapter.isFallbackAdapter === true);
    if (why) return why;
  }
  try {
    await importWebGpuBackend();
  } catch (e) {
    return `import failed: ${(e as Error).message.split("\n")[0]}`;
  }
  try {
    if (await tf.setBackend("webgpu")) {
      installWebgpuFixes();
      return null;
    }
  } catch (e) {
    return `tf.setBackend('webgpu') threw: ${(e as Error).message.split("\n")[0]}`;
  }
  return "tf.setBackend('webgpu') returned false";
};

interface KernelArgs {
  inputs: tf.TensorInfo[];
  backend: { disposeData(id: unknown): unknown; device?: { limits?: Record<string, number> } };
  attrs?: unknown;
}
let addNFixed = false;

/** The parts of TF.js's WebGPU backend instance that the transpose fix uses. */
interface WebgpuBackendLike {
  device: { limits: Record<string, number> };
  disposeData(id: unknown): unknown;
  runWebGPUProgram(
    program: { shaderKey?: string; dispatch?: number[] },
    inputs: tf.TensorInfo[],
    dtype: string,
    uniforms?: unknown,
    output?: tf.TensorInfo,
  ): tf.TensorInfo;
}
const transposeFixed = new WeakSet<object>();

type NamedKernel = (
  a: { inputs: Record<string, tf.TensorInfo>; backend: unknown; attrs: unknown },
) => tf.TensorInfo;
const kernelOf = (name: string): NamedKernel =>
  tf.getKernel(name, "webgpu")!.kernelFunc as unknown as NamedKernel;

/**
 * TF.js's webgpu transposes a 2-D tensor with a tiled program whose dispatch grid has a dimension
 * of (rows or columns) / 16, and never splits it: past 16 × maxComputeWorkgroupsPerDimension
 * (65535: 1 048 560) rows it throws "Dispatch size exceeds WebGPU limits in Y or Z dimension". Its
 * reductions along a non-innermost axis (a sum over rows: a bias gradient over 1.4 M coordinates in
 * meta-training) transpose first, through the same program, by an internal call no kernel
 * registration reaches. So the backend's program runner is wrapped: such a transpose runs as the
 * [1, n, k] → [1, k, n] transpose, whose program has a flat grid that TF.js does split.
 */
const installTransposeFix = (backend: WebgpuBackendLike): void => {
  if (transposeFixed.has(backend)) return;
  const run = backend.runWebGPUProgram.bind(backend);
  backend.runWebGPUProgram = (program, inputs, dtype, uniforms, output) => {
    const limit = backend.device.limits.maxComputeWorkgroupsPerDimension ?? 65535;
    const x = inputs[0];
    if (
      program.shaderKey === "transposeShared" && output === undefined && x?.shape.length === 2 &&
      (program.dispatch ?? []).some((d) => d > limit)
    ) {
      const [n, k] = x.shape;
      const x3 = kernelOf("Reshape")({ inputs: { x }, backend, attrs: { shape: [1, n, k] } });
      const t3 = kernelOf("Transpose")({ inputs: { x: x3 }, backend, attrs: { perm: [0, 2, 1] } });
      const out = kernelOf("Reshape")({ inputs: { x: t3 }, backend, attrs: { shape: [k, n] } });
      backend.disposeData(x3.dataId);
      backend.disposeData(t3.dataId);
      return out;
    }
    return run(program, inputs, dtype, uniforms, output);
  };
  transposeFixed.add(backend);
};

/**
 * TF.js's webgpu AddN binds every input to one shader and silently drops those beyond the device's
 * storage-buffer limit (llvmpipe: 8 bindings, so `tf.addN` of 12 scalars 1..12 returned 28, the sum
 * of the first 7). `vdot` over a tree with more leaves than that (the meta-weights) summed a part
 * of them. Wrapped here: at most limit − 1 inputs per call, accumulated left to right. Also installs
 * the transpose fix (below) on the active webgpu backend.
 */
export const installWebgpuFixes = (): void => {
  const backend = tf.findBackend("webgpu") as unknown as WebgpuBackendLike | null;
  if (backend) installTransposeFix(backend);
  if (addNFixed) return;
  const cfg = tf.getKernel("AddN", "webgpu");
  if (!cfg) return;
  const original = cfg.kernelFunc as unknown as (a: KernelArgs) => tf.TensorInfo;
  tf.unregisterKernel("AddN", "webgpu");
  tf.registerKernel({
    ...cfg,
    kernelFunc: ((args: KernelArgs) => {
      const limit = args.backend.device?.limits?.maxStorageBuffersPerShaderStage ?? 8;
      const chunk = Math.max(2, Math.min(limit - 1, 7));
      const xs = args.inputs;
      if (xs.length <= chunk) return original(args);
      let acc = original({ ...args, inputs: xs.slice(0, chunk) });
      for (let i = chunk; i < xs.length; i += chunk - 1) {
        const next = original({ ...args, inputs: [acc, ...xs.slice(i, i + chunk - 1)] });
        args.backend.disposeData(acc.dataId);
        acc = next;
      }
      return acc;
    }) as unknown as tf.KernelFunc,
  });
  addNFixed = true;
};
