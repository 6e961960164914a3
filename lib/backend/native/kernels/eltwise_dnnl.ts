/**
 * Large element-wise passes of a conv-net or ResNet step by oneDNN (`../dnnl.ts`) on the tensors'
 * own arrays, vectorized and on its OpenMP threads (the JS loops of `elementwise.ts` run one element
 * at a time on one thread; ≈ 3× slower at 2 M floats; at 8 M, see `tools/profile_convnet_step.ts`),
 * each one binary primitive:
 * - ReLU's cotangent from its output, dx = 1[y > 0]·dy: `lt` of −y against a zero, with a binary
 *   `mul` by dy as its post-op (not `gt` of y, whose unordered compare gives 1 for NaN; −y < 0 is
 *   false for NaN as y > 0 is);
 * - ReLU, max(0, x) as `Math.max` gives it (NaN kept, −0 to +0): `max` of x and a zero, then `max`
 *   with x again and + 0 as post-ops (see `describe`);
 * - the step 1[x > 0]: `lt` of −x against a zero, which gives +0 where the `Step` kernel gives NaN,
 *   so the kernel uses it only on arrays without NaN;
 * - the NaN guard that proves it: row sums of x (NaN propagates through every addition);
 * - the sum and product of two arrays of one length, of an array and one float (an SGD update's
 *   −η·g and θ + …), or of an array and a vector repeated along it (a bias over the channels of an
 *   NHWC activation: [n/m, m] plus [1, m]).
 * All give the JS loops' bits, NaN, ±∞ and ±0 included (the step: but for NaN). Not oneDNN's own
 * ReLU passes: its forward maps NaN to 0 (a vector max) where TF.js keeps it, and its backward
 * passes dy through where y is NaN (the DSL's rule, like TF.js's mask, gives dy·0).
 * Every array is described as one flat vector of n floats (a bias sum as [n/m, m]), so one
 * primitive per op and lengths serves every shape.
 *
 * Primitives are created once per op and length and cached ({@link ELTWISE_CACHE_ENTRIES}, least
 * recently used evicted); their memory objects have no buffer of their own and are pointed at the
 * arrays right before each execute, in the same synchronous turn.
 * @module
 */
import { ALG, ARG, type Dnnl, type PostOp, TAG } from "../dnnl.ts";
import { primitiveCache } from "./primitive_cache.ts";

type Ptr = Deno.PointerObject;

/**
 * Cached primitives (one per op and lengths): room for every large parameter and activation size
 * of a ResNet-18 step (an SGD update scales and adds one array per parameter tensor).
 */
export const ELTWISE_CACHE_ENTRIES = 256;

/**
 * The passes: ReLU and its cotangent from its output; the step 1[x > 0]; a sum or product (second
 * operand n or 1 long, or a divisor of n); the NaN guard (row sums).
 */
export type EltwiseOp = "reluGrad" | "relu" | "step" | "add" | "mul" | "sums";

/** The ops on a loaded oneDNN; each returns false when oneDNN takes no implementation. */
export interface DnnlEltwise {
  /** dx = dy·1[y > 0]. */
  reluGrad(dy: Float32Array, y: Float32Array, dx: Float32Array): boolean;
  /** out = max(0, x) as `Math.max` gives it: NaN kept, −0 and every negative number to +0. */
  relu(x: Float32Array, out: Float32Array): boolean;
  /**
   * out = 1[x > 0] (1 or +0), as the `Step` kernel with α = 0 gives it EXCEPT for NaN, which gives
   * +0 here and NaN there: use it only on arrays {@link noNaN} cleared.
   */
  stepIgnoringNaN(x: Float32Array, out: Float32Array): boolean;
  /**
   * True when `x` holds no NaN, proven by row sums that are not NaN (NaN propagates through every
   * addition; under {@link GUARD_MIN} floats, a JS scan). False when a sum is NaN (a NaN, or both
   * infinities, or sums overflowing both ways: the caller takes its exact path) or oneDNN takes no
   * implementation.
   */
  noNaN(x: Float32Array): boolean;
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
  /** Memories in the order of the op's arrays (see {@link ARRAY_ARGS}). */
  readonly bound: readonly Ptr[];
  /** Memories bound once (the zero compared with, the guard's row sums). */
  readonly fixed: readonly Ptr[];
  /** The guard's row sums (`sums` only). */
  readonly sums?: Float32Array;
}

