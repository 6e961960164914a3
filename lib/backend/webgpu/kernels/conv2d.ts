/**
 * NHWC/HWIO convolutions for the webgpu backend as implicit GEMMs on the register-blocked GEMM
 * (`gemm.ts`): the patch matrix is never stored, the GEMM's loaders compute each element's source
 * index (im2col arithmetic) and read zero in the padding.
 *
 * - `Conv2D`: y [N·Ho·Wo, Co] = patches(x) [N·Ho·Wo, kh·kw·Ci] · W [kh·kw·Ci, Co].
 * - `Conv2DBackpropInput`: dx [N·H·W, Ci] = dy-patches [N·H·W, kh·kw·Co] · Wᵀ-rows, where the
 *   patch of input pixel (h, w) at tap (fh, fw) reads dy at ((h + padTop − fh)/s, (w + padLeft −
 *   fw)/s) when that divides exactly and lies inside dy (zeros otherwise: strides waste s² of it).
 * - `Conv2DBackpropFilter` and the project's `MlhfConv2DBackpropFilter` (same contract,
 *   `lib/kernels.ts`): dW [kh·kw·Ci, Co] = patches(x)ᵀ · dy [N·Ho·Wo, Co], k = N·Ho·Wo split over
 *   workgroups when the output has few tiles (`chooseTiling`).
 *
 * Strides, SAME/VALID/explicit padding by TF.js's own geometry (`computeConv2DInfo`). Dilation,
 * NCHW, other dtypes, thin GEMMs (fewer than `MIN_SIDE` rows or columns, e.g. the input gradient
 * of a 3-channel image) and dispatches past the device's limits run TF.js's program (the project's
 * filter-gradient kernel falls back to TF.js's `Conv2DBackpropFilter`). Vector loads where the
 * contiguous channel count is a multiple of 4.
 * @module
 */
import { tf } from "../../../_deps.ts";
import { CONV2D_FILTER_GRAD_KERNEL } from "../../../kernels.ts";
import { type GemmOperand, runGemm, type Tiling } from "./gemm.ts";
import { denseOperand, MIN_SIDE } from "./matmul.ts";
import {
  type Fallback,
  type KernelArgs,
  webgpuBackend,
  type WebGpuBackendLike,
  type WebGpuKernel,
} from "./_util.ts";

/** The conv's geometry in the form the loaders read (uniform fields `c…`). */
interface ConvGeometry {
  readonly batch: number;
  readonly h: number;
  readonly w: number;
  readonly ci: number;
  readonly ho: number;
  readonly wo: number;
  readonly co: number;
  readonly kh: number;
  readonly kw: number;
  readonly sh: number;
  readonly sw: number;
  readonly padTop: number;
  readonly padLeft: number;
}

const CONV_UNIFORMS =
  "cH : i32, cW : i32, cCi : i32, cHo : i32, cWo : i32, cCo : i32, cKW : i32, cSH : i32, cSW : i32, cPT : i32, cPL : i32,";

const convValues = (g: ConvGeometry) => [
  g.h,
  g.w,
  g.ci,
  g.ho,
  g.wo,
  g.co,
  g.kw,
  g.sh,
  g.sw,
  g.padTop,
  g.padLeft,
];

/** TF.js's geometry of a NHWC conv, or null for what these kernels do not take. */
const geometry = (
  xShape: number[],
  filterShape: number[],
  attrs: tf.NamedAttrMap,
): ConvGeometry | null => {
  const dataFormat = attrs.dataFormat as string | undefined;
  if (dataFormat !== undefined && dataFormat !== "NHWC") return null;
  const dil = attrs.dilations as number | number[] | undefined;
  if (dil !== undefined && [dil].flat().some((d) => d !== 1)) return null;
  if (xShape.length !== 4 || filterShape.length !== 4) return null;
  const info = tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides as number | [number, number],
    1,
    attrs.pad as "same" | "valid" | number,
    attrs.dimRoundingMode as "floor" | "round" | "ceil" | undefined,
    false,
    "channelsLast",
  );
  return {
    batch: info.batchSize,
    h: info.inHeight,
    w: info.inWidth,
    ci: info.inChannels,
    ho: info.outHeight,
    wo: info.outWidth,
    co: info.outChannels,
    kh: info.filterHeight,
    kw: info.filterWidth,
    sh: info.strideHeight,
    sw: info.strideWidth,
    padTop: info.padInfo.top,
    padLeft: info.padInfo.left,
  };
};

