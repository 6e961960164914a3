/**
 * K-FAC (Martens & Grosse 2015) for dense and conv layers (KFC, Grosse & Martens 2016), as the
 * baseline of the original (docs/algorithm.md#presets): tensorflow/kfac's
 * `PeriodicInvCovUpdateKfacOpt` with a categorical predictive distribution on the logits, lr 0.1,
 * damping 1, cov_ema_decay 0.99, invert_every 10, cov_update_every 1 and KfacOptimizer's "regular"
 * momentum 0.9.
 *
 * One step t (state.step = t):
 * 1. if t mod covUpdateEvery = 0: sample ŷ_b ~ softmax(z_b) once per example (`ctx.key`), take
 *    u_b = ∇_{z_b}[−log softmax(z_b)_{ŷ_b}] = softmax(z_b) − onehot(ŷ_b) (the *per-example* loss
 *    gradient: B times `softmaxCrossEntropy.gradient(z, ŷ)`), back-propagate it through the
 *    linearization and update, for each layer (`kfac/layers.ts`),
 *      A ← EMA of āᵀā / M,   G ← EMA of gᵀg / M   (M = B·T rows, T locations per example),
 *    and for every other parameter leaf θ the diagonal F ← EMA of (Σ_b ∂ℓ_b/∂θ)² / B
 *    (tensorflow/kfac's NaiveDiagonalFactor, the "square the sum" estimator);
 * 2. if t mod invertEvery = 0: with λ' = λ / T (NORMALIZE_DAMPING_POWER 1) and the trace-norm
 *    π = √((tr A / dim A) / (tr G / dim G)) (Martens & Grosse 2015 §6.3), store
 *      A⁻¹ := (A + π√λ' I)⁻¹,   G⁻¹ := (G + √λ'/π I)⁻¹   (float64 Cholesky, `kfac/spd.ts`);
 * 3. precondition the incoming gradient ∇ (of the mean loss): per layer, with ∇ as the matrix
 *    [∇W as [rows, out]; ∇bᵀ], Δ = A⁻¹·∇·G⁻¹ / T, i.e. (T·Â ⊗ Ĝ)⁻¹·vec ∇ with the damped factors
 *    Â, Ĝ (T·Â ⊗ Ĝ = T·A ⊗ G + λI + the factored-Tikhonov cross terms); per diagonal leaf
 *    Δ = ∇ / (F + λ);
 * 4. "regular" momentum: v ← μ·v + Δ; the update (added to θ) is −lr·v.
 *
 * Scale convention: A and G are expectations over the batch (and locations) of per-example
 * quantities, so for a dense layer A ⊗ G estimates the Fisher of the *mean* loss, E_b[J_bᵀ H_b J_b]
 * (which is what the gradient ∇ is the gradient of), exactly as tensorflow/kfac normalizes it. The
 * EMAs are zero-debiased (tensorflow/kfac's ZERO_DEBIAS): after the first update a factor equals
 * that batch's statistics, after the second (d·S₁ + S₂)/(1 + d), and so on.
 *
 * Big factors: a factor with n > `maxFactorDim` (default 2048) is inverted block-diagonally, with
 * ⌈n / maxFactorDim⌉ contiguous diagonal blocks (its off-diagonal blocks dropped). For the
 * CUDA-convnet that is only local3's 4097-dim A (3 blocks of 1366); conv2's 1601-dim A stays exact.
 *
 * What the update needs: the recorded ops of a linearization at (θ_t, B_t) and its
 * `vjpWithOpCotangents`. It reads them from `ctx.curvature` when the curvature exposes them (see
 * `LayerTaps`); otherwise it linearizes `ctx.model` at (`ctx.params`, `ctx.batch.x`) itself (one
 * extra forward pass per covariance update; the backward pass of the sampled loss is needed either
 * way, as in tensorflow/kfac). Not implemented from tensorflow/kfac: norm_constraint, the "adam" and
 * "qmodel" momentum types, adaptive damping, and the SUA/diagonal conv approximations.
 * @module
 */
