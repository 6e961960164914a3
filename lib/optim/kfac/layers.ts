/**
 * K-FAC's layer registration and per-layer statistics, read from a recorded linearization
 * (`Linearization.ops`), as tensorflow/kfac's auto-registration reads them from the graph:
 * - a dense layer is a `matMul(a, W)` (no transposes) whose W is a parameter leaf [in, out];
 * - a conv layer is a `conv2d(x, W)` whose filter W is a parameter leaf [kh, kw, cin, cout];
 * - its bias is a parameter leaf b of shape [out] added by the one `add` that consumes the kernel's
 *   output (and nothing else does), folded in with a homogeneous coordinate ā = [a, 1];
 * - every other parameter leaf (batch-norm γ/β, shared weights, …) gets a diagonal block.
 * A layer's statistics are over its M = B·T rows (T locations per example: output pixels for conv,
 * rows per example for a dense applied to [B·T, in]): A = āᵀā / M and G = gᵀg / M (KFC's Ω and Γ,
 * Grosse & Martens 2016, eq. 23, with tensorflow/kfac's normalization; the block is T·(A ⊗ G)).
 * @module
 */
import { tf } from "../../_deps.ts";
import type { RecordedOp } from "../../../ops/interpret.ts";
import type { Tangent } from "../../../ops/types.ts";
import type { MatMulAttrs } from "../../../ops/linalg.ts";
import type { Conv2dAttrs } from "../../../ops/conv.ts";
import { extractPatches, windowGeometry } from "../../../ops/windows.ts";

/** A Kronecker-factored layer (numbers only, so it can live in optimizer state). */
export interface KronLayer {
  /** Index of the recorded op applying the kernel (matMul or conv2d). */
  readonly op: number;
  /** Parameter leaf of the kernel. */
  readonly kernel: number;
  /** Parameter leaf of the bias, or −1. */
  readonly bias: number;
  /** Rows of the kernel as a matrix: in (dense) or kh·kw·cin (conv); A is (rows + [bias]) square. */
  readonly rows: number;
  /** Output units or channels; G is out × out. */
  readonly out: number;
  /** Locations T per example where the kernel is applied (1 for a plain dense layer). */
  readonly locations: number;
}

/** Which leaves form Kronecker blocks and which get diagonal ones. */
export interface KfacLayout {
  readonly kron: readonly KronLayer[];
  /** Parameter leaves outside every Kronecker block, in leaf order. */
  readonly diag: readonly number[];
}

/** The A factor's dimension: kernel rows plus one for the homogeneous (bias) coordinate. */
export const aDim = (l: Pick<KronLayer, "rows" | "bias">): number => l.rows + (l.bias >= 0 ? 1 : 0);

const sameShape = (a: readonly number[], b: readonly number[]) =>
  a.length === b.length && a.every((d, i) => d === b[i]);

/**
 * Finds the dense and conv layers of a linearization. `leafShapes` are the parameter leaves'
 * shapes, `outputId` the id of the model's output tensor (an output consumed by nothing else cannot
 * take a bias), `batchSize` the B of the logits.
 */
