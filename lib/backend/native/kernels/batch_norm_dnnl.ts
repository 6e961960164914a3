/**
 * Train-mode batch norm by oneDNN (`../dnnl.ts`) on the tensors' own arrays: the forward pass (y,
 * batch mean, biased batch variance) and the backward pass (dx, dγ, dβ), channels last as TF.js
 * lays them out, on oneDNN's OpenMP threads with its vectorized kernels (`bnorm_jit:avx512_core`
 * on this machine, where the JS loops of `batch_norm.ts` ran on one thread: 167 ms of a 420 ms
 * ResNet-20 step at batch 128).
 *
 * x of shape [N, H, W, C] is described as oneDNN's N, C, H, W in the NHWC layout; any other rank as
 * [rows, C, 1, 1] (the same memory: every axis but the last is a row). γ, β, the mean and the
 * variance are plain [C] vectors. The backward pass is oneDNN's with the statistics as constants
 * (dx = γs·(dy − Σdy/N − x̂·Σdy·x̂/N), dγ = Σ dy·x̂, dβ = Σ dy); the kernels add the statistics'
 * own cotangents where they are not zero.
 *
 * Primitives are created once per shape and ε and cached ({@link BNORM_CACHE_ENTRIES}, least
 * recently used evicted); their memory objects have no buffer of their own and are pointed at the
 * arrays right before each execute, in the same synchronous turn.
 * @module
 */
import { ARG, type Dnnl, TAG } from "../dnnl.ts";
import { primitiveCache } from "./primitive_cache.ts";

type Ptr = Deno.PointerObject;

/** Cached primitive sets (one per pass, shape and ε). */
export const BNORM_CACHE_ENTRIES = 64;

/** A batch-norm pass. */
export type BatchNormPass = "forward" | "backward";

/** The arrays of a forward pass: x [rows·C], γ and β [C] in; y, mean and variance out. */
export interface BatchNormForwardArrays {
  readonly x: Float32Array;
  readonly gamma: Float32Array;
  readonly beta: Float32Array;
  readonly y: Float32Array;
  readonly mean: Float32Array;
  readonly variance: Float32Array;
}

/** The arrays of a backward pass: dy, x, mean, variance, γ in; dx, dγ, dβ out. */
export interface BatchNormBackwardArrays {
  readonly dy: Float32Array;
  readonly x: Float32Array;
  readonly mean: Float32Array;
  readonly variance: Float32Array;
  readonly gamma: Float32Array;
  readonly dx: Float32Array;
  readonly dGamma: Float32Array;
  readonly dBeta: Float32Array;
}

/** Train-mode batch norm on a loaded oneDNN. Each pass returns false when oneDNN takes no case. */
export interface DnnlBatchNorm {
  /** y, mean and variance of x (shape `shape`, channels last) with ε = `epsilon`. */
  forward(shape: readonly number[], epsilon: number, a: BatchNormForwardArrays): boolean;
  /** dx, dγ and dβ for the cotangent dy of y, the statistics held constant. */
  backward(shape: readonly number[], epsilon: number, a: BatchNormBackwardArrays): boolean;
  /** The implementation oneDNN uses for a pass at this shape, or null when it takes none. */
  impl(pass: BatchNormPass, shape: readonly number[], epsilon: number): string | null;
}

/** oneDNN's logical dims (N, C, H, W) for channels-last x of `shape` (rank ≥ 2, non-empty). */
export const bnormDims = (shape: readonly number[]): [number, number, number, number] => {
  const c = shape[shape.length - 1];
  if (shape.length === 4) return [shape[0], c, shape[1], shape[2]];
  return [shape.reduce((p, d) => p * d, 1) / c, c, 1, 1];
};

interface Entry {
  readonly impl: string;
  readonly main: Ptr;
  readonly args: Uint8Array<ArrayBuffer>;
  /** Memories in the order of the pass's arrays ({@link PASS_ARGS}). */
  readonly bound: readonly Ptr[];
}

/**
 * Each pass's arguments in the order of its arrays: the DNNL_ARG_* id, and whether it is a [C]
 * vector (else shaped like x).
 */
