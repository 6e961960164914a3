/**
 * Max pooling by oneDNN (`../dnnl.ts`) on the tensors' own NHWC arrays: the forward pass, which can
 * record each window's arg-max (its workspace, one byte per window; {@link argMaxFromWorkspace}
 * turns it into flat indices), the backward pass that sends each cotangent to the arg-max a
 * workspace records, and the gradient from x as both in turn. Vectorized and on oneDNN's threads:
 * [128,32,32,64] 2×2/2 takes ≈ 8 ms forward and ≈ 24 ms for the gradient, against ≈ 24 and ≈ 40 ms
 * for the JS loops of `pool.ts` (`deno task bench --backend native --filter mlhf-native/max-pool`).
 *
 * What oneDNN computes (checked bit for bit against the JS loops in `pool_dnnl_test.ts`): each
 * window's maximum with a strict compare in row-major window order, so the FIRST maximum wins and
 * NaN never does, as in `pool.ts`; but −0 and +0 tie (the JS keys order −0 below +0), and a window
 * with nothing above −∞ gives −FLT_MAX (the JS loops: −∞). Where windows overlap (stride below the
 * window), the backward pass adds the cotangents of one input element in another order than the JS
 * loops. So `pool.ts` takes this path only for an input with no negative number (no −0, no −∞) and
 * no NaN (ReLU's output proves both, array facts in `_util.ts`), and the gradient only where the
 * windows do not overlap.
 *
 * Primitives are created once per geometry and cached ({@link POOL_CACHE_ENTRIES}, least recently
 * used evicted); their memory objects have no buffer of their own and are pointed at the arrays (and
 * at the caller's workspace, or a scratch one) right before each execute, in the same synchronous
 * turn. A geometry
 * whose output size oneDNN's rule does not reproduce (TF.js's explicit padding with `ceil`
 * rounding) gets false, and the caller uses its JS loops.
 * @module
 */
import type { tf } from "../../../_deps.ts";
import { ARG, type ConvSpatial, type Dnnl, QUERY, TAG } from "../dnnl.ts";
import { primitiveCache } from "./primitive_cache.ts";
import { scratch } from "./_util.ts";
import { dnnlSpatial, spatialKey } from "./dnnl_spatial.ts";

type Info = tf.backend_util.Conv2DInfo;
type Ptr = Deno.PointerObject;

/** Cached geometries: every max-pool of a CUDA-convnet or ResNet step, with room. */
export const POOL_CACHE_ENTRIES = 16;

/** Max pooling on a loaded oneDNN; each call returns false when oneDNN takes no implementation. */
export interface DnnlMaxPool {
  /**
   * y = the window maxima of x (NHWC, geometry `g`); with `ws` (one byte per output element), each
   * window's arg-max is recorded there as its position in the window, row-major (false when the
   * window has more than 256 positions: oneDNN then records int32s).
   */
  forward(x: Float32Array, g: Info, y: Float32Array, ws?: Uint8Array): boolean;
  /** dx = each dy sent to its window's arg-max in x (overwritten; zero elsewhere). */
  grad(dy: Float32Array, x: Float32Array, g: Info, dx: Float32Array): boolean;
  /** dx = each dy sent to the arg-max a forward pass recorded in `ws` (zero elsewhere). */
  backward(dy: Float32Array, ws: Uint8Array, g: Info, dx: Float32Array): boolean;
  /** "forward/backward" implementations oneDNN picks for `g`, or null when it takes none. */
  impl(g: Info): string | null;
}

/**
 * The flat indices into x (NHWC) of the arg-maxes a workspace records (its byte k for a window at
 * (row r0, column c0) of image b: row r0 + ⌊k / kw⌋, column c0 + k mod kw, in the output's channel).
 */
export const argMaxFromWorkspace = (ws: Uint8Array, g: Info, idx: Int32Array): void => {
  const { inHeight: H, inWidth: W, inChannels: C, filterWidth: KW } = g;
  const offset = new Int32Array(g.filterHeight * KW);
  for (let k = 0; k < offset.length; k++) offset[k] = (Math.floor(k / KW) * W + (k % KW)) * C;
  let o = 0;
  for (let b = 0; b < g.batchSize; b++) {
    for (let p = 0; p < g.outHeight; p++) {
      const r0 = p * g.strideHeight - g.padInfo.top;
      for (let q = 0; q < g.outWidth; q++) {
        const base = ((b * H + r0) * W + q * g.strideWidth - g.padInfo.left) * C;
        for (let c = 0; c < C; c++, o++) idx[o] = base + c + offset[ws[o]];
      }
    }
  }
};

interface Entry {
  readonly impl: string;
  readonly forward: Ptr;
  readonly backward: Ptr;
  readonly forwardArgs: Uint8Array<ArrayBuffer>;
  readonly backwardArgs: Uint8Array<ArrayBuffer>;
  /** Memories bound to arrays: x, y (forward); dx, dy (backward). */
  readonly x: Ptr;
  readonly y: Ptr;
  readonly dx: Ptr;
  readonly dy: Ptr;
  /** The workspace: the forward writes each window's arg-max there, the backward reads it. */
  readonly ws: Ptr;
  /** Its size in bytes (one per output element, or four where windows exceed 256 positions). */
  readonly wsBytes: number;
}

/** The workspace of `grad` (grown as needed; kernels run synchronously, one at a time). */
let wsScratch = new Uint8Array(0);
const wsScratchOf = (n: number): Uint8Array => {
  if (wsScratch.length < n) wsScratch = new Uint8Array(n);
  return wsScratch.subarray(0, n);
};

