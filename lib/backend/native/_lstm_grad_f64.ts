/**
 * A float64 reference for the LSTM network step's vector-Jacobian product (the tests of
 * `lstm_grad.ts`): row by row, every gate and sum in float64 with `Math.exp` and `Math.tanh`, so
 * that the float32 kernel and the float32 op composition can both be measured against it (in
 * saturated gates 1 − σ and 1 − tanh² cancel in float32: each float32 path is off by its own
 * rounding there, not by each other's).
 * @module
 */
const U = 4, G = 16;

const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

/** One layer: kernel [(width + U) × 16], bias [16], state rows c, h [n × U]. */
export interface F64Layer {
  readonly w: ArrayLike<number>;
  readonly b: ArrayLike<number>;
  readonly c: ArrayLike<number>;
  readonly h: ArrayLike<number>;
}

/**
 * The cotangents [x, per layer kernel, bias, c, h, head kernel, head bias] (flat float64) of a
 * network step, given the cotangent `dy` of its packed output [out | c′₀ | h′₀ | c′₁ | h′₁ | …].
 */
export const lstmNetGradF64 = (
  n: number,
  x: ArrayLike<number>,
  inW: number,
  layers: readonly F64Layer[],
  headW: ArrayLike<number>,
  dy: ArrayLike<number>,
): Float64Array[] => {
  const L = layers.length, nU = n * U;
  const width = (l: number) => (l === 0 ? inW : U);
  const dx = new Float64Array(n * inW);
  const dW = layers.map((_, l) => new Float64Array((width(l) + U) * G));
  const dB = layers.map(() => new Float64Array(G));
  const dC = layers.map(() => new Float64Array(nU)), dH = layers.map(() => new Float64Array(nU));
  const dHeadW = new Float64Array(U), dHeadB = new Float64Array(1);
  for (let r = 0; r < n; r++) {
    const ins: number[][] = [Array.from({ length: inW }, (_, a) => x[r * inW + a])];
    const gates: number[][] = [], tcs: number[][] = [];
    for (let l = 0; l < L; l++) {
      const { w, b, c, h } = layers[l];
      const wl = width(l), xin = ins[l];
      const pre = Array.from({ length: G }, (_, k) => {
        let s = b[k];
        for (let a = 0; a < wl; a++) s += xin[a] * w[a * G + k];
        for (let u = 0; u < U; u++) s += h[r * U + u] * w[(wl + u) * G + k];
        return s;
      });
      const g = new Array<number>(G), tc = new Array<number>(U), hn = new Array<number>(U);
      for (let u = 0; u < U; u++) {
        g[u] = sigmoid(pre[u]);
        g[U + u] = Math.tanh(pre[U + u]);
        g[2 * U + u] = sigmoid(pre[2 * U + u] + 1);
        g[3 * U + u] = sigmoid(pre[3 * U + u]);
        tc[u] = Math.tanh(g[u] * g[U + u] + c[r * U + u] * g[2 * U + u]);
        hn[u] = tc[u] * g[3 * U + u];
      }
      gates.push(g);
      tcs.push(tc);
      ins.push(hn);
    }
    const dOut = dy[r];
    let above = Array.from({ length: U }, (_, u) => dOut * headW[u]);
    for (let u = 0; u < U; u++) dHeadW[u] += ins[L][u] * dOut;
    dHeadB[0] += dOut;
    for (let l = L - 1; l >= 0; l--) {
      const { w, c, h } = layers[l];
      const wl = width(l), g = gates[l], tc = tcs[l], xin = ins[l];
      const da = new Array<number>(G);
      for (let u = 0; u < U; u++) {
        const i = g[u], j = g[U + u], f = g[2 * U + u], o = g[3 * U + u], t = tc[u];
        const dhN = dy[n + (2 * l + 1) * nU + r * U + u] + above[u];
        const dcT = dy[n + 2 * l * nU + r * U + u] + dhN * o * (1 - t * t);
        da[u] = dcT * j * i * (1 - i);
        da[U + u] = dcT * i * (1 - j * j);
        da[2 * U + u] = dcT * c[r * U + u] * f * (1 - f);
        da[3 * U + u] = dhN * t * o * (1 - o);
        dC[l][r * U + u] = dcT * f;
      }
      const next = new Array<number>(wl).fill(0);
      for (let k = 0; k < G; k++) {
        dB[l][k] += da[k];
        for (let a = 0; a < wl; a++) {
          dW[l][a * G + k] += xin[a] * da[k];
          next[a] += da[k] * w[a * G + k];
        }
        for (let u = 0; u < U; u++) {
          dW[l][(wl + u) * G + k] += h[r * U + u] * da[k];
          dH[l][r * U + u] += da[k] * w[(wl + u) * G + k];
        }
      }
      above = next;
    }
    for (let a = 0; a < inW; a++) dx[r * inW + a] = above[a];
  }
  return [dx, ...layers.flatMap((_, l) => [dW[l], dB[l], dC[l], dH[l]]), dHeadW, dHeadB];
};