import { tf } from "../_deps.ts";
import { leaves, type Params, unflatten, zerosLike } from "../tree.ts";
import { foldIn, type Key, keyFromSeed, uniform } from "../prng.ts";
import { type Linearization, linearize } from "../../ops/interpret.ts";
import type { ModelFn } from "../curvature/gauss_newton.ts";
import { disposeState, type GradientTransformation, type UpdateContext } from "./base.ts";
import {
  aDim,
  findLayers,
  type KfacLayout,
  type KronLayer,
  layerCotangents,
  layerInputs,
  secondMoment,
} from "./kfac/layers.ts";
import { dampedInverse } from "./kfac/spd.ts";

export type { KfacLayout, KronLayer } from "./kfac/layers.ts";

/** Settings; the defaults are the original's (docs/algorithm.md#presets). */
export interface KfacOptions {
  /** η, the learning rate. */
  readonly learningRate?: number;
  /** Tikhonov damping λ. */
  readonly damping?: number;
  /** Decay d of the factors' (zero-debiased) moving averages. */
  readonly covEmaDecay?: number;
  /** Steps between recomputations of the factor inverses. */
  readonly invertEvery?: number;
  /** Steps between covariance updates. */
  readonly covUpdateEvery?: number;
  /** Momentum μ ("regular": v ← μ·v + Δ). */
  readonly momentum?: number;
  /** Largest factor inverted exactly; bigger ones are inverted block-diagonally. */
  readonly maxFactorDim?: number;
  /** Sampling key when `ctx.key` is absent: foldIn(keyFromSeed(seed), step). */
  readonly seed?: number;
  /** Registers the layers at `init` (from `kfacLayout`) so the state's structure never changes. */
  readonly layout?: KfacLayout;
}

/** The original's defaults (docs/algorithm.md#presets). */
export const KFAC_DEFAULTS = {
  learningRate: 0.1,
  damping: 1,
  covEmaDecay: 0.99,
  invertEvery: 10,
  covUpdateEvery: 1,
  momentum: 0.9,
  maxFactorDim: 2048,
  seed: 0,
} as const;

/** One Kronecker block: its layer, factors A, G and their damped inverses. */
export interface KronBlockState {
  /** Parameter leaf of the kernel. */
  readonly kernel: number;
  /** Parameter leaf of the bias, or −1. */
  readonly bias: number;
  /** Rows of the kernel as a matrix (A is (rows + [bias]) square). */
  readonly rows: number;
  /** Output units or channels (G is out × out). */
  readonly out: number;
  /** Locations per example where the kernel is applied (1 for a dense layer). */
  readonly locations: number;
  /** A, the moving average of the input activations' second moment. */
  readonly a: tf.Tensor2D;
  /** G, the moving average of the output cotangents' second moment. */
  readonly g: tf.Tensor2D;
  /** (A + π·√λ′·I)⁻¹, the damped inverse of A (λ′ = λ/T). */
  readonly aInv: tf.Tensor2D;
  /** (G + √λ′/π·I)⁻¹, the damped inverse of G. */
  readonly gInv: tf.Tensor2D;
}

/** One diagonal block: a parameter leaf and its diagonal Fisher estimate (shaped like the leaf). */
export interface DiagBlockState {
  /** The parameter leaf. */
  readonly leaf: number;
  /** Its diagonal Fisher estimate, shaped like the leaf. */
  readonly f: tf.Tensor;
}

/** K-FAC's state: numbers and tensors only. */
export interface KfacState<P extends Params = Params> {
  /** Updates done so far. */
  readonly step: number;
  /** Total weight of the moving averages, 1 − dᵏ after k covariance updates (0: none yet). */
  readonly emaWeight: number;
  /** The blocks; null until the layers are registered (first update, or `options.layout`). */
  readonly blocks: {
    readonly kron: readonly KronBlockState[];
    readonly diag: readonly DiagBlockState[];
  } | null;
  /** Momentum buffer v, shaped like the parameters. */
  readonly velocity: P;
  /**
   * This step's factors and inverses, computed by `prepare` (the host inversion, read
   * asynchronously) and consumed by the next `update`; never in a state `update` returns.
   */
  readonly pending?: {
    readonly blocks: NonNullable<KfacState["blocks"]>;
    readonly emaWeight: number;
  };
}

/**
 * What K-FAC reads from a linearization at (θ, B): the logits, the recorded ops and
 * Jᵀu with the cotangent reaching each op. `Linearization` has all three (its `output` is the
 * logits); `GaussNewton` has `logits` and would need `ops` and `vjpWithOpCotangents` passed through.
 */