/** The zero compared with (bound once; kept alive here, so its pointer stays valid). */
const ZERO = new Float32Array(1);

/**
 * Rows of the NaN guard's sums: [ROWS, n/ROWS] summed along rows runs on all threads (8 M floats:
 * ≈ 0.9 ms), where one sum of all n floats takes ≈ 3.4 ms.
 */
const GUARD_ROWS = 64;

/** Shorter arrays are checked for NaN by a JS loop. */
const GUARD_MIN = 4 * GUARD_ROWS;

/** The execution argument each of an op's arrays is bound to, in the order `run` takes them. */
const ARRAY_ARGS: Record<EltwiseOp, readonly number[]> = {
  reluGrad: [ARG.postOp0Src1, ARG.src, ARG.dst], // (dy, y, dx)
  relu: [ARG.src, ARG.postOp0Src1, ARG.dst], // (x, x, out)
  step: [ARG.src, ARG.dst], // (x, out)
  add: [ARG.src, ARG.src1, ARG.dst], // (a, b, out)
  mul: [ARG.src, ARG.src1, ARG.dst],
  sums: [ARG.src], // (x); the row sums are the entry's own
};

/** Builds the element-wise ops on a loaded oneDNN (one primitive cache per call). */
export const dnnlEltwise = (dnnl: Dnnl): DnnlEltwise => {
  const cached = primitiveCache<Entry>(ELTWISE_CACHE_ENTRIES, (e) => {
    dnnl.destroyPrimitive(e.main);
    [...e.bound, ...e.fixed].forEach((m) => dnnl.destroyMemory(m));
  });

  /** The memory descriptors of an op's arrays, in {@link ARRAY_ARGS} order, and its output's. */
  const descriptors = (op: EltwiseOp, n: number, m: number) => {
    if (op === "sums") {
      const rows = n % GUARD_ROWS === 0 ? GUARD_ROWS : 1;
      const src = dnnl.memoryDesc([rows, n / rows], TAG.ab);
      return { arrays: [src], out: dnnl.memoryDesc([rows, 1], TAG.ab), rows };
    }
    // A repeated vector: the arrays as [n/m, m] rows, the vector as one row broadcast over them.
    const rows = (op === "add" || op === "mul") && m !== 1 && m !== n;
    const md = rows ? dnnl.memoryDesc([n / m, m], TAG.ab) : dnnl.memoryDesc([n], TAG.a);
    const second = m === 1
      ? dnnl.memoryDesc([1], TAG.a)
      : rows
      ? dnnl.memoryDesc([1, m], TAG.ab)
      : md;
    return {
      arrays: ARRAY_ARGS[op].map((id) => (id === ARG.src1 ? second : md)),
      out: md,
      rows: 0,
    };
  };

  /**
   * The op's primitive descriptor. ReLU's cotangent: `lt` of −y against a zero, times dy (post-op).
   * ReLU: `max` of x and a zero (NaN → 0: the max returns its second operand when either is NaN),
   * then `max` with x again as a post-op (which returns x's NaN, and x itself where the two are
   * equal: −0 for −0), then + 0 (an element-wise linear post-op: −0 + 0 = +0). The step: `lt` of
   * −x against a zero (false for NaN). The guard: a sum along each of [ROWS, n/ROWS]'s rows.
   */
  const describe = (op: EltwiseOp, mds: ReturnType<typeof descriptors>): Ptr | null => {
    const [src, other] = mds.arrays, out = mds.out;
    if (op === "sums") {
      return dnnl.primitiveDesc(dnnl.reductionDesc(ALG.reductionSum, src, out), null);
    }
    if (op === "add" || op === "mul") {
      const alg = op === "add" ? ALG.binaryAdd : ALG.binaryMul;
      return dnnl.primitiveDesc(dnnl.binaryDesc(alg, src, other, out), null);
    }
    const [alg, scale, post]: [number, number, PostOp[]] = op === "reluGrad"
      ? [ALG.binaryLt, -1, [{ alg: ALG.binaryMul, src1: out }]]
      : op === "relu"
      ? [ALG.binaryMax, 1, [
        { alg: ALG.binaryMax, src1: out },
        { eltwise: ALG.eltwiseLinear, alpha: 1, beta: 0 },
      ]]
      : [ALG.binaryLt, -1, []];
    const attr = dnnl.binaryAttr(scale, post);
    try {
      return dnnl.primitiveDesc(
        dnnl.binaryDesc(alg, out, dnnl.memoryDesc([1], TAG.a), out),
        null,
        attr,
      );
    } finally {
      dnnl.destroyAttr(attr);
    }
  };

  const create = (op: EltwiseOp, n: number, m: number): Entry | null => {
    const mds = descriptors(op, n, m);
    const pd = describe(op, mds);
    if (!pd) return null;
    const ids = ARRAY_ARGS[op];
    const bound: Ptr[] = [], fixed: Ptr[] = [];
    try {
      mds.arrays.forEach((md) => bound.push(dnnl.memory(md, false)));
      const pairs = ids.map((id, i): [number, Ptr] => [id, bound[i]]);
      let sums: Float32Array | undefined;
      if (op === "sums") { // the row sums: the entry's own array
        sums = new Float32Array(mds.rows);
        fixed.push(dnnl.memory(mds.out, false));
        dnnl.setData(fixed[0], sums);
        pairs.push([ARG.dst, fixed[0]]);
      } else if (op !== "add" && op !== "mul") { // the zero compared with
        fixed.push(dnnl.memory(dnnl.memoryDesc([1], TAG.a), false));
        dnnl.setData(fixed[0], ZERO);
        pairs.push([ARG.src1, fixed[0]]);
      }
      const impl = dnnl.implInfo(pd);
      const main = dnnl.primitive(pd);
      return { impl, main, args: dnnl.execArgs(pairs), bound, fixed, sums };
    } catch (e) {
      [...bound, ...fixed].forEach((m) => dnnl.destroyMemory(m));
      throw e;
    } finally {
      dnnl.destroyPd(pd);
    }
  };

  const entry = (op: EltwiseOp, n: number, m: number): Entry | null => {
    if (!(n > 0) || !(m > 0) || n % m !== 0) return null;
    if (m !== n && op !== "add" && op !== "mul") return null;
    return cached(`${op}|${n}|${m}`, () => create(op, n, m));
  };

  /**
   * Runs `op` on arrays of one length, but a binary op's second operand may be shorter, of a length
   * dividing the others' (checked: oneDNN uses them by raw pointer).
   */
  const run = (op: EltwiseOp, arrays: readonly Float32Array[]): Entry | null => {
    const n = arrays[arrays.length - 1].length;
    const binary = op === "add" || op === "mul";
    const m = binary ? arrays[1].length : n;
    const repeats = m > 0 && n % m === 0;
    if (arrays.some((a, i) => a.length !== n && !(i === 1 && binary && repeats))) {
      throw new RangeError(
        `oneDNN ${op}: arrays of ${
          arrays.map((a) => a.length).join("/")
        } floats, expected ${n} each${binary ? " (or a divisor of it for the second)" : ""}`,
      );
    }
    const e = entry(op, n, m);
    if (!e) return null;
    arrays.forEach((a, i) => dnnl.setData(e.bound[i], a));
    dnnl.execute(e.main, e.args);
    return e;
  };

  const noNaN = (x: Float32Array): boolean => {
    if (x.length < GUARD_MIN) return !x.some(Number.isNaN); // (a reduction needs n > rows)
    const sums = run("sums", [x])?.sums;
    if (!sums) return false;
    for (let i = 0; i < sums.length; i++) if (sums[i] !== sums[i]) return false;
    return true;
  };

  return {
    reluGrad: (dy, y, dx) => run("reluGrad", [dy, y, dx]) !== null,
    relu: (x, out) => run("relu", [x, x, out]) !== null,
    stepIgnoringNaN: (x, out) => run("step", [x, out]) !== null,
    noNaN,
    binary: (op, a, b, out) => run(op, [a, b, out]) !== null,
    impl: (op, n, m = n) => entry(op, n, m)?.impl ?? null,
  };
};