/** x's patch element for output pixel `pix` (n, oh, ow) and tap `tap` (fh, fw), channel `ci`. */
const X_AT = `
fn convX(pix : i32, tap : i32, ci : i32) -> i32 {
  let b = pix / (uniforms.cHo * uniforms.cWo);
  let r = pix - b * uniforms.cHo * uniforms.cWo;
  let oh = r / uniforms.cWo;
  let ow = r - oh * uniforms.cWo;
  let fh = tap / uniforms.cKW;
  let fw = tap - fh * uniforms.cKW;
  let ih = oh * uniforms.cSH - uniforms.cPT + fh;
  let iw = ow * uniforms.cSW - uniforms.cPL + fw;
  if (ih < 0 || ih >= uniforms.cH || iw < 0 || iw >= uniforms.cW) { return -1; }
  return ((b * uniforms.cH + ih) * uniforms.cW + iw) * uniforms.cCi + ci;
}`;

/** Four x-patch elements along the channel axis (vector load when aligned), zero in padding. */
const xPatchVec = (aligned: boolean, pix: string, tap: string, ci: string, ok: string) =>
  aligned
    ? `if (!(${ok})) { return vec4<f32>(0.0); }
  let i = convX(${pix}, ${tap}, ${ci});
  if (i < 0) { return vec4<f32>(0.0); }
  return A[i / 4];`
    : `var v = vec4<f32>(0.0);
  for (var q = 0; q < 4; q = q + 1) {
    let kq = kk + q;
    if (${ok}) {
      let t = kq / uniforms.cCi;
      let i = convX(${pix}, t, kq - t * uniforms.cCi);
      if (i >= 0) { v[q] = A[i]; }
    }
  }
  return v;`;

/** Conv2D's A: patches(x) [N·Ho·Wo, kh·kw·Ci], contiguous along k. */
const forwardA = (aligned: boolean): GemmOperand => ({
  contiguous: "k",
  components: aligned ? 4 : 1,
  key: `convFwdA${aligned ? "v" : "s"}`,
  code: X_AT + `
fn loadA(z : i32, m : i32, kk : i32) -> vec4<f32> {
  ${
    aligned
      ? xPatchVec(
        true,
        "m",
        "kk / uniforms.cCi",
        "kk - (kk / uniforms.cCi) * uniforms.cCi",
        "m < uniforms.gM && kk < uniforms.gK",
      )
      : xPatchVec(false, "m", "", "", "m < uniforms.gM && kq < uniforms.gK")
  }
}`,
});

/** The filter gradient's A: patches(x)ᵀ [kh·kw·Ci, N·Ho·Wo], contiguous along m (channels). */
const filterGradA = (aligned: boolean): GemmOperand => ({
  contiguous: "m",
  components: aligned ? 4 : 1,
  key: `convFiltA${aligned ? "v" : "s"}`,
  code: X_AT + `
fn loadA(z : i32, mm : i32, k : i32) -> vec4<f32> {
  ${
    aligned
      ? `if (!(mm < uniforms.gM && k < uniforms.gK)) { return vec4<f32>(0.0); }
  let t = mm / uniforms.cCi;
  let i = convX(k, t, mm - t * uniforms.cCi);
  if (i < 0) { return vec4<f32>(0.0); }
  return A[i / 4];`
      : `var v = vec4<f32>(0.0);
  for (var q = 0; q < 4; q = q + 1) {
    let m = mm + q;
    if (m < uniforms.gM && k < uniforms.gK) {
      let t = m / uniforms.cCi;
      let i = convX(k, t, m - t * uniforms.cCi);
      if (i >= 0) { v[q] = A[i]; }
    }
  }
  return v;`
  }
}`,
});

