/**
 * 2-D convolution kernels for the native backend: `Conv2D`, `FusedConv2D`, `Conv2DBackpropInput`
 * and `Conv2DBackpropFilter` (also under the project's name `MlhfConv2DBackpropFilter`,
 * `lib/kernels.ts`), by oneDNN when it loads (`conv_dnnl.ts`; `MLHF_DNNL=0` turns it off, and
 * {@link setConvEngine} switches per call site for tests and benches), else, and for what it does
 * not take, by im2col / col2im + `cblas_sgemm` (below). Without oneDNN the backend says so once.
 *
 * Layout: NHWC input, HWIO filter; an im2col row is one output pixel, its columns run over the
 * window in row-major (i, j) order and then the input channels, which matches the filter reshaped
 * to [kh·kw·ci, co]. The batch is processed in chunks of images so the column buffer stays near
 * {@link COL_CHUNK_FLOATS} floats. Any stride and any padding TF.js accepts (SAME, VALID, explicit,
 * numeric, rounding modes) are handled through `backend_util.computeConv2DInfo`; NCHW, dilation > 1
 * and non-float32 inputs fall back to the cpu kernels. A 1×1 stride-1 unpadded conv is one GEMM on
 * the input itself.
 * @module
 */
import { tf } from "../../../_deps.ts";
import { CONV2D_FILTER_GRAD_KERNEL } from "../../../kernels.ts";
import type { Blas } from "../blas.ts";
import { onDnnl } from "../dnnl.ts";
import { type ConvPass, type DnnlConv, dnnlConv, dnnlTakesPass } from "./conv_dnnl.ts";
import { dnnlSpatial } from "./dnnl_spatial.ts";
import { epilogue } from "./matmul.ts";
import {
  allFloat32,
  allocF32,
  cpuBackend,
  cpuKernel,
  f32,
  type KernelArgs,
  type NativeKernel,
  scratch,
  sizeOf as sizeOfShape,
  zerosF32,
} from "./_util.ts";

/** Input channels from which a stride-1 input gradient is computed as a flipped-filter conv. */
export const TRANSPOSED_MIN_CHANNELS = 8;

/** Target size of one chunk's im2col buffer, in floats (2 MiB: measured best of 0.5–32 MiB). */
export const COL_CHUNK_FLOATS = 1 << 19;

type Info = tf.backend_util.Conv2DInfo;

/** Conv geometry from a kernel's attributes, or null when the native path does not apply. */
const convInfo = (
  xShape: readonly number[],
  filterShape: readonly number[],
  attrs: tf.NamedAttrMap,
): Info | null => {
  const a = attrs as unknown as {
    strides: number | [number, number];
    pad: "same" | "valid" | number | tf.backend_util.ExplicitPadding;
    dataFormat?: "NHWC" | "NCHW";
    dilations?: number | [number, number];
    dimRoundingMode?: "floor" | "round" | "ceil";
  };
  if ((a.dataFormat ?? "NHWC") !== "NHWC") return null;
  const info = tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    a.strides,
    a.dilations ?? 1,
    a.pad,
    a.dimRoundingMode,
    false,
    "channelsLast",
  );
  return info.dilationHeight === 1 && info.dilationWidth === 1 ? info : null;
};

/** True when the im2col matrix of this conv is the input itself (1×1, stride 1, no padding). */
const isPointwise = (g: Info): boolean =>
  g.filterHeight === 1 && g.filterWidth === 1 && g.strideHeight === 1 && g.strideWidth === 1 &&
  g.padInfo.top === 0 && g.padInfo.left === 0 && g.outHeight === g.inHeight &&
  g.outWidth === g.inWidth;

/** Images per chunk so that a chunk's im2col buffer is about COL_CHUNK_FLOATS floats. */
const imagesPerChunk = (g: Info): number => {
  const perImage = g.outHeight * g.outWidth * g.filterHeight * g.filterWidth * g.inChannels;
  return Math.max(1, Math.min(g.batchSize, Math.floor(COL_CHUNK_FLOATS / Math.max(perImage, 1))));
};