export interface LayerTaps<P extends Params> {
  /** z, the logits. */
  readonly logits: tf.Tensor;
  /** The recorded ops of the linearization. */
  readonly ops: Linearization<P>["ops"];
  /** Jᵀ·u, and the cotangent reaching each recorded op's output. */
  vjpWithOpCotangents: Linearization<P>["vjpWithOpCotangents"];
}

/** Whether a curvature object also exposes the linearization's taps. */
export const hasLayerTaps = <P extends Params>(c: unknown): c is LayerTaps<P> => {
  const o = c as Partial<LayerTaps<P>> | null | undefined;
  return !!o && o.logits instanceof tf.Tensor && Array.isArray(o.ops) &&
    typeof o.vjpWithOpCotangents === "function";
};

/** Taps of a fresh linearization of `model` at (params, x); the caller disposes it. */
const linearizeTaps = <P extends Params>(
  model: ModelFn<P>,
  params: P,
  x: tf.Tensor,
): LayerTaps<P> & { dispose(): void } => {
  const lin = linearize((nn, p: P) => model(nn, p, x), params);
  return {
    logits: lin.output,
    ops: lin.ops,
    vjpWithOpCotangents: lin.vjpWithOpCotangents,
    dispose: lin.dispose,
  };
};

const layoutOf = <P extends Params>(taps: LayerTaps<P>, params: P): KfacLayout => {
  const z = taps.logits;
  if (z.rank !== 2) throw new RangeError(`kfac: logits must be [B, C], got [${z.shape}]`);
  return findLayers(taps.ops, leaves(params).map((p) => p.shape), z.shape[0], z.id);
};

/** The layers K-FAC registers for `model` (one linearization at (params, x), then disposed). */
export const kfacLayout = <P extends Params>(
  model: ModelFn<P>,
  params: P,
  x: tf.Tensor,
): KfacLayout => {
  const taps = linearizeTaps(model, params, x);
  try {
    return layoutOf(taps, params);
  } finally {
    taps.dispose();
  }
};

/**
 * One sample ŷ_b ~ Categorical(softmax(z_b)) per row of the logits z ∈ ℝ^{B×C}, as one-hot rows:
 * inverse-CDF sampling on the device (no host read) with `uniform(key, B)` drawn on the host, so
 * deterministic per key. ŷ_b is the first class whose cumulative weight Σ_{j≤c} e^{z_j − max z}
 * exceeds u_b times the total (float32: only a u_b within rounding of a class boundary can pick
 * differently on another backend).
 */
export const sampleCategorical = (logits: tf.Tensor, key: Key): tf.Tensor2D => {
  const [b, c] = logits.shape;
  const r = Float32Array.from(uniform(key, b));
  return tf.tidy(() => {
    const cum = tf.cumsum(tf.exp(tf.sub(logits, tf.max(logits, 1, true))), 1);
    const target = tf.mul(tf.tensor2d(r, [b, 1]), tf.slice(cum, [0, c - 1], [b, 1]));
    // Classes whose cumulative weight is ≤ the target come before the pick (cum is nondecreasing).
    const before = tf.sum(tf.cast(tf.lessEqual(cum, target), "int32"), 1);
    const pick = tf.minimum(before, tf.scalar(c - 1, "int32")) as tf.Tensor1D;
    return tf.cast(tf.oneHot(pick, c), "float32") as tf.Tensor2D;
  });
};

/** The trace-norm π = √((tr A / dim A) / (tr G / dim G)) (1 where a trace is not positive). */
export const piTraceNorm = (
  a: ArrayLike<number>,
  na: number,
  g: ArrayLike<number>,
  ng: number,
): number => {
  let ta = 0, tg = 0;
  for (let i = 0; i < na; i++) ta += a[i * na + i];
  for (let i = 0; i < ng; i++) tg += g[i * ng + i];
  const pi = Math.sqrt((ta / na) / (tg / ng));
  return ta > 0 && tg > 0 && Number.isFinite(pi) ? pi : 1;
};