/** dy's element for input pixel `pix` (n, h, w), tap `tap` (fh, fw), channel co; -1 if none. */
const DY_AT = `
fn convDy(pix : i32, tap : i32, co : i32) -> i32 {
  let b = pix / (uniforms.cH * uniforms.cW);
  let r = pix - b * uniforms.cH * uniforms.cW;
  let h = r / uniforms.cW;
  let w = r - h * uniforms.cW;
  let fh = tap / uniforms.cKW;
  let fw = tap - fh * uniforms.cKW;
  let hs = h + uniforms.cPT - fh;
  let ws = w + uniforms.cPL - fw;
  if (hs < 0 || ws < 0) { return -1; }
  let oh = hs / uniforms.cSH;
  let ow = ws / uniforms.cSW;
  if (oh * uniforms.cSH != hs || ow * uniforms.cSW != ws || oh >= uniforms.cHo || ow >= uniforms.cWo) {
    return -1;
  }
  return ((b * uniforms.cHo + oh) * uniforms.cWo + ow) * uniforms.cCo + co;
}`;

/** The input gradient's A: dy-patches [N·H·W, kh·kw·Co], contiguous along k (channels). */
const inputGradA = (aligned: boolean): GemmOperand => ({
  contiguous: "k",
  components: aligned ? 4 : 1,
  key: `convInA${aligned ? "v" : "s"}`,
  code: DY_AT + `
fn loadA(z : i32, m : i32, kk : i32) -> vec4<f32> {
  ${
    aligned
      ? `if (!(m < uniforms.gM && kk < uniforms.gK)) { return vec4<f32>(0.0); }
  let t = kk / uniforms.cCo;
  let i = convDy(m, t, kk - t * uniforms.cCo);
  if (i < 0) { return vec4<f32>(0.0); }
  return A[i / 4];`
      : `var v = vec4<f32>(0.0);
  for (var q = 0; q < 4; q = q + 1) {
    let k = kk + q;
    if (m < uniforms.gM && k < uniforms.gK) {
      let t = k / uniforms.cCo;
      let i = convDy(m, t, k - t * uniforms.cCo);
      if (i >= 0) { v[q] = A[i]; }
    }
  }
  return v;`
  }
}`,
});

/** The input gradient's B: W viewed as [kh·kw·Co, Ci] (W[fh, fw, ci, co]), contiguous along k. */
const inputGradB = (aligned: boolean): GemmOperand => ({
  contiguous: "k",
  components: aligned ? 4 : 1,
  key: `convInB${aligned ? "v" : "s"}`,
  code: `
fn loadB(z : i32, kk : i32, n : i32) -> vec4<f32> {
  ${
    aligned
      ? `if (!(n < uniforms.gN && kk < uniforms.gK)) { return vec4<f32>(0.0); }
  let t = kk / uniforms.cCo;
  return B[((t * uniforms.cCi + n) * uniforms.cCo + kk - t * uniforms.cCo) / 4];`
      : `var v = vec4<f32>(0.0);
  for (var q = 0; q < 4; q = q + 1) {
    let k = kk + q;
    if (n < uniforms.gN && k < uniforms.gK) {
      let t = k / uniforms.cCo;
      v[q] = B[(t * uniforms.cCi + n) * uniforms.cCo + k - t * uniforms.cCo];
    }
  }
  return v;`
  }
}`,
});

/** A plain [rows, N] matrix as the GEMM's B (filter or dy), contiguous along n. */
const plainB = (aligned: boolean) =>
  denseOperand({
    name: "B",
    params: ["k", "n"],
    outer: "k",
    contig: "n",
    outerLen: "uniforms.gK",
    rowLen: "uniforms.gN",
    batchStride: "0",
    contiguous: "n",
    aligned,
    checked: true,
  });

const runConvGemm = (
  backend: WebGpuBackendLike,
  g: ConvGeometry,
  size: { m: number; n: number; k: number },
  a: GemmOperand,
  b: GemmOperand,
  inputs: [tf.TensorInfo, tf.TensorInfo],
  outShape: number[],
  tiling?: Tiling,
): tf.TensorInfo | null => {
  if (!tiling && (size.m < MIN_SIDE || size.n < MIN_SIDE)) return null;
  const out = runGemm(backend, { batch: 1, ...size }, {
    a,
    b,
    inputs,
    uniforms: CONV_UNIFORMS,
    values: convValues(g),
  }, tiling);
  return out && { dataId: out.dataId, shape: outShape, dtype: "float32" };
};