/**
 * oneDNN's spatial parameters for `g` ({@link dnnlSpatial}), or null also when a window can lie
 * entirely in the padding (a padding as wide as the window).
 */
const spatial = (g: Info): ConvSpatial | null => {
  const p = g.padInfo;
  if (Math.max(p.top, p.bottom) >= g.filterHeight || Math.max(p.left, p.right) >= g.filterWidth) {
    return null;
  }
  return dnnlSpatial(g);
};

/** Builds max pooling on a loaded oneDNN (one primitive cache per call). */
export const dnnlMaxPool = (dnnl: Dnnl): DnnlMaxPool => {
  const cached = primitiveCache<Entry>(POOL_CACHE_ENTRIES, (e) => {
    dnnl.destroyPrimitive(e.forward);
    dnnl.destroyPrimitive(e.backward);
    [e.x, e.y, e.dx, e.dy, e.ws].forEach((m) => dnnl.destroyMemory(m));
  });

  const create = (g: Info, s: ConvSpatial): Entry | null => {
    const src = dnnl.memoryDesc([g.batchSize, g.inChannels, g.inHeight, g.inWidth], TAG.nhwc);
    const dst = dnnl.memoryDesc([g.batchSize, g.inChannels, g.outHeight, g.outWidth], TAG.nhwc);
    const kernel = [g.filterHeight, g.filterWidth] as const;
    const fpd = dnnl.primitiveDesc(dnnl.poolForwardDesc(src, dst, kernel, s), null);
    if (!fpd) return null;
    const mems: Ptr[] = [], prims: Ptr[] = [];
    let bpd: Ptr | null = null;
    try {
      bpd = dnnl.primitiveDesc(dnnl.poolBackwardDesc(src, dst, kernel, s), fpd);
      if (!bpd) return null;
      const mem = (md: typeof src, allocate: boolean) => {
        mems.push(dnnl.memory(md, allocate));
        return mems[mems.length - 1];
      };
      const [x, y, dx, dy] = [mem(src, false), mem(dst, false), mem(src, false), mem(dst, false)];
      const wsMd = dnnl.queryMd(fpd, QUERY.workspaceMd);
      const ws = mem(wsMd, false);
      prims.push(dnnl.primitive(fpd));
      prims.push(dnnl.primitive(bpd));
      const [forward, backward] = prims;
      return {
        impl: `${dnnl.implInfo(fpd)}/${dnnl.implInfo(bpd)}`,
        forward,
        backward,
        forwardArgs: dnnl.execArgs([[ARG.src, x], [ARG.dst, y], [ARG.workspace, ws]]),
        backwardArgs: dnnl.execArgs([[ARG.diffSrc, dx], [ARG.diffDst, dy], [ARG.workspace, ws]]),
        x,
        y,
        dx,
        dy,
        ws,
        wsBytes: dnnl.mdSize(wsMd),
      };
    } catch (e) {
      prims.forEach((p) => dnnl.destroyPrimitive(p));
      mems.forEach((m) => dnnl.destroyMemory(m));
      throw e;
    } finally {
      dnnl.destroyPd(fpd);
      if (bpd) dnnl.destroyPd(bpd);
    }
  };

  const entry = (g: Info): Entry | null => {
    const s = spatial(g);
    if (!s) return null;
    const key = spatialKey(g, s);
    return cached(key, () => create(g, s));
  };

  const check = (what: string, a: { length: number }, n: number) => {
    if (a.length !== n) {
      throw new RangeError(`oneDNN max-pool: ${what} has ${a.length} elements, expected ${n}`);
    }
  };
  const sizes = (g: Info) => [
    g.batchSize * g.inHeight * g.inWidth * g.inChannels,
    g.batchSize * g.outHeight * g.outWidth * g.inChannels,
  ];

  const forwardInto = (e: Entry, x: Float32Array, y: Float32Array, ws: Uint8Array) => {
    dnnl.setData(e.x, x);
    dnnl.setData(e.y, y);
    dnnl.setData(e.ws, ws);
    dnnl.execute(e.forward, e.forwardArgs);
  };
  const backwardFrom = (e: Entry, dy: Float32Array, ws: Uint8Array, dx: Float32Array) => {
    dnnl.setData(e.dx, dx);
    dnnl.setData(e.dy, dy);
    dnnl.setData(e.ws, ws);
    dnnl.execute(e.backward, e.backwardArgs);
  };

  return {
    forward(x, g, y, ws) {
      const [nx, ny] = sizes(g);
      check("x", x, nx);
      check("y", y, ny);
      const e = entry(g);
      if (ws) check("the workspace", ws, ny);
      if (!e || (ws && e.wsBytes !== ny)) return false;
      forwardInto(e, x, y, ws ?? wsScratchOf(e.wsBytes));
      return true;
    },
    grad(dy, x, g, dx) {
      const [nx, ny] = sizes(g);
      check("x", x, nx);
      check("dx", dx, nx);
      check("dy", dy, ny);
      const e = entry(g);
      if (!e) return false;
      const ws = wsScratchOf(e.wsBytes);
      forwardInto(e, x, scratch(ny), ws); // for the workspace; the maxima are not needed
      backwardFrom(e, dy, ws, dx);
      return true;
    },
    backward(dy, ws, g, dx) {
      const [nx, ny] = sizes(g);
      check("dx", dx, nx);
      check("dy", dy, ny);
      const e = entry(g);
      check("the workspace", ws, ny);
      if (!e || e.wsBytes !== ny) return false;
      backwardFrom(e, dy, ws, dx);
      return true;
    },
    impl: (g) => entry(g)?.impl ?? null,
  };
};