/** Fresh statistics of one covariance update. Owned by the caller. */
interface Statistics {
  readonly kron: { readonly a: tf.Tensor2D; readonly g: tf.Tensor2D }[];
  readonly diag: tf.Tensor[];
}

/**
 * The batch statistics of the sampled Fisher: per layer āᵀā/M and gᵀg/M with g the cotangents of
 * u = softmax(z) − onehot(ŷ); per diagonal leaf (Σ_b ∂ℓ_b/∂θ)²/B.
 */
const statistics = <P extends Params>(
  taps: LayerTaps<P>,
  layout: KfacLayout,
  key: Key,
): Statistics => {
  const out = tf.tidy(() => {
    const z = taps.logits;
    const u = tf.sub(tf.softmax(z), sampleCategorical(z, key));
    const { grads, cotangents } = taps.vjpWithOpCotangents(u);
    const gl = leaves(grads);
    const kron = layout.kron.map((l) => {
      const op = taps.ops[l.op];
      return {
        a: secondMoment(layerInputs(op, l)),
        g: secondMoment(layerCotangents(op, cotangents[l.op], l)),
      };
    });
    const diag = layout.diag.map((i) => tf.div(tf.square(gl[i]), z.shape[0]));
    return { kron, diag } as unknown as tf.TensorContainer;
  });
  return out as unknown as Statistics;
};

/** Zero-debiased EMA: (d·w·old + (1 − d)·new) / (d·w + 1 − d), with w the old total weight. */
const ema = (old: tf.Tensor, fresh: tf.Tensor, d: number, w: number): tf.Tensor =>
  tf.tidy(() => {
    const total = d * w + (1 - d);
    return tf.add(tf.mul(old, (d * w) / total), tf.mul(fresh, (1 - d) / total));
  });

/** A layer's description without its op index (what a Kronecker block stores). */
const layerFields = (
  { kernel, bias, rows, out, locations }: Omit<KronLayer, "op">,
): Omit<KronLayer, "op"> => ({ kernel, bias, rows, out, locations });

const sameLayout = (blocks: NonNullable<KfacState["blocks"]>, layout: KfacLayout): boolean =>
  blocks.kron.length === layout.kron.length && blocks.diag.length === layout.diag.length &&
  blocks.kron.every((b, i) =>
    JSON.stringify(layerFields(b)) === JSON.stringify(layerFields(layout.kron[i]))
  ) && blocks.diag.every((b, i) => b.leaf === layout.diag[i]);

/** Zero factors and inverses for a layout (tensorflow/kfac initializes both at zero). */
const zeroBlocks = (layout: KfacLayout, params: Params): NonNullable<KfacState["blocks"]> => {
  const ls = leaves(params);
  return {
    kron: layout.kron.map((l) => {
      const n = aDim(l);
      return {
        ...layerFields(l),
        a: tf.zeros([n, n]),
        g: tf.zeros([l.out, l.out]),
        aInv: tf.zeros([n, n]),
        gInv: tf.zeros([l.out, l.out]),
      };
    }),
    diag: layout.diag.map((i) => ({ leaf: i, f: tf.zerosLike(ls[i]) })),
  };
};

/** (A + π√λ′ I)⁻¹ and (G + √λ′/π I)⁻¹ with λ′ = λ/T, in float64 on the downloaded factors. */
export const dampedFactorInverses = (
  a: ArrayLike<number>,
  g: ArrayLike<number>,
  na: number,
  ng: number,
  damping: number,
  locations: number,
  maxFactorDim = Infinity,
): { readonly aInv: Float64Array; readonly gInv: Float64Array; readonly pi: number } => {
  for (const [name, m] of [["A", a], ["G", g]] as const) {
    for (let i = 0; i < m.length; i++) {
      if (!Number.isFinite(m[i])) throw new Error(`kfac: factor ${name} has non-finite entries`);
    }
  }
  const pi = piTraceNorm(a, na, g, ng);
  const r = Math.sqrt(damping / locations);
  return {
    aInv: dampedInverse(a, na, pi * r, maxFactorDim),
    gInv: dampedInverse(g, ng, r / pi, maxFactorDim),
    pi,
  };
};

