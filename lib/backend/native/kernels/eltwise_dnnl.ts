/**
 * Large element-wise passes of a ResNet step by oneDNN (`../dnnl.ts`) on the tensors' own arrays,
 * vectorized and on its OpenMP threads (the JS loops of `elementwise.ts` run one element at a time
 * on one thread; ≈ 3× slower at 2 M floats): ReLU's cotangent from its output, dx = 1[y > 0]·dy
 * (one binary primitive: `lt` of −y against a zero, with a binary `mul` by dy as its post-op; not
 * `gt` of y, whose unordered compare gives 1 for NaN; −y < 0 is false for NaN as y > 0 is), and the
 * sum and product of two arrays of one length, of an array and one float (an SGD update's
 * −η·g and θ + …), or of an array and a vector repeated along it (a bias over the channels of an
 * NHWC activation: [n/m, m] plus [1, m]). All give the JS loops' bits, NaN, ±∞ and ±0 included. Not oneDNN's
 * own ReLU passes: its forward maps NaN to 0 (a vector max) where TF.js keeps it, and its backward
 * passes dy through where y is NaN (the DSL's rule, like TF.js's mask, gives dy·0).
 * Every array is described as one flat vector of n floats (a bias sum as [n/m, m]), so one
 * primitive per op and lengths serves every shape.
 *
 * Primitives are created once per op and length and cached ({@link ELTWISE_CACHE_ENTRIES}, least
 * recently used evicted); their memory objects have no buffer of their own and are pointed at the
 * arrays right before each execute, in the same synchronous turn.
 * @module
 */
import { ALG, ARG, type Dnnl, TAG } from "../dnnl.ts";
import { primitiveCache } from "./primitive_cache.ts";

type Ptr = Deno.PointerObject;

/**
 * Cached primitives (one per op and lengths): room for every large parameter and activation size
 * of a ResNet-18 step (an SGD update scales and adds one array per parameter tensor).
 */
export const ELTWISE_CACHE_ENTRIES = 256;

/** The passes: ReLU's cotangent from its output; a sum or product (second operand n or 1 long). */
export type EltwiseOp = "reluGrad" | "add" | "mul";

/** The ops on a loaded oneDNN; each returns false when oneDNN takes no implementation. */
export interface DnnlEltwise {
  /** dx = dy·1[y > 0]. */
  reluGrad(dy: Float32Array, y: Float32Array, dx: Float32Array): boolean;
  /**
   * out = a + b or a·b (`b` as long as `a`, one float applied to every element, or m floats
   * repeated along `a`: out[i] = a[i] op b[i mod m], m dividing a's length).
   */
  binary(op: "add" | "mul", a: Float32Array, b: Float32Array, out: Float32Array): boolean;
  /**
   * The implementation oneDNN uses for `op` on n floats (second operand of `m`: n, 1 or a divisor
   * of n), or null when it takes none.
   */
  impl(op: EltwiseOp, n: number, m?: number): string | null;
}

interface Entry {
  readonly impl: string;
  readonly main: Ptr;
  readonly args: Uint8Array<ArrayBuffer>;
  /** Memories in the order of the op's arrays (inputs, then the output). */
  readonly bound: readonly Ptr[];
  /** Memories bound once (reluGrad's zero). */
  readonly fixed: readonly Ptr[];
}

/** The zero y is compared with (bound once; kept alive here, so its pointer stays valid). */
const ZERO = new Float32Array(1);

/** Builds the element-wise ops on a loaded oneDNN (one primitive cache per call). */
export const dnnlEltwise = (dnnl: Dnnl): DnnlEltwise => {
  const cached = primitiveCache<Entry>(ELTWISE_CACHE_ENTRIES, (e) => {
    dnnl.destroyPrimitive(e.main);
    [...e.bound, ...e.fixed].forEach((m) => dnnl.destroyMemory(m));
  });

  const create = (op: EltwiseOp, n: number, m: number): Entry | null => {
    // A repeated vector: the arrays as [n/m, m] rows, the vector as one row broadcast over them.
    const rows = m !== 1 && m !== n;
    const md = rows ? dnnl.memoryDesc([n / m, m], TAG.ab) : dnnl.memoryDesc([n], TAG.a);
    const one = dnnl.memoryDesc([1], TAG.a);
    const second = m === 1 ? one : rows ? dnnl.memoryDesc([1, m], TAG.ab) : md;
    const attr = op === "reluGrad" ? dnnl.binaryAttr(-1, { alg: ALG.binaryMul, src1: md }) : null;
    let pd: Ptr | null;
    try {
      pd = op === "reluGrad"
        ? dnnl.primitiveDesc(dnnl.binaryDesc(ALG.binaryLt, md, one, md), null, attr)
        : dnnl.primitiveDesc(
          dnnl.binaryDesc(op === "add" ? ALG.binaryAdd : ALG.binaryMul, md, second, md),
          null,
        );
    } finally {
      if (attr) dnnl.destroyAttr(attr);
    }
    if (!pd) return null;
    // In the order of the op's arrays: reluGrad (dy, y, dx), add and mul (a, b, out).
    const ids = op === "reluGrad"
      ? [ARG.postOp0Src1, ARG.src, ARG.dst]
      : [ARG.src, ARG.src1, ARG.dst];
    const bound: Ptr[] = [], fixed: Ptr[] = [];
    try {
      ids.forEach((id) => bound.push(dnnl.memory(id === ARG.src1 ? second : md, false)));
      const pairs = ids.map((id, i): [number, Ptr] => [id, bound[i]]);
      if (op === "reluGrad") {
        const zero = dnnl.memory(one, false);
        fixed.push(zero);
        dnnl.setData(zero, ZERO);
        pairs.push([ARG.src1, zero]);
      }
      const impl = dnnl.implInfo(pd);
      const main = dnnl.primitive(pd);
      return { impl, main, args: dnnl.execArgs(pairs), bound, fixed };
    } catch (e) {
      [...bound, ...fixed].forEach((m) => dnnl.destroyMemory(m));
      throw e;
    } finally {
      dnnl.destroyPd(pd);
    }
  };

  const entry = (op: EltwiseOp, n: number, m: number): Entry | null => {
    if (!(n > 0) || !(m > 0) || n % m !== 0 || (op === "reluGrad" && m !== n)) return null;
    return cached(`${op}|${n}|${m}`, () => create(op, n, m));
  };

  /**
   * Runs `op` on arrays of one length, but a binary op's second operand may be shorter, of a length
   * dividing the others' (checked: oneDNN uses them by raw pointer).
   */
  const run = (op: EltwiseOp, arrays: readonly Float32Array[]): boolean => {
    const n = arrays[arrays.length - 1].length;
    const m = op === "reluGrad" ? n : arrays[1].length;
    const repeats = m > 0 && n % m === 0;
    if (arrays.some((a, i) => a.length !== n && !(i === 1 && op !== "reluGrad" && repeats))) {
      throw new RangeError(
        `oneDNN ${op}: arrays of ${
          arrays.map((a) => a.length).join("/")
        } floats, expected ${n} each${
          op === "reluGrad" ? "" : " (or a divisor of it for the second)"
        }`,
      );
    }
    const e = entry(op, n, m);
    if (!e) return false;
    arrays.forEach((a, i) => dnnl.setData(e.bound[i], a));
    dnnl.execute(e.main, e.args);
    return true;
  };

  return {
    reluGrad: (dy, y, dx) => run("reluGrad", [dy, y, dx]),
    binary: (op, a, b, out) => run(op, [a, b, out]),
    impl: (op, n, m = n) => entry(op, n, m)?.impl ?? null,
  };
};
