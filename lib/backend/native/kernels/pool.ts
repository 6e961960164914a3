/**
 * Pooling kernels for the native backend in plain JS loops over NHWC data, channels innermost:
 * `MaxPool`, `MaxPoolGrad`, `AvgPool`, `AvgPoolGrad`.
 *
 * - MaxPool ignores NaN like the cpu kernel (a window of NaN gives −∞).
 * - MaxPoolGrad sends each cotangent to the FIRST maximum of its window in row-major window order
 *   (spec §9 item 14), also when every value is negative; a window with no value above −∞ sends it to
 *   its first element.
 * - AvgPool divides by the number of in-bounds elements (TF and the cpu kernel); AvgPoolGrad is its
 *   exact adjoint, so it divides by the same count. (The stock cpu AvgPoolGrad divides by the full
 *   window size, which differs from the gradient of its own forward at SAME-padded borders.)
 * Geometry comes from `backend_util.computePool2DInfo` (any stride, SAME/VALID/explicit padding).
 * Non-float32 inputs fall back to the cpu kernels.
 * @module
 */
import { tf } from "../../../_deps.ts";
import {
  allFloat32,
  cpuBackend,
  cpuKernel,
  f32,
  type KernelArgs,
  type NativeKernel,
} from "./_util.ts";

type Info = tf.backend_util.Conv2DInfo;

const poolInfo = (xShape: readonly number[], attrs: tf.NamedAttrMap | undefined): Info => {
  const a = (attrs ?? {}) as unknown as {
    filterSize: number | [number, number];
    strides: number | [number, number];
    pad: "same" | "valid" | number | tf.backend_util.ExplicitPadding;
    dimRoundingMode?: "floor" | "round" | "ceil";
  };
  return tf.backend_util.computePool2DInfo(
    xShape as [number, number, number, number],
    a.filterSize,
    a.strides,
    1,
    a.pad,
    a.dimRoundingMode,
  );
};

/**
 * Visits every output pixel: `fn(o, lo/hi input rows, lo/hi input cols, b)` with `o` the offset of
 * the output pixel's channel vector. Window bounds are clipped to the input.
 */
const forEachWindow = (
  g: Info,
  fn: (o: number, b: number, h0: number, h1: number, w0: number, w1: number) => void,
) => {
  const { inHeight: H, inWidth: W, outHeight: OH, outWidth: OW, inChannels: C } = g;
  const top = g.padInfo.top, left = g.padInfo.left;
  let o = 0;
  for (let b = 0; b < g.batchSize; b++) {
    for (let p = 0; p < OH; p++) {
      const r = p * g.strideHeight - top;
      const h0 = Math.max(0, r), h1 = Math.min(H, r + g.filterHeight);
      for (let q = 0; q < OW; q++, o += C) {
        const c = q * g.strideWidth - left;
        fn(o, b, h0, h1, Math.max(0, c), Math.min(W, c + g.filterWidth));
      }
    }
  }
};

/** Max pooling forward values. */
export const maxPoolValues = (x: Float32Array, g: Info): Float32Array => {
  const { inHeight: H, inWidth: W, inChannels: C } = g;
  const y = new Float32Array(g.batchSize * g.outHeight * g.outWidth * C).fill(-Infinity);
  forEachWindow(g, (o, b, h0, h1, w0, w1) => {
    for (let ih = h0; ih < h1; ih++) {
      for (let iw = w0; iw < w1; iw++) {
        const s = ((b * H + ih) * W + iw) * C;
        for (let c = 0; c < C; c++) {
          const v = x[s + c];
          if (v > y[o + c]) y[o + c] = v;
        }
      }
    }
  });
  return y;
};