/** The preconditioned direction Δ for every leaf (Kronecker blocks and diagonal blocks). */
const precondition = <P extends Params>(
  grads: P,
  blocks: NonNullable<KfacState["blocks"]>,
  damping: number,
): P =>
  tf.tidy(() => {
    const gl = leaves(grads);
    const out: tf.Tensor[] = gl.map(() => null as unknown as tf.Tensor);
    for (const b of blocks.kron) {
      const w = tf.reshape(gl[b.kernel], [b.rows, b.out]);
      const m = b.bias >= 0 ? tf.concat([w, tf.reshape(gl[b.bias], [1, b.out])], 0) : w;
      const d = tf.mul(tf.matMul(tf.matMul(b.aInv, m), b.gInv), 1 / b.locations);
      if (b.bias >= 0) {
        out[b.kernel] = tf.reshape(tf.slice(d, [0, 0], [b.rows, b.out]), gl[b.kernel].shape);
        out[b.bias] = tf.reshape(tf.slice(d, [b.rows, 0], [1, b.out]), gl[b.bias].shape);
      } else {
        out[b.kernel] = tf.reshape(d, gl[b.kernel].shape);
      }
    }
    for (const b of blocks.diag) out[b.leaf] = tf.div(gl[b.leaf], tf.add(b.f, damping));
    return unflatten(grads, out) as unknown as tf.TensorContainer;
  }) as unknown as P;

/**
 * K-FAC as a gradient transformation. `update(g, state, ctx)` needs `ctx.params` and either a
 * `ctx.curvature` with layer taps (`hasLayerTaps`) or `ctx.model` and `ctx.batch`; `ctx.key` draws
 * the sampled targets. The returned state shares unchanged tensors with the old one (dispose the
 * old state with `disposeState(old, new)`).
 */
