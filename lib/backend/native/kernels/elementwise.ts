/**
 * Tight-loop float32 kernels for the element-wise ops and the reduction that dominate a conv-net
 * training step on the native backend once the GEMMs are fast (profiled: the bias add and its
 * gradient, the relu and its gradient): `Add`, `Sub`, `Multiply` (same shapes, or one operand
 * broadcast along trailing axes such as a bias), `Relu`, `Step`, and `Sum` and `Mean` over one contiguous
 * block of axes (the bias gradient sums the leading axes, which the cpu kernel does by a transpose),
 * and `ArgMax` along any axis and `Equal` against a scalar (max-pool masks take the arg-max over
 * stacked patches and compare it with each window index).
 * Every other case falls back to the cpu kernel. Sums accumulate in float64 like the cpu kernel.
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
  sizeOf,
} from "./_util.ts";

const sameShape = (a: readonly number[], b: readonly number[]) =>
  a.length === b.length && a.every((d, i) => d === b[i]);

/** True when `small`, without leading 1s, is a suffix of `full` (a trailing-axes broadcast). */
const trailing = (small: readonly number[], full: readonly number[]): boolean => {
  let s = 0;
  while (s < small.length && small[s] === 1) s++;
  const rest = small.slice(s);
  if (rest.length > full.length || small.length > full.length) return false;
  return sameShape(rest, full.slice(full.length - rest.length));
};

type BinOp = "Add" | "Sub" | "Multiply";

const binaryValues = (
  op: BinOp,
  av: Float32Array,
  bv: Float32Array,
  bBroadcast: boolean,
  n: number,
): Float32Array => {
  const out = new Float32Array(n);
  const m = bBroadcast ? bv.length : av.length; // length of the repeated (small) operand
  const big = bBroadcast ? av : bv, small = bBroadcast ? bv : av;
  if (m === 1) { // a scalar operand: one flat loop
    const s = small[0];
    if (op === "Add") { for (let i = 0; i < n; i++) out[i] = big[i] + s; }
    else if (op === "Multiply") { for (let i = 0; i < n; i++) out[i] = big[i] * s; }
    else if (bBroadcast) { for (let i = 0; i < n; i++) out[i] = big[i] - s; }
    else for (let i = 0; i < n; i++) out[i] = s - big[i];
    return out;
  }
  for (let i = 0; i < n; i += m) {
    if (op === "Add") { for (let j = 0; j < m; j++) out[i + j] = big[i + j] + small[j]; }
    else if (op === "Multiply") { for (let j = 0; j < m; j++) out[i + j] = big[i + j] * small[j]; }
    else if (bBroadcast) { for (let j = 0; j < m; j++) out[i + j] = big[i + j] - small[j]; }
    else for (let j = 0; j < m; j++) out[i + j] = small[j] - big[i + j];
  }
  return out;
};

const binaryKernel = (op: BinOp): NativeKernel => {
  const fallback = cpuKernel(op);
  return {
    kernelName: op,
    kernelFunc: (args: KernelArgs) => {
      const { a, b } = args.inputs;
      if (!allFloat32(a, b)) return fallback(args);
      const outShape = tf.broadcast_util.assertAndGetBroadcastShape(a.shape, b.shape);
      const n = sizeOf(outShape);
      let bBroadcast: boolean;
      if (sameShape(a.shape, outShape) && trailing(b.shape, outShape)) bBroadcast = true;
      else if (sameShape(b.shape, outShape) && trailing(a.shape, outShape)) bBroadcast = false;
      else return fallback(args);
      const backend = cpuBackend(args);
      const av = f32(backend, a), bv = f32(backend, b);
      if (n === 0 || (bBroadcast ? bv.length : av.length) === 0) {
        return backend.makeTensorInfo(outShape, "float32", new Float32Array(n));
      }
      return backend.makeTensorInfo(outShape, "float32", binaryValues(op, av, bv, bBroadcast, n));
    },
  };
};

const unaryKernel = (
  name: "Relu" | "Step",
  fill: (x: Float32Array, out: Float32Array, attrs: tf.NamedAttrMap) => void,
): NativeKernel => {
  const fallback = cpuKernel(name);
  return {
    kernelName: name,
    kernelFunc: (args: KernelArgs) => {
      const { x } = args.inputs;
      if (!allFloat32(x)) return fallback(args);
      const backend = cpuBackend(args);
      const xv = f32(backend, x);
      const out = new Float32Array(xv.length);
      fill(xv, out, args.attrs ?? {});
      return backend.makeTensorInfo([...x.shape], "float32", out);
    },
  };
};

/** Sum over a contiguous block of axes as [outer, reduce, inner], float64 accumulation. */
export const sumValues = (
  xv: Float32Array,
  outer: number,
  red: number,
  inner: number,
): Float32Array => {
  const out = new Float32Array(outer * inner);
  if (inner === 1) {
    for (let o = 0; o < outer; o++) {
      let s = 0;
      const base = o * red;
      for (let r = 0; r < red; r++) s += xv[base + r];
      out[o] = s;
    }
    return out;
  }
  const acc = new Float64Array(inner);
  for (let o = 0; o < outer; o++) {
    acc.fill(0);
    for (let r = 0; r < red; r++) {
      const base = (o * red + r) * inner;
      for (let i = 0; i < inner; i++) acc[i] += xv[base + i];
    }
    for (let i = 0; i < inner; i++) out[o * inner + i] = acc[i];
  }
  return out;
};

