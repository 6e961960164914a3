/**
 * The two interpreters of a model written against `Nn`:
 * - `plain`: runs the primal rules only; TF.js's tape records them, so `tf.grads` works through it.
 * - `linearize`: runs the primals once and records, per op, the saved primals and residuals. Then
 *   `jvp(v)` replays the R-forward rules (J·v, docs/algorithm.md#gauss-newton-products) and
 *   `vjp(u)` replays the transposes in reverse order (Jᵀ·u), both without another forward pass and
 *   without TF.js's tape, so they can run inside a `tf.customGrad`
 *   (docs/tfjs-notes.md#no-tape-inside-customgrad). Inputs that are not parameters (the data) carry
 *   symbolic zero tangents and cost nothing.
 * @module
 */
import { tf } from "../lib/_deps.ts";
import { leaves, type Params, tidyTree, unflatten } from "../lib/tree.ts";
import type { Apply, OpDef, Tangent } from "./types.ts";
import { makeNn, type Nn } from "./nn.ts";
import { addT } from "./_tangent.ts";

/** The plain interpreter: primal rules only. */
export const plain: Nn = makeNn((op, xs, attrs) => op.primal(xs, attrs));

/** What a model function may return: logits, or logits plus auxiliary tensors (e.g. BN statistics). */
export type ModelOutput = tf.Tensor | {
  readonly output: tf.Tensor;
  readonly aux: tf.TensorContainer;
};

/** A recorded linearization of f at fixed parameters (and fixed data captured by f). */
export interface Linearization<P extends Params> {
  /** f's output at the parameters. Owned by the linearization. */
  readonly output: tf.Tensor;
  /** f's auxiliary outputs, if it returned any. Owned by the linearization. */
  readonly aux: tf.TensorContainer;
  /** Number of recorded ops (those that depend on a parameter). */
  readonly numOps: number;
  /** J·v: the directional derivative of the output along the parameter tangent v. */
  jvp(v: P): tf.Tensor;
  /** Jᵀ·u: the parameter cotangent of an output cotangent u. */
  vjp(u: tf.Tensor): P;
  /**
   * The recorded ops, in execution order: name, attributes, saved inputs, and for each input the
   * parameter leaf it is (index into `leaves(params)`) or −1. For curvature blocks such as K-FAC's.
   */
  readonly ops: readonly RecordedOp[];
  /** Jᵀ·u plus the cotangent that reached each recorded op's output (null where none did). */
  vjpWithOpCotangents(u: tf.Tensor): { readonly grads: P; readonly cotangents: readonly Tangent[] };
  /** Frees every tensor the linearization saved. */
  dispose(): void;
}

/** A read-only view of one recorded op. */
export interface RecordedOp {
  /** The op's name (its `OpDef`'s). */
  readonly name: string;
  /** The op's attributes. */
  readonly attrs: unknown;
  /** Its input values. */
  readonly inputs: readonly tf.Tensor[];
  /** Its output value. */
  readonly output: tf.Tensor;
  /** For each input, the parameter leaf it is (−1 when it is not a parameter). */
  readonly paramLeaf: readonly number[];
}

interface Node {
  // deno-lint-ignore no-explicit-any
  readonly op: OpDef<any, any>;
  readonly ins: readonly number[]; // slot per input, −1 for constants
  readonly xs: readonly tf.Tensor[];
  readonly y: tf.Tensor;
  readonly attrs: unknown;
  readonly res: unknown;
  readonly out: number;
}

const collectTensors = (c: unknown, into: tf.Tensor[]): void => {
  if (c instanceof tf.Tensor) into.push(c);
  else if (Array.isArray(c)) c.forEach((x) => collectTensors(x, into));
  else if (c && typeof c === "object") Object.values(c).forEach((x) => collectTensors(x, into));
};

/**
 * Linearizes f at `params`. f must route every parameter-dependent value through its `nn`.
 * Tensors f creates are kept until `dispose()`; `params` and tensors f captures stay the caller's,
 * who must keep them alive as long as the linearization is used.
 */
