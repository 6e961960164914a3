/**
 * One MLHF direction written out plainly in float64 (arrays and loops), the independent reference
 * that pins `lib/optim/mlhf`: nothing here calls the library. The curvature is an explicit
 * symmetric matrix G (n × n) over the parameters' coordinates, flattened leaf by leaf.
 *
 * Per parameter kind k (its coordinates: its leaves in leaf order, each flattened), per step:
 *   λ = softplus(RNN_λ(tanh g, tanh r_prev, tanh x_prev)) + λ₀      (`fixed`: the scalar λ₀)
 *   x₀ = x_prev | g | RNN_x(tanh g, tanh r_prev, tanh x_prev)         (linear head)
 *   A v = G v + λ ⊙ v ;  r₀ = g − A x₀
 *   P = softplus(RNN_P(tanh g, tanh r₀, tanh x₀))                     (`none`: P ≡ 1)
 *   PCG (docs/algorithm.md#preconditioned-cg): y₀ = P ⊙ r₀, p₀ = y₀, ρ₀ = ⟨r₀, y₀⟩; at most K times while ‖r‖ ≥ ε:
 *     q = A p, α = ρ / max(⟨p, q⟩, ε), x += α p, r −= α q, y = P ⊙ r, ρ′ = ⟨r, y⟩,
 *     β = ρ′ / max(ρ, ε), ρ = ρ′, p = y + β p                          (ε = 1e-6)
 * Each network is TF 1.7's LSTMBlockCell twice (4 units: gates [i, ĉ, f, o] = [x, h]·W + b,
 * c′ = σ(i)·tanh(ĉ) + c·σ(f + 1), h′ = tanh(c′)·σ(o)) and a 4 → 1 dense head.
 * @module
 */

/** One network's weights: kernels row-major ([in + 4, 16] and [8, 16]), the head's [4] and bias. */
export interface RefNet {
  readonly layers: readonly {
    readonly kernel: ArrayLike<number>;
    readonly bias: ArrayLike<number>;
  }[];
  readonly headKernel: ArrayLike<number>;
  readonly headBias: number;
}

/** One network's state over n coordinates: c and h per layer, each n × 4 row-major. */
export interface RefLstmState {
  readonly c: Float64Array[];
  readonly h: Float64Array[];
}

export type RefRole = "lambda" | "precond" | "x0";

export interface RefOptions {
  readonly cgIterations: number;
  readonly lambda0: number;
  readonly xInit: "previous" | "gradient" | "rnn";
  readonly preconditioner: "rnn" | "none";
  readonly dampingMode: "rnn" | "fixed";
}

/** The problem's layout: each leaf's size and kind (leaf order). */
export interface RefLayout {
  readonly sizes: readonly number[];
  readonly kinds: readonly string[];
}

/** The state between steps: LSTM states per kind and role, x_prev and r_prev (length n). */
export interface RefState {
  readonly rnn: Record<string, Partial<Record<RefRole, RefLstmState>>>;
  readonly xPrev: Float64Array;
  readonly rPrev: Float64Array;
}

/** Everything one step computes (vectors over all n coordinates, leaf order). */
export interface RefStep {
  readonly lambda: Float64Array | number;
  readonly x0: Float64Array;
  readonly r0: Float64Array;
  readonly precond?: Float64Array;
  /** (x, r) after 0, 1, …, iterations CG iterations. */
  readonly iterates: readonly { readonly x: Float64Array; readonly r: Float64Array }[];
  readonly x: Float64Array;
  readonly r: Float64Array;
  readonly iterations: number;
  readonly next: RefState;
}

const UNITS = 4;
const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));
/** softplus(v) = log(1 + eᵛ), evaluated without overflow. */
export const softplus = (v: number): number =>
  v > 0 ? v + Math.log1p(Math.exp(-v)) : Math.log1p(Math.exp(v));

/** The coordinates of each kind (global indices), kinds in first-appearance order. */
export const kindCoordinates = (layout: RefLayout): Map<string, number[]> => {
  const out = new Map<string, number[]>();
  let offset = 0;
  layout.sizes.forEach((size, leaf) => {
    const kind = layout.kinds[leaf];
    if (!out.has(kind)) out.set(kind, []);
    for (let j = 0; j < size; j++) out.get(kind)!.push(offset + j);
    offset += size;
  });
  return out;
};

/** The zero LSTM state for n coordinates. */
export const refZeroLstm = (n: number): RefLstmState => ({
  c: [new Float64Array(n * UNITS), new Float64Array(n * UNITS)],
  h: [new Float64Array(n * UNITS), new Float64Array(n * UNITS)],
});

/** The zero state: zero LSTM states for the roles the options use, x_prev = r_prev = 0. */
export const refInitState = (layout: RefLayout, o: RefOptions): RefState => {
  const n = layout.sizes.reduce((a, b) => a + b, 0);
  const rnn: RefState["rnn"] = {};
  for (const [kind, coords] of kindCoordinates(layout)) {
    rnn[kind] = {};
    for (const role of refRoles(o)) rnn[kind][role] = refZeroLstm(coords.length);
  }
  return { rnn, xPrev: new Float64Array(n), rPrev: new Float64Array(n) };
};

/** The roles the options use. */
export const refRoles = (o: RefOptions): RefRole[] => [
  ...(o.dampingMode === "rnn" ? ["lambda" as const] : []),
  ...(o.preconditioner === "rnn" ? ["precond" as const] : []),
  ...(o.xInit === "rnn" ? ["x0" as const] : []),
];