const PASS_ARGS: Record<BatchNormPass, ReadonlyArray<readonly [number, boolean]>> = {
  forward: [
    [ARG.src, false],
    [ARG.scale, true],
    [ARG.shift, true],
    [ARG.dst, false],
    [ARG.mean, true],
    [ARG.variance, true],
  ],
  backward: [
    [ARG.diffDst, false],
    [ARG.src, false],
    [ARG.mean, true],
    [ARG.variance, true],
    [ARG.scale, true],
    [ARG.diffSrc, false],
    [ARG.diffScale, true],
    [ARG.diffShift, true],
  ],
};

/** Builds train-mode batch norm on a loaded oneDNN (one primitive cache per call). */
export const dnnlBatchNorm = (dnnl: Dnnl): DnnlBatchNorm => {
  const cached = primitiveCache<Entry>(BNORM_CACHE_ENTRIES, (e) => {
    dnnl.destroyPrimitive(e.main);
    e.bound.forEach((m) => dnnl.destroyMemory(m));
  });

  const create = (pass: BatchNormPass, shape: readonly number[], epsilon: number) => {
    const dims = bnormDims(shape);
    const dataMd = dnnl.memoryDesc(dims, TAG.nhwc);
    const vecMd = dnnl.memoryDesc([dims[1]], TAG.a);
    const fwd = dnnl.primitiveDesc(dnnl.bnormForwardDesc(dataMd, epsilon), null);
    if (!fwd) return null;
    let pd: Ptr | null = fwd;
    if (pass === "backward") {
      try {
        pd = dnnl.primitiveDesc(dnnl.bnormBackwardDesc(dataMd, epsilon), fwd);
      } finally {
        dnnl.destroyPd(fwd);
      }
      if (!pd) return null;
    }
    const bound: Ptr[] = [];
    try {
      for (const [, vector] of PASS_ARGS[pass]) {
        bound.push(dnnl.memory(vector ? vecMd : dataMd, false));
      }
      const pairs = PASS_ARGS[pass].map(([id], i): [number, Ptr] => [id, bound[i]]);
      // oneDNN 2.6's backward pass also takes β (status invalid_arguments without it) though none
      // of its outputs depends on it: γ's memory stands in (read only).
      if (pass === "backward") pairs.push([ARG.shift, bound[4]]);
      const impl = dnnl.implInfo(pd);
      const main = dnnl.primitive(pd);
      return { impl, main, args: dnnl.execArgs(pairs), bound };
    } catch (e) {
      bound.forEach((m) => dnnl.destroyMemory(m));
      throw e;
    } finally {
      dnnl.destroyPd(pd);
    }
  };

  const entry = (pass: BatchNormPass, shape: readonly number[], epsilon: number) => {
    if (shape.length < 2 || shape.some((d) => d <= 0)) return null;
    return cached(`${pass}|${shape.join(",")}|${epsilon}`, () => create(pass, shape, epsilon));
  };

  /** Binds the arrays (checking their lengths: oneDNN reads and writes them by raw pointer). */
  const run = (
    pass: BatchNormPass,
    shape: readonly number[],
    epsilon: number,
    arrays: readonly Float32Array[],
  ): boolean => {
    const e = entry(pass, shape, epsilon);
    if (!e) return false;
    const n = shape.reduce((p, d) => p * d, 1), c = shape[shape.length - 1];
    arrays.forEach((a, i) => {
      const want = PASS_ARGS[pass][i][1] ? c : n;
      if (a.length < want) {
        throw new RangeError(
          `oneDNN batch norm ${pass}: argument ${i} has ${a.length} floats, expected ${want}`,
        );
      }
    });
    arrays.forEach((a, i) => dnnl.setData(e.bound[i], a));
    dnnl.execute(e.main, e.args);
    return true;
  };

  return {
    forward: (shape, epsilon, a) =>
      run("forward", shape, epsilon, [a.x, a.gamma, a.beta, a.y, a.mean, a.variance]),
    backward: (shape, epsilon, a) =>
      run("backward", shape, epsilon, [
        a.dy,
        a.x,
        a.mean,
        a.variance,
        a.gamma,
        a.dx,
        a.dGamma,
        a.dBeta,
      ]),
    impl: (pass, shape, epsilon) => entry(pass, shape, epsilon)?.impl ?? null,
  };
};