export const linearize = <P extends Params>(
  f: (nn: Nn, params: P) => ModelOutput,
  params: P,
): Linearization<P> => {
  const paramLeaves = leaves(params);
  const probe = tf.scalar(0);
  const firstOwnedId = probe.id;
  probe.dispose();

  const nodes: Node[] = [];
  const slotOf = new Map<number, number>(); // tensor id → slot
  paramLeaves.forEach((p, i) => {
    if (slotOf.has(p.id)) {
      throw new Error(`linearize: parameter leaf ${i} appears twice in the tree`);
    }
    slotOf.set(p.id, i);
  });
  let slots = paramLeaves.length;

  const apply: Apply = (op, xs, attrs) => {
    const y = op.primal(xs, attrs);
    const ins = xs.map((x) => slotOf.get(x.id) ?? -1);
    if (ins.every((i) => i < 0)) return y; // depends on no parameter: a constant
    const res = op.residuals ? op.residuals(xs, y, attrs) : undefined;
    const out = slots++;
    nodes.push({ op, ins, xs, y, attrs, res, out });
    slotOf.set(y.id, out);
    return y;
  };

  let output!: tf.Tensor;
  let aux: tf.TensorContainer = [];
  const kept = tf.tidy(() => {
    const r = f(makeNn(apply), params);
    if (r instanceof tf.Tensor) output = r;
    else {
      output = r.output;
      aux = r.aux;
    }
    const keep: tf.Tensor[] = [output];
    collectTensors(aux, keep);
    for (const n of nodes) {
      keep.push(...n.xs, n.y);
      collectTensors(n.res, keep);
    }
    return [...new Set(keep)].filter((t) => t.id >= firstOwnedId);
  });
  // Owned until dispose(), even inside an enclosing tidy (e.g. the forward scope of tf.grads,
  // which ends before the backward pass that may still call jvp/vjp through a customGrad).
  kept.forEach((t) => tf.keep(t));
  const outSlot = slotOf.get(output.id) ?? -1;
  let disposed = false;
  const alive = () => {
    if (disposed) throw new Error("linearization used after dispose()");
  };

  /** Replays the transposes in reverse order from output cotangent u (caller provides the scope). */
  const backward = (u: tf.Tensor): { grads: P; ct: Tangent[] } => {
    alive();
    if (!tf.util.arraysEqual(u.shape, output.shape)) {
      throw new RangeError(
        `vjp: cotangent shape [${u.shape}] differs from output [${output.shape}]`,
      );
    }
    const ct: Tangent[] = new Array(slots).fill(null);
    if (outSlot >= 0) ct[outSlot] = u;
    for (let k = nodes.length - 1; k >= 0; k--) {
      const n = nodes[k];
      const c = ct[n.out];
      if (c === null) continue;
      const needs = n.ins.map((i) => i >= 0);
      const parts = n.op.transpose(n.xs, n.y, c, needs, n.attrs, n.res);
      n.ins.forEach((i, j) => {
        if (i >= 0 && parts[j]) ct[i] = addT(ct[i], parts[j]);
      });
    }
    const grads = unflatten(params, paramLeaves.map((p, i) => ct[i] ?? tf.zerosLike(p))) as P;
    return { grads, ct };
  };

  return {
    output,
    aux,
    numOps: nodes.length,
    jvp: (v) =>
      tf.tidy(() => {
        alive();
        const vs = leaves(v);
        if (vs.length !== paramLeaves.length) {
          throw new RangeError(
            `jvp: tangent has ${vs.length} leaves, parameters ${paramLeaves.length}`,
          );
        }
        const tan: Tangent[] = new Array(slots).fill(null);
        vs.forEach((t, i) => {
          if (!tf.util.arraysEqual(t.shape, paramLeaves[i].shape)) {
            throw new RangeError(
              `jvp: tangent leaf ${i} has shape [${t.shape}], parameter [${paramLeaves[i].shape}]`,
            );
          }
          tan[i] = t;
        });
        for (const n of nodes) {
          const dxs = n.ins.map((i) => (i < 0 ? null : tan[i]));
          tan[n.out] = dxs.every((d) => d === null)
            ? null
            : n.op.jvp(n.xs, n.y, dxs, n.attrs, n.res);
        }
        const r = outSlot < 0 ? null : tan[outSlot];
        return r ?? tf.zerosLike(output);
      }),
    vjp: (u) => tidyTree(() => backward(u).grads),
    ops: nodes.map((n) => ({
      name: n.op.name,
      attrs: n.attrs,
      inputs: n.xs,
      output: n.y,
      paramLeaf: n.ins.map((i) => (i < paramLeaves.length ? i : -1)),
    })),
    vjpWithOpCotangents: (u) => {
      let reached: number[] = [];
      const out = tf.tidy(() => {
        const { grads, ct } = backward(u);
        reached = nodes.flatMap((n, k) => (ct[n.out] === null ? [] : [k]));
        return {
          grads,
          cts: reached.map((k) => ct[nodes[k].out]!),
        } as unknown as tf.TensorContainer;
      }) as unknown as { grads: P; cts: tf.Tensor[] };
      const cotangents: Tangent[] = nodes.map(() => null);
      reached.forEach((k, j) => (cotangents[k] = out.cts[j]));
      return { grads: out.grads, cotangents };
    },
    dispose: () => {
      if (disposed) return;
      disposed = true;
      kept.forEach((t) => t.dispose());
    },
  };
};
