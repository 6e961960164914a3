/**
 * `Transpose` by oneDNN (`../dnnl.ts`): one reorder primitive from x seen through permuted strides
 * (the output's dims, each with the stride of the input axis it comes from) to the dense output. A
 * copy, so the values are x's bits; vectorized and threaded (`jit:uni` on this machine): K-FAC's
 * [32768, 1601] → [1601, 32768] takes ≈ 50 ms, where the cpu kernel's element-by-element loop took
 * ≈ 2 s (`tools/profile_optim_step.ts kfac`). float32 and int32.
 *
 * Primitives are created once per shape, permutation and dtype and cached
 * ({@link TRANSPOSE_CACHE_ENTRIES}, least recently used evicted); their memory objects have no buffer
 * of their own and are pointed at the arrays right before each execute, in the same synchronous
 * turn.
 * @module
 */
import { ARG, type Dnnl } from "../dnnl.ts";
import { primitiveCache } from "./primitive_cache.ts";

type Ptr = Deno.PointerObject;

/** Cached shapes and permutations. */
export const TRANSPOSE_CACHE_ENTRIES = 32;

/** Transposes on a loaded oneDNN. */
export interface DnnlTranspose {
  /**
   * out = x with its axes permuted (out's axis i is x's axis perm[i]; x of `shape`, out as long),
   * or false when oneDNN takes no implementation.
   */
  transpose<A extends Float32Array | Int32Array>(
    x: A,
    shape: readonly number[],
    perm: readonly number[],
    out: A,
  ): boolean;
}

interface Entry {
  readonly main: Ptr;
  readonly args: Uint8Array<ArrayBuffer>;
  readonly from: Ptr;
  readonly to: Ptr;
}

/** Row-major strides of a dense array of `dims`. */
const denseStrides = (dims: readonly number[]): number[] => {
  const s = dims.map(() => 1);
  for (let d = dims.length - 2; d >= 0; d--) s[d] = s[d + 1] * dims[d + 1];
  return s;
};

/** Builds the transposes on a loaded oneDNN (one primitive cache per call). */
export const dnnlTranspose = (dnnl: Dnnl): DnnlTranspose => {
  const cached = primitiveCache<Entry>(TRANSPOSE_CACHE_ENTRIES, (e) => {
    dnnl.destroyPrimitive(e.main);
    dnnl.destroyMemory(e.from);
    dnnl.destroyMemory(e.to);
  });

  const create = (shape: readonly number[], perm: readonly number[], int32: boolean) => {
    const xStrides = denseStrides(shape);
    const dims = perm.map((p) => shape[p]);
    const src = dnnl.memoryDescStrides(dims, perm.map((p) => xStrides[p]), int32);
    const dst = dnnl.memoryDescStrides(dims, denseStrides(dims), int32);
    const pd = dnnl.reorderDesc(src, dst);
    try {
      const from = dnnl.memory(src, false), to = dnnl.memory(dst, false);
      const main = dnnl.primitive(pd);
      return { main, args: dnnl.execArgs([[ARG.from, from], [ARG.to, to]]), from, to };
    } finally {
      dnnl.destroyPd(pd);
    }
  };

  return {
    transpose(x, shape, perm, out) {
      const n = shape.reduce((a, b) => a * b, 1);
      if (x.length !== n || out.length !== n) {
        throw new RangeError(
          `oneDNN transpose: x has ${x.length} and out ${out.length} elements, [${shape}] has ${n}`,
        );
      }
      const int32 = x instanceof Int32Array;
      const e = cached(`${shape}|${perm}|${int32}`, () => create(shape, perm, int32));
      if (!e) return false;
      dnnl.setData(e.from, x);
      dnnl.setData(e.to, out);
      dnnl.execute(e.main, e.args);
      return true;
    },
  };
};
