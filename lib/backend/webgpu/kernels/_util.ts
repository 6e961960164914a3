/**
 * What the WebGPU kernels share: the slice of TF.js's `WebGPUBackend` they use (running a WGSL
 * program on tensors), the shape of a program object as that backend compiles it (it prepends the
 * buffer bindings, a `uniforms` struct and helpers to `getUserCode()`, `webgpu_program.js` of
 * `@tensorflow/tfjs-backend-webgpu`), and a kernel's name and function.
 * @module
 */
import type { tf } from "../../../_deps.ts";

/** A program as TF.js's webgpu backend runs it (`WebGPUProgram` in the package, not exported). */
export interface WgslProgram {
  outputShape: number[];
  /** Everything the generated code depends on besides the shapes: the pipeline cache key. */
  shaderKey: string;
  dispatchLayout: { x: number[]; y?: number[]; z?: number[] };
  dispatch: [number, number, number];
  /** Bound as `array<f32>` (or `array<vec4<f32>>` per `variableComponents`), in input order. */
  variableNames: string[];
  variableComponents?: number[];
  workgroupSize: [number, number, number];
  /** Extra fields of the `uniforms` struct, e.g. `"gM : i32, gN : i32,"`. */
  uniforms?: string;
  /** Adds `uniforms.size` (the output's element count / outputComponent). */
  size?: boolean;
  /** 4 binds the output as `array<vec4<f32>>`. */
  outputComponent?: number;
  getUserCode(): string;
}

/** One `int32` uniform value as `runWebGPUProgram` takes it. */
export interface Uniform {
  readonly type: "int32" | "float32";
  readonly data: number[];
}

/** The part of TF.js's `WebGPUBackend` the kernels use. */
export interface WebGpuBackendLike {
  runWebGPUProgram(
    program: WgslProgram,
    inputs: tf.TensorInfo[],
    outputDtype: tf.DataType,
    uniforms?: Uniform[],
    output?: tf.TensorInfo,
  ): tf.TensorInfo;
  makeTensorInfo(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  disposeData(dataId: tf.DataId): boolean;
  readonly device: { readonly limits: { readonly maxComputeWorkgroupsPerDimension: number } };
}

/** The arguments every TF.js kernel function receives. */
export interface KernelArgs {
  readonly inputs: { readonly [name: string]: tf.TensorInfo };
  readonly backend: unknown;
  readonly attrs?: tf.NamedAttrMap;
}

/** A WebGPU kernel: its name and function. */
export interface WebGpuKernel {
  readonly kernelName: string;
  readonly kernelFunc: (args: KernelArgs) => tf.TensorInfo | tf.TensorInfo[];
}

/** A kernel function to fall back to (TF.js's own program), or null where TF.js has none. */
export type Fallback = ((args: KernelArgs) => tf.TensorInfo | tf.TensorInfo[]) | null;

/** The backend argument, typed as the webgpu backend. */
export const webgpuBackend = (args: KernelArgs): WebGpuBackendLike =>
  args.backend as WebGpuBackendLike;

/** `t` seen with another shape of the same size (no data moves; for program inputs only). */
export const viewAs = (t: tf.TensorInfo, shape: number[]): tf.TensorInfo => ({
  dataId: t.dataId,
  shape,
  dtype: t.dtype,
});

/** int32 uniforms from plain numbers. */
export const ints = (...xs: number[]): Uniform[] => xs.map((x) => ({ type: "int32", data: [x] }));