/** Writes the im2col rows of images [b0, b0 + nb) of x into col ([nb·oh·ow, kh·kw·ci]). */
export const im2col = (x: Float32Array, g: Info, b0: number, nb: number, col: Float32Array) => {
  const { inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = g;
  const { filterHeight: KH, filterWidth: KW, strideHeight: SH, strideWidth: SW } = g;
  const top = g.padInfo.top, left = g.padInfo.left;
  const rowLen = KW * C, K = KH * rowLen;
  let r = 0;
  for (let b = b0; b < b0 + nb; b++) {
    const xb = b * H * W * C;
    for (let p = 0; p < OH; p++) {
      const ih0 = p * SH - top;
      for (let q = 0; q < OW; q++, r++) {
        const iw0 = q * SW - left;
        const jLo = Math.max(0, -iw0), jHi = Math.min(KW, W - iw0);
        const len = (jHi - jLo) * C;
        const rowOff = r * K;
        for (let i = 0; i < KH; i++) {
          const ih = ih0 + i;
          const dst = rowOff + i * rowLen;
          if (ih < 0 || ih >= H || len <= 0) {
            col.fill(0, dst, dst + rowLen);
            continue;
          }
          if (jLo > 0) col.fill(0, dst, dst + jLo * C);
          const src = xb + (ih * W + iw0 + jLo) * C;
          const d0 = dst + jLo * C;
          if (len < 64) { for (let t = 0; t < len; t++) col[d0 + t] = x[src + t]; }
          else col.set(x.subarray(src, src + len), d0);
          if (jHi < KW) col.fill(0, dst + jHi * C, dst + rowLen);
        }
      }
    }
  }
};

/** Adds the im2col-shaped rows of col back onto images [b0, b0 + nb) of dx (col2im). */
export const col2imAdd = (col: Float32Array, g: Info, b0: number, nb: number, dx: Float32Array) => {
  const { inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = g;
  const { filterHeight: KH, filterWidth: KW, strideHeight: SH, strideWidth: SW } = g;
  const top = g.padInfo.top, left = g.padInfo.left;
  const rowLen = KW * C, K = KH * rowLen;
  let r = 0;
  for (let b = b0; b < b0 + nb; b++) {
    const xb = b * H * W * C;
    for (let p = 0; p < OH; p++) {
      const ih0 = p * SH - top;
      for (let q = 0; q < OW; q++, r++) {
        const iw0 = q * SW - left;
        const jLo = Math.max(0, -iw0), jHi = Math.min(KW, W - iw0);
        const len = (jHi - jLo) * C;
        if (len <= 0) continue;
        const rowOff = r * K;
        for (let i = 0; i < KH; i++) {
          const ih = ih0 + i;
          if (ih < 0 || ih >= H) continue;
          const s0 = rowOff + i * rowLen + jLo * C;
          const d0 = xb + (ih * W + iw0 + jLo) * C;
          for (let t = 0; t < len; t++) dx[d0 + t] += col[s0 + t];
        }
      }
    }
  }
};

/** y = conv2d(x, w) into a fresh array of shape g.outShape. */
export const conv2dForward = (blas: Blas, x: Float32Array, w: Float32Array, g: Info) => {
  const K = g.filterHeight * g.filterWidth * g.inChannels, CO = g.outChannels;
  const rowsPerImage = g.outHeight * g.outWidth;
  const n = g.batchSize * rowsPerImage * CO;
  if (n === 0 || K === 0) return zerosF32(n);
  const y = allocF32(n);
  if (isPointwise(g)) {
    blas.sgemm(false, false, g.batchSize * rowsPerImage, CO, K, 1, x, K, w, CO, 0, y, CO);
    return y;
  }
  const chunk = imagesPerChunk(g);
  for (let b0 = 0; b0 < g.batchSize; b0 += chunk) {
    const nb = Math.min(chunk, g.batchSize - b0);
    const rows = nb * rowsPerImage;
    const col = scratch(rows * K);
    im2col(x, g, b0, nb, col);
    blas.sgemm(
      false,
      false,
      rows,
      CO,
      K,
      1,
      col,
      K,
      w,
      CO,
      0,
      y.subarray(b0 * rowsPerImage * CO),
      CO,
    );
  }
  return y;
};

/**
 * The geometry of dx = conv2d(dy, flip(w)ᵀ) for a stride-1 conv: the input gradient as a forward
 * convolution of dy (pads k−1−pad) with the filter rotated 180° and its channels swapped.
 */
const transposedGeometry = (g: Info): Info => ({
  ...g,
  inHeight: g.outHeight,
  inWidth: g.outWidth,
  inChannels: g.outChannels,
  outHeight: g.inHeight,
  outWidth: g.inWidth,
  outChannels: g.inChannels,
  padInfo: {
    ...g.padInfo,
    top: g.filterHeight - 1 - g.padInfo.top,
    left: g.filterWidth - 1 - g.padInfo.left,
  },
  inShape: [g.batchSize, g.outHeight, g.outWidth, g.outChannels],
  outShape: [g.batchSize, g.inHeight, g.inWidth, g.inChannels],
  filterShape: [g.filterHeight, g.filterWidth, g.outChannels, g.inChannels],
});

/** w[kh, kw, ci, co] → w'[kh, kw, co, ci] rotated 180° in (kh, kw). */
const flipSwap = (w: Float32Array, g: Info): Float32Array => {
  const { filterHeight: KH, filterWidth: KW, inChannels: C, outChannels: CO } = g;
  const out = new Float32Array(w.length);
  for (let i = 0; i < KH; i++) {
    for (let j = 0; j < KW; j++) {
      const src = (i * KW + j) * C * CO, dst = ((KH - 1 - i) * KW + (KW - 1 - j)) * CO * C;
      for (let c = 0; c < C; c++) {
        for (let o = 0; o < CO; o++) out[dst + o * C + c] = w[src + c * CO + o];
      }
    }
  }
  return out;
};

/**
 * dx = conv2dBackpropInput(dy, w) into a fresh array of shape g.inShape. Stride 1 with enough input
 * channels: a forward conv of dy with the flipped filter (im2col copies, measured faster than
 * col2im's scattered adds); otherwise GEMM into columns, then col2im.
 */
export const conv2dBackpropInput = (blas: Blas, dy: Float32Array, w: Float32Array, g: Info) => {
  const K = g.filterHeight * g.filterWidth * g.inChannels, CO = g.outChannels;
  const rowsPerImage = g.outHeight * g.outWidth;
  const n = g.batchSize * g.inHeight * g.inWidth * g.inChannels;
  if (n === 0 || CO === 0 || rowsPerImage === 0) return zerosF32(n);
  if (isPointwise(g)) {
    const dx = allocF32(n);
    blas.sgemm(false, true, g.batchSize * rowsPerImage, K, CO, 1, dy, CO, w, CO, 0, dx, K);
    return dx;
  }
  const t = transposedGeometry(g);
  if (
    g.strideHeight === 1 && g.strideWidth === 1 && g.inChannels >= TRANSPOSED_MIN_CHANNELS &&
    t.padInfo.top >= 0 && t.padInfo.left >= 0
  ) {
    return conv2dForward(blas, dy, flipSwap(w, g), t);
  }
  const dx = zerosF32(n);
  const chunk = imagesPerChunk(g);
  for (let b0 = 0; b0 < g.batchSize; b0 += chunk) {
    const nb = Math.min(chunk, g.batchSize - b0);
    const rows = nb * rowsPerImage;
    const col = scratch(rows * K);
    const dyChunk = dy.subarray(b0 * rowsPerImage * CO);
    blas.sgemm(false, true, rows, K, CO, 1, dyChunk, CO, w, CO, 0, col, K);
    col2imAdd(col, g, b0, nb, dx);
  }
  return dx;
};

/** dW = conv2dBackpropFilter(x, dy) into a fresh array of shape g.filterShape. */
export const conv2dBackpropFilter = (blas: Blas, x: Float32Array, dy: Float32Array, g: Info) => {
  const K = g.filterHeight * g.filterWidth * g.inChannels, CO = g.outChannels;
  const rowsPerImage = g.outHeight * g.outWidth;
  if (K * CO === 0 || rowsPerImage === 0 || g.batchSize === 0) return zerosF32(K * CO);
  const dw = allocF32(K * CO);
  if (isPointwise(g)) {
    blas.sgemm(true, false, K, CO, g.batchSize * rowsPerImage, 1, x, K, dy, CO, 0, dw, CO);
    return dw;
  }
  const chunk = imagesPerChunk(g);
  for (let b0 = 0; b0 < g.batchSize; b0 += chunk) {
    const nb = Math.min(chunk, g.batchSize - b0);
    const rows = nb * rowsPerImage;
    const col = scratch(rows * K);
    im2col(x, g, b0, nb, col);
    const dyChunk = dy.subarray(b0 * rowsPerImage * CO);
    blas.sgemm(true, false, K, CO, rows, 1, col, K, dyChunk, CO, b0 === 0 ? 0 : 1, dw, CO);
  }
  return dw;
};

/** Which implementation the conv kernels use: oneDNN (when loaded) or im2col + sgemm. */
export type ConvEngine = "onednn" | "im2col";

let wanted: ConvEngine = "onednn";

/** oneDNN's convolutions, made on first use; null (said once, on stderr) when unavailable. */
const onednn = onDnnl(dnnlConv, "convolutions by im2col + sgemm");

/** The engine the conv kernels use now ("onednn" only when it loaded). */
export const convEngine = (): ConvEngine => wanted === "onednn" && onednn() ? "onednn" : "im2col";

/**
 * Selects the conv kernels' engine (default "onednn"; without oneDNN every call uses im2col) and
 * returns the previous choice. For tests and benches that compare the two in one process.
 */
export const setConvEngine = (e: ConvEngine): ConvEngine => {
  const prev = wanted;
  wanted = e;
  return prev;
};

/**
 * The oneDNN implementation a conv pass takes at geometry `g` (e.g. "brgconv:avx512_core"), or null
 * when oneDNN is not loaded or does not take the case (then the kernels use im2col).
 */
export const onednnImpl = (pass: ConvPass, g: Info): string | null =>
  dnnlSpatial(g) && dnnlTakesPass(pass, g) ? onednn()?.impl(pass, g) ?? null : null;

/** oneDNN's convolutions when they are selected and loaded, else null. */
const active = (): DnnlConv | null => wanted === "onednn" ? onednn() : null;

/** y = conv2d(x, w): oneDNN when active and it takes the case, else im2col. */
const forwardAny = (blas: Blas, x: Float32Array, w: Float32Array, g: Info) => {
  const d = active();
  if (d && dnnlSpatial(g)) {
    const y = allocF32(sizeOfShape(g.outShape));
    if (d.forward(x, w, g, y)) return y;
  }
  return conv2dForward(blas, x, w, g);
};

/** dx = conv2dBackpropInput(dy, w): oneDNN when active and it takes the case, else im2col. */
const backpropInputAny = (blas: Blas, dy: Float32Array, w: Float32Array, g: Info) => {
  const d = active();
  if (d && dnnlSpatial(g)) {
    const dx = allocF32(sizeOfShape(g.inShape));
    if (d.backwardData(dy, w, g, dx)) return dx;
  }
  return conv2dBackpropInput(blas, dy, w, g);
};

/** dW = conv2dBackpropFilter(x, dy): oneDNN when active and it takes the case, else im2col. */
const backpropFilterAny = (blas: Blas, x: Float32Array, dy: Float32Array, g: Info) => {
  const d = active();
  if (d && dnnlSpatial(g)) {
    const dw = allocF32(sizeOfShape(g.filterShape));
    if (dnnlTakesPass("backwardWeights", g)) {
      if (d.backwardWeights(x, dy, g, dw)) return dw;
    } else if (isStridedPointwise(g)) {
      const sub = subsampleGeometry(g);
      if (d.backwardWeights(subsample(x, g), dy, sub, dw)) return dw;
    }
  }
  return conv2dBackpropFilter(blas, x, dy, g);
};

/** A 1×1 conv with a stride above 1 and no padding (a ResNet projection shortcut). */
const isStridedPointwise = (g: Info): boolean =>
  g.filterHeight === 1 && g.filterWidth === 1 && (g.strideHeight > 1 || g.strideWidth > 1) &&
  g.padInfo.top === 0 && g.padInfo.left === 0 && g.padInfo.bottom === 0 && g.padInfo.right === 0;

/** The stride-1 1×1 geometry on the subsampled input of a strided pointwise conv `g`. */
const subsampleGeometry = (g: Info): Info =>
  tf.backend_util.computeConv2DInfo(
    [g.batchSize, g.outHeight, g.outWidth, g.inChannels],
    [1, 1, g.inChannels, g.outChannels],
    1,
    1,
    "valid",
    undefined,
    false,
    "channelsLast",
  );

/**
 * x[:, ::sh, ::sw, :] for a strided pointwise conv (the pixels its filter sees), into the scratch
 * floats: the filter gradient of a strided 1×1 conv is that of a stride-1 one on them, which oneDNN
 * takes without the strided pass it must not be given (`dnnlTakesPass`), on its OpenMP threads (by
 * im2col, OpenBLAS's threads and OpenMP's contended for the two cores: 3–380 ms for 4×56×56×64 →
 * 128 on a loaded machine, against ≈3 ms on one BLAS thread).
 */
const subsample = (x: Float32Array, g: Info): Float32Array => {
  const { inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = g;
  const out = scratch(g.batchSize * OH * OW * C);
  let o = 0;
  for (let b = 0; b < g.batchSize; b++) {
    for (let p = 0; p < OH; p++) {
      for (let q = 0; q < OW; q++, o += C) {
        const s = ((b * H + p * g.strideHeight) * W + q * g.strideWidth) * C;
        for (let c = 0; c < C; c++) out[o + c] = x[s + c];
      }
    }
  }
  return out;
};

/** The convolution kernels, given the BLAS. */
export const convKernels = (blas: Blas): NativeKernel[] => {
  onednn();
  const cpuConv = cpuKernel("Conv2D");
  const cpuFused = cpuKernel("FusedConv2D");
  const cpuInput = cpuKernel("Conv2DBackpropInput");
  const cpuFilter = cpuKernel("Conv2DBackpropFilter");
  const forward = (args: KernelArgs): tf.TensorInfo | null => {
    const { x, filter } = args.inputs;
    if (!allFloat32(x, filter)) return null;
    const g = convInfo(x.shape, filter.shape, args.attrs ?? {});
    if (!g) return null;
    const backend = cpuBackend(args);
    const y = forwardAny(blas, f32(backend, x), f32(backend, filter), g);
    return backend.makeTensorInfo([...g.outShape], "float32", y);
  };
  // The stock Conv2DBackpropFilter and the project's (the same function, `lib/kernels.ts`).
  const filterGrad = (args: KernelArgs): tf.TensorInfo => {
    const { x, dy } = args.inputs;
    const attrs = args.attrs ?? {};
    const filterShape = attrs.filterShape as number[];
    const g = allFloat32(x, dy) ? convInfo(x.shape, filterShape, attrs) : null;
    if (!g) return cpuFilter(args) as tf.TensorInfo;
    const backend = cpuBackend(args);
    const dw = backpropFilterAny(blas, f32(backend, x), f32(backend, dy), g);
    return backend.makeTensorInfo([...g.filterShape], "float32", dw);
  };
  return [
    { kernelName: "Conv2D", kernelFunc: (args) => forward(args) ?? cpuConv(args) },
    {
      kernelName: "FusedConv2D",
      kernelFunc: (args) => {
        const { bias, preluActivationWeights } = args.inputs as Partial<KernelArgs["inputs"]>;
        const y = forward(args);
        if (!y) return cpuFused(args);
        const at = args.attrs as { activation?: string; leakyreluAlpha?: number };
        return epilogue(
          cpuBackend(args),
          y,
          bias,
          at.activation,
          preluActivationWeights,
          at.leakyreluAlpha,
        );
      },
    },
    {
      kernelName: "Conv2DBackpropInput",
      kernelFunc: (args) => {
        const { dy, filter } = args.inputs;
        const attrs = args.attrs ?? {};
        const inputShape = attrs.inputShape as number[];
        const g = allFloat32(dy, filter) ? convInfo(inputShape, filter.shape, attrs) : null;
        if (!g) return cpuInput(args);
        const backend = cpuBackend(args);
        const dx = backpropInputAny(blas, f32(backend, dy), f32(backend, filter), g);
        return backend.makeTensorInfo([...g.inShape], "float32", dx);
      },
    },
    { kernelName: "Conv2DBackpropFilter", kernelFunc: filterGrad },
    { kernelName: CONV2D_FILTER_GRAD_KERNEL, kernelFunc: filterGrad },
  ];
};
