/**
 * Parameter trees: nested records and arrays whose leaves are tensors, and the vector algebra CG and
 * the optimizers need over them (optax's tree_math analogue). Leaf order is the depth-first,
 * insertion order of keys: deterministic, so flattening to one vector and back is exact.
 * @module
 */
import { tf } from "./_deps.ts";

/** A tree of values of type L: a leaf, an array of trees, or a record of trees. */
export type Tree<L> = L | Tree<L>[] | { readonly [key: string]: Tree<L> };
/** A tree of tensors (parameters, gradients, tangents, optimizer slots). */
export type Params = Tree<tf.Tensor>;

const isLeaf = <L>(x: Tree<L>, leaf: (x: unknown) => boolean): x is L => leaf(x);
const isTensor = (x: unknown): boolean => x instanceof tf.Tensor;

/** The leaves of a tree in deterministic order. */
export const leavesOf = <L>(tree: Tree<L>, leaf: (x: unknown) => boolean): L[] => {
  const out: L[] = [];
  const walk = (t: Tree<L>): void => {
    if (isLeaf(t, leaf)) out.push(t);
    else if (Array.isArray(t)) t.forEach(walk);
    else for (const k of Object.keys(t as object)) walk((t as Record<string, Tree<L>>)[k]);
  };
  walk(tree);
  return out;
};

/** Rebuilds `structure` with `leaves` in order (the inverse of `leavesOf`). */
export const unflattenAs = <L, M>(
  structure: Tree<L>,
  leaves: readonly M[],
  leaf: (x: unknown) => boolean,
): Tree<M> => {
  let i = 0;
  const build = (t: Tree<L>): Tree<M> => {
    if (isLeaf(t, leaf)) {
      if (i >= leaves.length) throw new RangeError("unflattenAs: too few leaves for the structure");
      return leaves[i++];
    }
    if (Array.isArray(t)) return t.map(build);
    const o: Record<string, Tree<M>> = {};
    for (const k of Object.keys(t as object)) o[k] = build((t as Record<string, Tree<L>>)[k]);
    return o;
  };
  const out = build(structure);
  if (i !== leaves.length) {
    throw new RangeError(`unflattenAs: ${leaves.length} leaves for a structure of ${i}`);
  }
  return out;
};

/** Tensor leaves of a parameter tree. */
export const leaves = (p: Params): tf.Tensor[] => leavesOf(p, isTensor);
/** Rebuilds a parameter tree shaped like `like` from tensors in leaf order. */
export const unflatten = <P extends Params>(like: P, xs: readonly tf.Tensor[]): P =>
  unflattenAs(like, xs, isTensor) as P;

/** Applies f to every leaf. */
export const mapTree = <P extends Params>(p: P, f: (x: tf.Tensor, i: number) => tf.Tensor): P =>
  unflatten(p, leaves(p).map(f));

/** Combines two trees of the same structure leaf by leaf (shapes must match). */
export const zipTree = <P extends Params>(
  a: P,
  b: Params,
  f: (x: tf.Tensor, y: tf.Tensor, i: number) => tf.Tensor,
): P => {
  const la = leaves(a), lb = leaves(b);
  if (la.length !== lb.length) {
    throw new RangeError(`tree structures differ: ${la.length} vs ${lb.length} leaves`);
  }
  return unflatten(
    a,
    la.map((x, i) => {
      const y = lb[i];
      if (!tf.util.arraysEqual(x.shape, y.shape)) {
        throw new RangeError(`leaf ${i}: shape [${x.shape}] vs [${y.shape}]`);
      }
      return f(x, y, i);
    }),
  );
};

/** a + b, leaf by leaf. */
export const add = <P extends Params>(a: P, b: Params): P => zipTree(a, b, (x, y) => tf.add(x, y));
/** a − b, leaf by leaf. */
export const sub = <P extends Params>(a: P, b: Params): P => zipTree(a, b, (x, y) => tf.sub(x, y));
/** Elementwise product (e.g. λ ⊙ v, P ⊙ r). */
export const mul = <P extends Params>(a: P, b: Params): P => zipTree(a, b, (x, y) => tf.mul(x, y));
/** s·a, for a number or a scalar tensor s. */
export const scale = <P extends Params>(a: P, s: number | tf.Scalar): P =>
  mapTree(a, (x) => tf.mul(x, s));
/** a + s·b. */
export const addScaled = <P extends Params>(a: P, s: number | tf.Scalar, b: Params): P =>
  zipTree(a, b, (x, y) => tf.add(x, tf.mul(y, s)));
/** Zeros shaped like each leaf of a. */
export const zerosLike = <P extends Params>(a: P): P => mapTree(a, (x) => tf.zerosLike(x));
/** Ones shaped like each leaf of a. */
export const onesLike = <P extends Params>(a: P): P => mapTree(a, (x) => tf.onesLike(x));
/** The global inner product ⟨a, b⟩ = Σ over all leaves (one scalar for the whole tree). */
export const vdot = (a: Params, b: Params): tf.Scalar => {
  const la = leaves(a), lb = leaves(b);
  if (la.length !== lb.length) {
    throw new RangeError(`vdot: tree structures differ: ${la.length} vs ${lb.length} leaves`);
  }
  const parts = la.map((x, i) => tf.sum(tf.mul(x, lb[i])));
  return (parts.length === 1 ? parts[0] : tf.addN(parts)) as tf.Scalar;
};
/** The global 2-norm ‖a‖. */
export const norm = (a: Params): tf.Scalar => tf.sqrt(vdot(a, a));
/** Number of scalars in the tree. */
export const size = (a: Params): number => leaves(a).reduce((n, x) => n + x.size, 0);
/** All leaves flattened and concatenated into one vector. */
export const toVector = (a: Params): tf.Tensor1D => {
  const ls = leaves(a).map((x) => tf.reshape(x, [-1]));
  return (ls.length === 1 ? ls[0] : tf.concat(ls, 0)) as tf.Tensor1D;
};
/** Splits a vector back into a tree shaped like `like` (the inverse of `toVector`). */
export const fromVector = <P extends Params>(like: P, v: tf.Tensor): P => {
  const ls = leaves(like);
  const parts = tf.split(tf.reshape(v, [-1]), ls.map((x) => x.size));
  return unflatten(like, parts.map((p, i) => tf.reshape(p, ls[i].shape)));
};
/** Disposes every leaf. */
export const disposeTree = (a: Params): void => leaves(a).forEach((x) => x.dispose());
/** Keeps every leaf alive beyond the enclosing `tf.tidy`. */
export const keepTree = <P extends Params>(a: P): P => {
  leaves(a).forEach((x) => tf.keep(x));
  return a;
};

/** `tf.tidy` for a function returning a parameter tree (keeps the tree's leaves). */
export const tidyTree = <P extends Params>(fn: () => P): P =>
  tf.tidy(() => fn() as unknown as tf.TensorContainer) as unknown as P;