export const kfac = <P extends Params>(
  options: KfacOptions = {},
): GradientTransformation<KfacState<P>, P> => {
  const o = { ...KFAC_DEFAULTS, ...options };
  for (const k of ["invertEvery", "covUpdateEvery"] as const) {
    if (!(Number.isInteger(o[k]) && o[k] >= 1)) {
      throw new RangeError(`kfac: ${k} must be a positive integer`);
    }
  }
  if (!(o.covEmaDecay >= 0 && o.covEmaDecay < 1)) {
    throw new RangeError("kfac: covEmaDecay must be in [0, 1)");
  }
  if (!(o.damping > 0)) throw new RangeError("kfac: damping must be positive");
  type Blocks = NonNullable<KfacState["blocks"]>;
  /** The covariance part of step `state.step`: its factors (EMA) and EMA weight, on the device. */
  const covariances = (
    state: KfacState<P>,
    ctx: UpdateContext<P>,
  ): { blocks: KfacState["blocks"]; emaWeight: number } => {
    const t = state.step;
    let blocks = state.blocks;
    let emaWeight = state.emaWeight;

    if (blocks === null || t % o.covUpdateEvery === 0) {
      // Taps from ctx.curvature belong to the caller; only a linearization made here is freed.
      let taps: LayerTaps<P>;
      let release = () => {};
      if (hasLayerTaps<P>(ctx.curvature)) taps = ctx.curvature;
      else if (ctx.model && ctx.batch) {
        const own = linearizeTaps(ctx.model, ctx.params, ctx.batch.x);
        taps = own;
        release = own.dispose;
      } else {
        throw new Error(
          "kfac: needs ctx.curvature exposing ops and vjpWithOpCotangents, or ctx.model and " +
            "ctx.batch",
        );
      }
      try {
        const layout = layoutOf(taps, ctx.params);
        const old = blocks ?? zeroBlocks(layout, ctx.params);
        if (!sameLayout(old, layout)) {
          if (blocks === null) tf.dispose(old as unknown as tf.TensorContainer);
          throw new Error("kfac: the model's layers differ from those registered in the state");
        }
        const key = ctx.key ?? foldIn(keyFromSeed(o.seed), t);
        const s = statistics(taps, layout, key);
        const d = o.covEmaDecay, w = emaWeight;
        const next = {
          kron: old.kron.map((b, i) => {
            const r = {
              ...b,
              a: ema(b.a, s.kron[i].a, d, w) as tf.Tensor2D,
              g: ema(b.g, s.kron[i].g, d, w) as tf.Tensor2D,
            };
            tf.dispose([s.kron[i].a, s.kron[i].g]);
            return r;
          }),
          diag: old.diag.map((b, i) => {
            const r = { ...b, f: ema(b.f, s.diag[i], d, w) };
            s.diag[i].dispose();
            return r;
          }),
        };
        if (blocks === null) {
          // Fresh zero blocks were never part of any state: only the inverses survive.
          old.kron.forEach((b) => tf.dispose([b.a, b.g]));
          old.diag.forEach((b) => b.f.dispose());
        }
        blocks = next;
        emaWeight = d * w + (1 - d);
      } finally {
        release();
      }
    }
    return { blocks, emaWeight };
  };

  /**
   * The inversion part: fresh damped inverses of `current`'s factors from their values (`values[i]`
   * = [A, G] of block i), in float64 on the host. On failure this step's new factors are freed.
   */
  const withInverses = (
    current: Blocks,
    values: readonly (readonly [ArrayLike<number>, ArrayLike<number>])[],
    stored: KfacState["blocks"],
  ): Blocks => {
    let inverses: ReturnType<typeof dampedFactorInverses>[];
    try {
      inverses = current.kron.map((b, i) =>
        dampedFactorInverses(
          values[i][0],
          values[i][1],
          aDim(b),
          b.out,
          o.damping,
          b.locations,
          o.maxFactorDim,
        )
      );
    } catch (e) {
      disposeState(current, stored); // this step's new factors
      throw e;
    }
    const fresh = current.kron.map((b, i) => ({
      ...b,
      aInv: tf.tensor2d(Float32Array.from(inverses[i].aInv), [aDim(b), aDim(b)]),
      gInv: tf.tensor2d(Float32Array.from(inverses[i].gInv), [b.out, b.out]),
    }));
    // Inverses of never-stored zero blocks (first update without a layout) are not in `state`.
    if (stored === null) current.kron.forEach((b) => tf.dispose([b.aInv, b.gInv]));
    return { kron: fresh, diag: current.diag };
  };

  return {
    init: (params) => ({
      step: 0,
      emaWeight: 0,
      blocks: options.layout ? zeroBlocks(options.layout, params) : null,
      velocity: zerosLike(params),
    }),
    // A step that inverts: its factors, read with one await, and their inverses, ahead of `update`.
    prepare: async (state, ctx) => {
      if (state.pending || state.step % o.invertEvery !== 0) return state;
      const { blocks, emaWeight } = covariances(state, ctx);
      const current = blocks!;
      let values: [Float32Array, Float32Array][];
      try {
        values = await Promise.all(
          current.kron.map(async (b) =>
            [await b.a.data(), await b.g.data()] as [Float32Array, Float32Array]
          ),
        );
      } catch (e) {
        disposeState(current, state.blocks);
        throw e;
      }
      return {
        ...state,
        pending: { blocks: withInverses(current, values, state.blocks), emaWeight },
      };
    },
    update: (grads, state, ctx: UpdateContext<P>) => {
      const t = state.step;
      let blocks: Blocks, emaWeight: number;
      if (state.pending) ({ blocks, emaWeight } = state.pending);
      else {
        // Without `prepare` (direct callers on backends that read synchronously): the same
        // covariance update and, every invertEvery steps, the inversion on synchronously read
        // factors. The training step always prepares (tests/no_sync_reads_test.ts).
        const c = covariances(state, ctx);
        blocks = c.blocks!;
        emaWeight = c.emaWeight;
        if (t % o.invertEvery === 0) {
          blocks = withInverses(
            blocks,
            blocks.kron.map((b) => [b.a.dataSync(), b.g.dataSync()] as const),
            state.blocks,
          );
        }
      }

      const direction = precondition(grads, blocks, o.damping);
      const mu = o.momentum, lr = o.learningRate;
      const [velocity, updates] = tf.tidy(() => {
        const dl = leaves(direction), vl = leaves(state.velocity);
        const v = dl.map((x, i) => tf.add(tf.mul(vl[i], mu), x));
        return [v, v.map((x) => tf.mul(x, -lr))];
      });
      tf.dispose(leaves(direction));
      return [
        unflatten(grads, updates),
        { step: t + 1, emaWeight, blocks, velocity: unflatten(state.velocity, velocity) },
      ];
    },
  };
};