export const findLayers = (
  ops: readonly RecordedOp[],
  leafShapes: readonly (readonly number[])[],
  batchSize: number,
  outputId: number,
): KfacLayout => {
  const uses = leafShapes.map(() => 0);
  const consumers = new Map<number, number[]>();
  ops.forEach((op, k) => {
    op.paramLeaf.forEach((l) => l >= 0 && uses[l]++);
    for (const x of new Set(op.inputs.map((t) => t.id))) {
      consumers.set(x, [...(consumers.get(x) ?? []), k]);
    }
  });

  /** The bias leaf of the `add` that alone consumes op k's output, or −1. */
  const biasOf = (k: number, out: number): number => {
    const y = ops[k].output;
    const cs = consumers.get(y.id) ?? [];
    if (cs.length !== 1 || y.id === outputId) return -1;
    const add = ops[cs[0]];
    if (add.name !== "add" || add.inputs.length !== 2) return -1;
    const self = add.inputs[0].id === y.id ? 0 : 1;
    if (add.inputs[self].id !== y.id || add.inputs[1 - self].id === y.id) return -1;
    const b = add.paramLeaf[1 - self];
    if (b < 0 || uses[b] !== 1 || !sameShape(leafShapes[b], [out])) return -1;
    return sameShape(add.output.shape, y.shape) ? b : -1;
  };

  const kron: KronLayer[] = [];
  ops.forEach((op, k) => {
    if (op.paramLeaf.length !== 2 || op.paramLeaf[0] >= 0) return;
    const w = op.paramLeaf[1];
    if (w < 0 || uses[w] !== 1) return;
    const [x, kernel] = op.inputs;
    if (op.name === "matMul") {
      const { transposeA, transposeB } = op.attrs as MatMulAttrs;
      if (transposeA || transposeB || x.rank !== 2 || kernel.rank !== 2) return;
      if (x.shape[0] % batchSize !== 0) return;
      const [rows, out] = kernel.shape;
      kron.push({
        op: k,
        kernel: w,
        bias: biasOf(k, out),
        rows,
        out,
        locations: x.shape[0] / batchSize,
      });
    } else if (op.name === "conv2d") {
      if (x.rank !== 4 || kernel.rank !== 4 || x.shape[0] !== batchSize) return;
      const [kh, kw, cin, out] = kernel.shape;
      const [, ho, wo] = op.output.shape;
      kron.push({
        op: k,
        kernel: w,
        bias: biasOf(k, out),
        rows: kh * kw * cin,
        out,
        locations: ho * wo,
      });
    }
  });
  const claimed = new Set(kron.flatMap((l) => (l.bias >= 0 ? [l.kernel, l.bias] : [l.kernel])));
  const diag = leafShapes.map((_, i) => i).filter((i) => !claimed.has(i));
  return { kron, diag };
};

/**
 * The layer's input rows ā ∈ ℝ^{M×(rows[+1])}: the dense input, or the conv input's im2col patches
 * (window offset major, channel minor, matching the kernel reshaped to [kh·kw·cin, cout]), with a
 * column of ones appended when the layer has a bias.
 */
export const layerInputs = (op: RecordedOp, l: KronLayer): tf.Tensor2D =>
  tf.tidy(() => {
    const x = op.inputs[0];
    let a: tf.Tensor2D;
    if (op.name === "conv2d") {
      const [kh, kw] = op.inputs[1].shape;
      const { strides, padding } = op.attrs as Conv2dAttrs;
      const x4 = x as tf.Tensor4D;
      const g = windowGeometry(x4.shape[1], x4.shape[2], [kh, kw], strides, padding);
      const patches = extractPatches(x4, g);
      const cat = patches.length === 1 ? patches[0] : tf.concat(patches, 3);
      a = tf.reshape(cat, [-1, l.rows]);
    } else {
      a = x as tf.Tensor2D;
    }
    return l.bias >= 0 ? tf.concat([a, tf.ones([a.shape[0], 1])], 1) : a;
  });

/** The cotangents at the layer's kernel output as rows g ∈ ℝ^{M×out} (zeros where none arrived). */
export const layerCotangents = (op: RecordedOp, ct: Tangent, l: KronLayer): tf.Tensor2D =>
  tf.tidy(() => tf.reshape(ct ?? tf.zerosLike(op.output), [-1, l.out]) as tf.Tensor2D);

/**
 * The second moment of the rows of x: (xᵀx)/M (tensorflow/kfac's compute_cov; the symmetrization
 * is done in float64 at inversion). xᵀ is materialized: TF.js wasm's matMul with transposeA is ~20×
 * slower than a transpose followed by a plain matMul (68 s vs 3 s for a [4096, 1601] x).
 */
export const secondMoment = (x: tf.Tensor2D): tf.Tensor2D =>
  tf.tidy(() => tf.div(tf.matMul(tf.transpose(x), x), x.shape[0]) as tf.Tensor2D);
