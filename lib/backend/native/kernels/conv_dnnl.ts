/**
 * 2-D convolutions by oneDNN (`../dnnl.ts`) on the tensors' own arrays: the forward pass, the input
 * gradient (backward data) and the filter gradient (backward weights), NHWC activations and HWIO
 * filters as TF.js lays them out.
 *
 * Layouts: activations stay NHWC in every pass (oneDNN 2.6 has direct NHWC kernels: `brgconv` and
 * `jit:avx512_core` on this machine), so no activation is ever reordered; only the filter is, into
 * the blocked layout the primitive picks (`format_tag_any`): HWIO → blocked before the forward and
 * backward-data passes, blocked → HWIO after backward weights, each a reorder of kh·kw·ci·co floats.
 * Fully blocked activations (nChw16c with reorders at the boundary) were slower in every pass
 * (README). Padding is TF.js's (`backend_util.computeConv2DInfo`: SAME may pad one more at the
 * bottom/right); a geometry oneDNN's output-size rule does not reproduce (explicit padding with
 * `ceil` rounding) gets null, and the caller uses im2col.
 *
 * Primitives are created once per pass and geometry and cached ({@link CACHE_ENTRIES}, least
 * recently used evicted); their memory objects have no buffer of their own except the blocked
 * filter, and are pointed at the arrays right before each execute, in the same synchronous turn.
 * @module
 */
import type { tf } from "../../../_deps.ts";
import { ARG, type ConvSpatial, type Dnnl, type MemoryDesc, QUERY, TAG } from "../dnnl.ts";
import { primitiveCache } from "./primitive_cache.ts";
import { dnnlSpatial, spatialKey } from "./dnnl_spatial.ts";

type Info = tf.backend_util.Conv2DInfo;
type Ptr = Deno.PointerObject;

/**
 * Backward data with at most this many input channels keeps the filter in HWIO, which makes oneDNN
 * take its GEMM-based implementation: the JIT one vectorizes over blocks of 16 input channels and
 * took ≈30 ms whether 1 or 16 of them were real (64×32×32, 5×5, →32), ≈2× the GEMM one at 3
 * channels (128×32×32×3, 5×5, →64: 26–53 ms against 80–110 ms, a C program on the shared machine).
 */
export const BACKWARD_DATA_PLAIN_MAX_CHANNELS = 4;

/**
 * Whether oneDNN takes this pass at all: not the filter gradient of a strided 1×1 conv (ResNets'
 * projection shortcuts). oneDNN 2.6 runs it as `jit_1x1:avx512_core` through its reduce-to-unit-
 * stride copy, which corrupted the heap on more than one OpenMP thread (segfaults, or glibc's
 * "corrupted size vs. prev_size" and "malloc(): corrupted top size", in about half the runs of 400
 * random small geometries and every run of 3000 calls at 3×18×10×6 → 1 channel, stride 2; none in
 * the same runs without this pass, nor on one thread). im2col takes it: a strided subsample and one
 * GEMM.
 */
export const dnnlTakesPass = (pass: ConvPass, g: Info): boolean =>
  !(pass === "backwardWeights" && g.filterHeight === 1 && g.filterWidth === 1 &&
    (g.strideHeight > 1 || g.strideWidth > 1));

/** Cached primitive sets (one per pass and geometry). */
export const CACHE_ENTRIES = 64;

/** A convolution pass. */
export type ConvPass = "forward" | "backwardData" | "backwardWeights";

/** A pass's primitive, the memories the caller's arrays are bound to, and the filter reorder. */
interface Entry {
  /** The pass's implementation, as oneDNN names it. */
  readonly impl: string;
  readonly main: Ptr;
  readonly mainArgs: Uint8Array<ArrayBuffer>;
  /** Memories bound to the call's arrays: [input a, input b, output]. */
  readonly bound: readonly [Ptr, Ptr, Ptr];
  /** Filter reorder run before (HWIO → blocked) or after (blocked → HWIO) the main primitive. */
  readonly before: { p: Ptr; args: Uint8Array<ArrayBuffer> } | null;
  readonly after: { p: Ptr; args: Uint8Array<ArrayBuffer> } | null;
  readonly primitives: readonly Ptr[];
  readonly memories: readonly Ptr[];
}