/** `Sum` (scale 1) or `Mean` (scale 1/n) over one contiguous block of axes; else the cpu kernel. */
const reduceKernel = (name: "Sum" | "Mean"): NativeKernel => {
  const fallback = cpuKernel(name);
  return {
    kernelName: name,
    kernelFunc: (args: KernelArgs) => {
      const { x } = args.inputs;
      if (!allFloat32(x)) return fallback(args);
      const at = (args.attrs ?? {}) as { axis?: number | number[]; keepDims?: boolean };
      const axes = [...tf.util.parseAxisParam(at.axis ?? [], x.shape)].sort((p, q) => p - q);
      if (axes.length === 0) return fallback(args);
      const lo = axes[0], hi = axes[axes.length - 1];
      if (hi - lo + 1 !== axes.length) return fallback(args); // not one contiguous block
      const outer = sizeOf(x.shape.slice(0, lo));
      const red = sizeOf(x.shape.slice(lo, hi + 1));
      const inner = sizeOf(x.shape.slice(hi + 1));
      const outShape = at.keepDims
        ? x.shape.map((d, i) => (i >= lo && i <= hi ? 1 : d))
        : x.shape.filter((_, i) => i < lo || i > hi);
      const backend = cpuBackend(args);
      const out = sumValues(f32(backend, x), outer, red, inner);
      if (name === "Mean") { for (let i = 0; i < out.length; i++) out[i] /= red; }
      return backend.makeTensorInfo(outShape, "float32", out);
    },
  };
};

/** First index of the maximum along the middle axis of [outer, red, inner] (like the cpu kernel). */
export const argMaxValues = (
  xv: Float32Array,
  outer: number,
  red: number,
  inner: number,
): Int32Array => {
  const out = new Int32Array(outer * inner);
  const best = new Float32Array(inner);
  for (let o = 0; o < outer; o++) {
    const base0 = o * red * inner;
    for (let i = 0; i < inner; i++) best[i] = xv[base0 + i];
    for (let r = 1; r < red; r++) {
      const base = base0 + r * inner;
      for (let i = 0; i < inner; i++) {
        const v = xv[base + i];
        if (v > best[i]) {
          best[i] = v;
          out[o * inner + i] = r;
        }
      }
    }
  }
  return out;
};

const argMaxKernel = (): NativeKernel => {
  const fallback = cpuKernel("ArgMax");
  return {
    kernelName: "ArgMax",
    kernelFunc: (args: KernelArgs) => {
      const { x } = args.inputs;
      if (!allFloat32(x) || sizeOf(x.shape) === 0) return fallback(args);
      const at = (args.attrs ?? {}) as { axis?: number | number[] };
      const axis = tf.util.parseAxisParam(at.axis ?? 0, x.shape)[0];
      const outer = sizeOf(x.shape.slice(0, axis)), inner = sizeOf(x.shape.slice(axis + 1));
      const backend = cpuBackend(args);
      const out = argMaxValues(f32(backend, x), outer, x.shape[axis], inner);
      const outShape = x.shape.filter((_, i) => i !== axis);
      return backend.makeTensorInfo(outShape, "int32", out as unknown as Float32Array);
    },
  };
};

/** `Equal` of numeric tensors of the same shape or with a scalar (max-pool masks compare indices). */
const equalKernel = (): NativeKernel => {
  const fallback = cpuKernel("Equal");
  return {
    kernelName: "Equal",
    kernelFunc: (args: KernelArgs) => {
      const { a, b } = args.inputs;
      const backend = cpuBackend(args);
      const av = backend.data.get(a.dataId).values, bv = backend.data.get(b.dataId).values;
      const numeric = (v: unknown): v is Float32Array | Int32Array | Uint8Array =>
        v instanceof Float32Array || v instanceof Int32Array || v instanceof Uint8Array;
      if (a.dtype === "string" || b.dtype === "string" || !numeric(av) || !numeric(bv)) {
        return fallback(args);
      }
      const outShape = tf.broadcast_util.assertAndGetBroadcastShape(a.shape, b.shape);
      const n = sizeOf(outShape);
      const out = new Uint8Array(n);
      if (sameShape(a.shape, b.shape)) {
        for (let i = 0; i < n; i++) {
          out[i] = av[i] === bv[i] ? 1 : 0;
        }
      } else if (bv.length === 1 && sameShape(a.shape, outShape)) {
        const s = bv[0];
        for (let i = 0; i < n; i++) out[i] = av[i] === s ? 1 : 0;
      } else if (av.length === 1 && sameShape(b.shape, outShape)) {
        const s = av[0];
        for (let i = 0; i < n; i++) out[i] = bv[i] === s ? 1 : 0;
      } else return fallback(args);
      return backend.makeTensorInfo(outShape, "bool", out as unknown as Float32Array);
    },
  };
};

/** The element-wise and reduction kernels. */
export const elementwiseKernels = (): NativeKernel[] => [
  binaryKernel("Add"),
  binaryKernel("Sub"),
  binaryKernel("Multiply"),
  unaryKernel("Relu", (x, out) => {
    for (let i = 0; i < x.length; i++) out[i] = Math.max(0, x[i]);
  }),
  unaryKernel("Step", (x, out, attrs) => {
    const alpha = (attrs.alpha as number | undefined) ?? 0;
    for (let i = 0; i < x.length; i++) {
      const v = x[i];
      out[i] = v > 0 ? 1 : v !== v ? NaN : alpha;
    }
  }),
  reduceKernel("Sum"),
  reduceKernel("Mean"),
  argMaxKernel(),
  equalKernel(),
];