/** Max pooling gradient: dy routed to the first maximum of each window. */
export const maxPoolGradValues = (dy: Float32Array, x: Float32Array, g: Info): Float32Array => {
  const { inHeight: H, inWidth: W, inChannels: C } = g;
  const dx = new Float32Array(g.batchSize * H * W * C);
  const best = new Float32Array(C);
  const pos = new Int32Array(C);
  forEachWindow(g, (o, b, h0, h1, w0, w1) => {
    if (h0 >= h1 || w0 >= w1) return;
    best.fill(-Infinity);
    pos.fill(((b * H + h0) * W + w0) * C);
    for (let c = 0; c < C; c++) pos[c] += c;
    for (let ih = h0; ih < h1; ih++) {
      for (let iw = w0; iw < w1; iw++) {
        const s = ((b * H + ih) * W + iw) * C;
        for (let c = 0; c < C; c++) {
          const v = x[s + c];
          if (v > best[c]) {
            best[c] = v;
            pos[c] = s + c;
          }
        }
      }
    }
    for (let c = 0; c < C; c++) dx[pos[c]] += dy[o + c];
  });
  return dx;
};

/** Average pooling forward values (mean over the in-bounds part of each window). */
export const avgPoolValues = (x: Float32Array, g: Info): Float32Array => {
  const { inHeight: H, inWidth: W, inChannels: C } = g;
  const y = new Float32Array(g.batchSize * g.outHeight * g.outWidth * C);
  forEachWindow(g, (o, b, h0, h1, w0, w1) => {
    const count = (h1 - h0) * (w1 - w0);
    for (let ih = h0; ih < h1; ih++) {
      for (let iw = w0; iw < w1; iw++) {
        const s = ((b * H + ih) * W + iw) * C;
        for (let c = 0; c < C; c++) y[o + c] += x[s + c];
      }
    }
    const inv = count > 0 ? 1 / count : NaN;
    for (let c = 0; c < C; c++) y[o + c] = count > 0 ? y[o + c] * inv : NaN;
  });
  return y;
};

/** Average pooling gradient: the adjoint of {@link avgPoolValues}. */
export const avgPoolGradValues = (dy: Float32Array, g: Info): Float32Array => {
  const { inHeight: H, inWidth: W, inChannels: C } = g;
  const dx = new Float32Array(g.batchSize * H * W * C);
  forEachWindow(g, (o, b, h0, h1, w0, w1) => {
    const count = (h1 - h0) * (w1 - w0);
    if (count === 0) return;
    const inv = 1 / count;
    for (let ih = h0; ih < h1; ih++) {
      for (let iw = w0; iw < w1; iw++) {
        const s = ((b * H + ih) * W + iw) * C;
        for (let c = 0; c < C; c++) dx[s + c] += dy[o + c] * inv;
      }
    }
  });
  return dx;
};

/** The pooling kernels. */
export const poolKernels = (): NativeKernel[] => {
  const fallback = {
    MaxPool: cpuKernel("MaxPool"),
    MaxPoolGrad: cpuKernel("MaxPoolGrad"),
    AvgPool: cpuKernel("AvgPool"),
    AvgPoolGrad: cpuKernel("AvgPoolGrad"),
  };
  const forward = (name: "MaxPool" | "AvgPool", values: typeof maxPoolValues) => ({
    kernelName: name,
    kernelFunc: (args: KernelArgs) => {
      const { x } = args.inputs;
      if (!allFloat32(x)) return fallback[name](args);
      const backend = cpuBackend(args);
      const g = poolInfo(x.shape, args.attrs);
      return backend.makeTensorInfo([...g.outShape], "float32", values(f32(backend, x), g));
    },
  });
  return [
    forward("MaxPool", maxPoolValues),
    forward("AvgPool", avgPoolValues),
    {
      kernelName: "MaxPoolGrad",
      kernelFunc: (args) => {
        const { dy, input } = args.inputs;
        if (!allFloat32(dy, input)) return fallback.MaxPoolGrad(args);
        const backend = cpuBackend(args);
        const g = poolInfo(input.shape, args.attrs);
        const dx = maxPoolGradValues(f32(backend, dy), f32(backend, input), g);
        return backend.makeTensorInfo([...input.shape], "float32", dx);
      },
    },
    {
      kernelName: "AvgPoolGrad",
      kernelFunc: (args) => {
        const { dy, input } = args.inputs;
        if (!allFloat32(dy)) return fallback.AvgPoolGrad(args);
        const backend = cpuBackend(args);
        const g = poolInfo(input.shape, args.attrs);
        const dx = avgPoolGradValues(f32(backend, dy), g);
        return backend.makeTensorInfo([...input.shape], "float32", dx);
      },
    },
  ];
};