/** The convolutions, on a loaded oneDNN. Each returns false when oneDNN does not take the case. */
export interface DnnlConv {
  /** y = conv2d(x, w) into `y` (g.outShape). */
  forward(x: Float32Array, w: Float32Array, g: Info, y: Float32Array): boolean;
  /** dx = conv2dBackpropInput(dy, w) into `dx` (g.inShape). */
  backwardData(dy: Float32Array, w: Float32Array, g: Info, dx: Float32Array): boolean;
  /** dW = conv2dBackpropFilter(x, dy) into `dw` (g.filterShape). */
  backwardWeights(x: Float32Array, dy: Float32Array, g: Info, dw: Float32Array): boolean;
  /** The implementation oneDNN uses for a pass at this geometry, or null when it takes none. */
  impl(pass: ConvPass, g: Info): string | null;
}

/** Builds the convolutions on a loaded oneDNN (one primitive cache per call). */
export const dnnlConv = (dnnl: Dnnl): DnnlConv => {
  const destroy = (e: Pick<Entry, "primitives" | "memories">) => {
    e.primitives.forEach((p) => dnnl.destroyPrimitive(p));
    e.memories.forEach((m) => dnnl.destroyMemory(m));
  };
  const cached = primitiveCache<Entry>(CACHE_ENTRIES, destroy);

  /** The pass's primitive descriptor (a forward one is created as its hint and destroyed). */
  const passPd = (
    pass: ConvPass,
    md: { src: MemoryDesc; w: MemoryDesc; dst: MemoryDesc },
    s: ConvSpatial,
  ): Ptr | null => {
    const fwd = dnnl.primitiveDesc(dnnl.convForwardDesc(md.src, md.w, md.dst, s), null);
    if (pass === "forward" || !fwd) return fwd;
    try {
      const op = pass === "backwardData"
        ? dnnl.convBackwardDataDesc(md.src, md.w, md.dst, s)
        : dnnl.convBackwardWeightsDesc(md.src, md.w, md.dst, s);
      return dnnl.primitiveDesc(op, fwd);
    } finally {
      dnnl.destroyPd(fwd);
    }
  };

  const create = (pass: ConvPass, g: Info, s: ConvSpatial): Entry | null => {
    const srcMd = dnnl.memoryDesc([g.batchSize, g.inChannels, g.inHeight, g.inWidth], TAG.nhwc);
    const dstMd = dnnl.memoryDesc([g.batchSize, g.outChannels, g.outHeight, g.outWidth], TAG.nhwc);
    const wDims = [g.outChannels, g.inChannels, g.filterHeight, g.filterWidth];
    const wUserMd = dnnl.memoryDesc(wDims, TAG.hwio);
    const plain = pass === "backwardData" && g.inChannels <= BACKWARD_DATA_PLAIN_MAX_CHANNELS;
    const wMdWanted = plain ? wUserMd : dnnl.memoryDesc(wDims, TAG.any);
    const pd = passPd(pass, { src: srcMd, w: wMdWanted, dst: dstMd }, s);
    if (!pd) return null;
    const primitives: Ptr[] = [], memories: Ptr[] = [];
    const mem = (md: MemoryDesc, allocate: boolean) => {
      const m = dnnl.memory(md, allocate);
      memories.push(m);
      return m;
    };
    const prim = (p: Ptr) => {
      const q = dnnl.primitive(p);
      primitives.push(q);
      return q;
    };
    try {
      const impl = dnnl.implInfo(pd);
      const wPass = pass === "backwardWeights" ? QUERY.diffWeightsMd : QUERY.weightsMd;
      const wMd = dnnl.queryMd(pd, wPass);
      const src = mem(srcMd, false), dst = mem(dstMd, false), wUser = mem(wUserMd, false);
      const same = dnnl.mdEqual(wMd, wUserMd);
      const wPrim = same ? wUser : mem(wMd, true);
      let reorder: { p: Ptr; args: Uint8Array<ArrayBuffer> } | null = null;
      if (!same) {
        const [from, to] = pass === "backwardWeights" ? [wPrim, wUser] : [wUser, wPrim];
        const [fromMd, toMd] = pass === "backwardWeights" ? [wMd, wUserMd] : [wUserMd, wMd];
        const rpd = dnnl.reorderDesc(fromMd, toMd);
        try {
          reorder = { p: prim(rpd), args: dnnl.execArgs([[ARG.from, from], [ARG.to, to]]) };
        } finally {
          dnnl.destroyPd(rpd);
        }
      }
      const main = prim(pd);
      const [args, bound]: [Array<[number, Ptr]>, [Ptr, Ptr, Ptr]] = pass === "forward"
        ? [[[ARG.src, src], [ARG.weights, wPrim], [ARG.dst, dst]], [src, wUser, dst]]
        : pass === "backwardData"
        ? [[[ARG.diffDst, dst], [ARG.weights, wPrim], [ARG.diffSrc, src]], [dst, wUser, src]]
        : [[[ARG.src, src], [ARG.diffDst, dst], [ARG.diffWeights, wPrim]], [src, dst, wUser]];
      return {
        impl,
        main,
        mainArgs: dnnl.execArgs(args),
        bound,
        before: pass === "backwardWeights" ? null : reorder,
        after: pass === "backwardWeights" ? reorder : null,
        primitives,
        memories,
      };
    } catch (e) {
      destroy({ primitives, memories });
      throw e;
    } finally {
      dnnl.destroyPd(pd);
    }
  };

  const entry = (pass: ConvPass, g: Info): Entry | null => {
    const s = dnnlSpatial(g);
    if (!s || !dnnlTakesPass(pass, g)) return null;
    return cached(`${pass},${spatialKey(g, s)}`, () => create(pass, g, s));
  };

  const run = (
    pass: ConvPass,
    g: Info,
    a: Float32Array,
    b: Float32Array,
    out: Float32Array,
    sizes: readonly [number, number, number],
  ): boolean => {
    const e = entry(pass, g);
    if (!e) return false;
    // Bounds: oneDNN reads and writes exactly these many elements through the raw pointers.
    if (a.length < sizes[0] || b.length < sizes[1] || out.length < sizes[2]) {
      throw new RangeError(
        `oneDNN conv ${pass}: arrays of ${a.length}/${b.length}/${out.length} floats, ` +
          `expected at least ${sizes.join("/")}`,
      );
    }
    dnnl.setData(e.bound[0], a);
    dnnl.setData(e.bound[1], b);
    dnnl.setData(e.bound[2], out);
    // The filter reorders on one thread: a few hundred KB at most, where waking the OpenMP workers
    // and waiting for them cost more (ResNet-18 step, 2 threads: 55 reorders took 45 ms).
    if (e.before) dnnl.executeSerial(e.before.p, e.before.args);
    dnnl.execute(e.main, e.mainArgs);
    if (e.after) dnnl.executeSerial(e.after.p, e.after.args);
    return true;
  };

  const size = (shape: readonly number[]) => shape.reduce((p, d) => p * d, 1);
  return {
    forward: (x, w, g, y) =>
      run("forward", g, x, w, y, [size(g.inShape), size(g.filterShape), size(g.outShape)]),
    backwardData: (dy, w, g, dx) =>
      run("backwardData", g, dy, w, dx, [size(g.outShape), size(g.filterShape), size(g.inShape)]),
    backwardWeights: (x, dy, g, dw) =>
      run("backwardWeights", g, x, dy, dw, [
        size(g.inShape),
        size(g.outShape),
        size(g.filterShape),
      ]),
    impl: (pass, g) => entry(pass, g)?.impl ?? null,
  };
};