const f32 = (...ts: tf.TensorInfo[]) => ts.every((t) => t.dtype === "float32");

/** Conv2D (NHWC x, HWIO filter) by the GEMM, or null when it does not take the case. */
export const conv2dInfo = (
  backend: WebGpuBackendLike,
  x: tf.TensorInfo,
  filter: tf.TensorInfo,
  attrs: tf.NamedAttrMap,
  tiling?: Tiling,
): tf.TensorInfo | null => {
  const g = f32(x, filter) ? geometry(x.shape, filter.shape, attrs) : null;
  if (!g) return null;
  return runConvGemm(
    backend,
    g,
    { m: g.batch * g.ho * g.wo, n: g.co, k: g.kh * g.kw * g.ci },
    forwardA(g.ci % 4 === 0),
    plainB(g.co % 4 === 0),
    [x, filter],
    [g.batch, g.ho, g.wo, g.co],
    tiling,
  );
};

/** Conv2DBackpropInput by the GEMM (attr `inputShape`), or null when it does not take the case. */
export const conv2dInputGradInfo = (
  backend: WebGpuBackendLike,
  dy: tf.TensorInfo,
  filter: tf.TensorInfo,
  attrs: tf.NamedAttrMap,
  tiling?: Tiling,
): tf.TensorInfo | null => {
  const xShape = attrs.inputShape as number[];
  const g = f32(dy, filter) ? geometry(xShape, filter.shape, attrs) : null;
  if (!g) return null;
  return runConvGemm(
    backend,
    g,
    { m: g.batch * g.h * g.w, n: g.ci, k: g.kh * g.kw * g.co },
    inputGradA(g.co % 4 === 0),
    inputGradB(g.co % 4 === 0),
    [dy, filter],
    [g.batch, g.h, g.w, g.ci],
    tiling,
  );
};

/** Conv2DBackpropFilter by the GEMM (attr `filterShape`), or null when it does not take the case. */
export const conv2dFilterGradInfo = (
  backend: WebGpuBackendLike,
  x: tf.TensorInfo,
  dy: tf.TensorInfo,
  attrs: tf.NamedAttrMap,
  tiling?: Tiling,
): tf.TensorInfo | null => {
  const fShape = attrs.filterShape as number[];
  const g = f32(x, dy) ? geometry(x.shape, fShape, attrs) : null;
  if (!g) return null;
  return runConvGemm(
    backend,
    g,
    { m: g.kh * g.kw * g.ci, n: g.co, k: g.batch * g.ho * g.wo },
    filterGradA(g.ci % 4 === 0),
    plainB(g.co % 4 === 0),
    [x, dy],
    [g.kh, g.kw, g.ci, g.co],
    tiling,
  );
};

const kernel = (
  kernelName: string,
  run: (
    b: WebGpuBackendLike,
    p: tf.TensorInfo,
    q: tf.TensorInfo,
    attrs: tf.NamedAttrMap,
  ) => tf.TensorInfo | null,
  names: [string, string],
  fallback: Fallback,
): WebGpuKernel => ({
  kernelName,
  kernelFunc: (args: KernelArgs) => {
    const out = run(
      webgpuBackend(args),
      args.inputs[names[0]],
      args.inputs[names[1]],
      args.attrs ?? {},
    );
    if (out) return out;
    if (!fallback) throw new Error(`webgpu ${kernelName}: no TF.js kernel to fall back to`);
    return fallback(args);
  },
});

/** The conv kernels; `fallback(name)` gives TF.js's own kernel of that name. */
export const convKernels = (fallback: (name: string) => Fallback): WebGpuKernel[] => [
  kernel("Conv2D", conv2dInfo, ["x", "filter"], fallback("Conv2D")),
  kernel(
    "Conv2DBackpropInput",
    conv2dInputGradInfo,
    ["dy", "filter"],
    fallback("Conv2DBackpropInput"),
  ),
  kernel(
    "Conv2DBackpropFilter",
    conv2dFilterGradInfo,
    ["x", "dy"],
    fallback("Conv2DBackpropFilter"),
  ),
  kernel(
    CONV2D_FILTER_GRAD_KERNEL,
    conv2dFilterGradInfo,
    ["x", "dy"],
    fallback("Conv2DBackpropFilter"),
  ),
];