/** One LSTMBlockCell on one coordinate's row: returns (c′, h′). */
const cell = (
  kernel: ArrayLike<number>,
  bias: ArrayLike<number>,
  x: readonly number[],
  c: readonly number[],
  h: readonly number[],
): [number[], number[]] => {
  const xh = [...x, ...h];
  const gate = (col: number) => {
    let s = bias[col];
    for (let row = 0; row < xh.length; row++) s += xh[row] * kernel[row * 4 * UNITS + col];
    return s;
  };
  const cNext: number[] = [], hNext: number[] = [];
  for (let u = 0; u < UNITS; u++) {
    const i = gate(u), j = gate(UNITS + u), f = gate(2 * UNITS + u), o = gate(3 * UNITS + u);
    cNext.push(sigmoid(i) * Math.tanh(j) + c[u] * sigmoid(f + 1));
    hNext.push(Math.tanh(cNext[u]) * sigmoid(o));
  }
  return [cNext, hNext];
};

/**
 * One step of a network over m coordinates: features[f][row] is input f of that row (already
 * squashed). Returns the head's linear output per row and the next state.
 */
export const refNetStep = (
  net: RefNet,
  state: RefLstmState,
  features: readonly (readonly number[])[],
): { out: Float64Array; state: RefLstmState } => {
  const m = features[0].length;
  const out = new Float64Array(m);
  const next = refZeroLstm(m);
  for (let row = 0; row < m; row++) {
    let x = features.map((f) => f[row]);
    net.layers.forEach((layer, l) => {
      const slice = (a: Float64Array) => Array.from(a.subarray(row * UNITS, (row + 1) * UNITS));
      const [c, h] = cell(layer.kernel, layer.bias, x, slice(state.c[l]), slice(state.h[l]));
      next.c[l].set(c, row * UNITS);
      next.h[l].set(h, row * UNITS);
      x = h;
    });
    let s = net.headBias;
    for (let u = 0; u < UNITS; u++) s += x[u] * net.headKernel[u];
    out[row] = s;
  }
  return { out, state: next };
};

const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};

/** G·v for an n × n row-major matrix. */
export const matVec = (G: ArrayLike<number>, v: ArrayLike<number>): Float64Array => {
  const n = v.length, out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let j = 0; j < n; j++) s += G[i * n + j] * v[j];
    out[i] = s;
  }
  return out;
};

/** One MLHF direction (see the module doc). `meta[kind][role]` holds the networks. */
export const refDirection = (
  meta: Record<string, Partial<Record<RefRole, RefNet>>>,
  state: RefState,
  g: ArrayLike<number>,
  G: ArrayLike<number>,
  layout: RefLayout,
  o: RefOptions,
): RefStep => {
  const n = g.length;
  const groups = kindCoordinates(layout);
  const rnn: RefState["rnn"] = {};
  for (const [kind, roles] of Object.entries(state.rnn)) rnn[kind] = { ...roles };
  /** Runs a role's network on every kind; returns post(out) scattered over all coordinates. */
  const run = (
    role: RefRole,
    inputs: readonly ArrayLike<number>[],
    post: (v: number) => number,
  ): Float64Array => {
    const all = new Float64Array(n);
    for (const [kind, coords] of groups) {
      const feats = inputs.map((v) => coords.map((i) => Math.tanh(v[i])));
      const s = refNetStep(meta[kind][role]!, state.rnn[kind][role]!, feats);
      coords.forEach((i, row) => (all[i] = post(s.out[row])));
      rnn[kind][role] = s.state;
    }
    return all;
  };

  // λ, then x₀, both from (g, r_prev, x_prev).
  const lambda = o.dampingMode === "rnn"
    ? run("lambda", [g, state.rPrev, state.xPrev], (v) => softplus(v) + o.lambda0)
    : o.lambda0;
  const x0 = o.xInit === "previous"
    ? Float64Array.from(state.xPrev)
    : o.xInit === "gradient"
    ? Float64Array.from(g)
    : run("x0", [g, state.rPrev, state.xPrev], (v) => v);
  const A = (v: ArrayLike<number>) => {
    const out = matVec(G, v);
    for (let i = 0; i < n; i++) out[i] += (typeof lambda === "number" ? lambda : lambda[i]) * v[i];
    return out;
  };
  const Ax0 = A(x0);
  const r0 = Float64Array.from(g, (gi, i) => gi - Ax0[i]);
  const precond = o.preconditioner === "rnn" ? run("precond", [g, r0, x0], softplus) : undefined;

  // Preconditioned CG, exactly as docs/algorithm.md#preconditioned-cg.
  const eps = 1e-6;
  const applyP = (r: Float64Array) => (precond ? r.map((v, i) => v * precond[i]) : r.slice());
  let x = x0.slice(), r = r0.slice();
  let y = applyP(r), p = y.slice(), rho = dot(r, y), k = 0;
  const iterates = [{ x: x.slice(), r: r.slice() }];
  while (k < o.cgIterations && Math.sqrt(dot(r, r)) >= eps) {
    const q = A(p);
    const alpha = rho / Math.max(dot(p, q), eps);
    x = x.map((v, i) => v + alpha * p[i]);
    r = r.map((v, i) => v - alpha * q[i]);
    y = applyP(r);
    const rhoNext = dot(r, y);
    const beta = rhoNext / Math.max(rho, eps);
    rho = rhoNext;
    p = y.map((v, i) => v + beta * p[i]);
    k++;
    iterates.push({ x: x.slice(), r: r.slice() });
  }
  return {
    lambda,
    x0,
    r0,
    precond,
    iterates,
    x,
    r,
    iterations: k,
    next: { rnn, xPrev: x, rPrev: r },
  };
};
