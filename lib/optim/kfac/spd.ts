/**
 * Symmetric positive-definite inverses in float64 JS (TF.js has no matrix inverse): Cholesky
 * M = L·Lᵀ (Cholesky–Banachiewicz, row-oriented), then V = L⁻ᵀ, then M⁻¹ = L⁻ᵀ·L⁻¹ = V·Vᵀ. About
 * n³/2 multiply-adds; every inner loop is a dot product of contiguous rows (row-major storage),
 * unrolled four rows at a time (about 1.3 s for n = 1601 on one core).
 *
 * Big matrices (n > maxDim) are approximated block-diagonally: contiguous diagonal blocks of at most
 * maxDim rows are inverted exactly and the off-diagonal blocks of M are dropped (cost n·maxDim²/2
 * instead of n³/2).
 * @module
 */

/** Thrown when a matrix is not (numerically) positive definite. */
export class NotPositiveDefiniteError extends Error {
  override name = "NotPositiveDefiniteError";
}

/**
 * The lower Cholesky factor L of the n×n SPD matrix m (row-major; only its lower triangle is read),
 * with m + δ·I factored when `damping` δ is given. Throws `NotPositiveDefiniteError` on a pivot ≤ 0.
 * Row-oriented: L[i, j] = (m[i, j] − ⟨L[i, :j], L[j, :j]⟩) / L[j, j], four rows i at a time (they
 * share the loads of row j).
 */
export const cholesky = (m: ArrayLike<number>, n: number, damping = 0): Float64Array => {
  if (m.length !== n * n) throw new RangeError(`cholesky: ${m.length} entries for ${n}×${n}`);
  const l = new Float64Array(n * n);
  for (let i0 = 0; i0 < n; i0 += 4) {
    const i1 = Math.min(i0 + 4, n);
    // Columns left of the group: independent across the group's rows.
    if (i1 - i0 === 4) {
      const r0 = i0 * n, r1 = r0 + n, r2 = r1 + n, r3 = r2 + n;
      for (let j = 0; j < i0; j++) {
        const rj = j * n;
        let s0 = m[r0 + j], s1 = m[r1 + j], s2 = m[r2 + j], s3 = m[r3 + j];
        for (let k = 0; k < j; k++) {
          const x = l[rj + k];
          s0 -= l[r0 + k] * x;
          s1 -= l[r1 + k] * x;
          s2 -= l[r2 + k] * x;
          s3 -= l[r3 + k] * x;
        }
        const d = l[rj + j];
        l[r0 + j] = s0 / d;
        l[r1 + j] = s1 / d;
        l[r2 + j] = s2 / d;
        l[r3 + j] = s3 / d;
      }
    } else {
      for (let i = i0; i < i1; i++) {
        const ri = i * n;
        for (let j = 0; j < i0; j++) {
          const rj = j * n;
          let s = m[ri + j];
          for (let k = 0; k < j; k++) s -= l[ri + k] * l[rj + k];
          l[ri + j] = s / l[rj + j];
        }
      }
    }
    // The group's own lower triangle.
    for (let i = i0; i < i1; i++) {
      const ri = i * n;
      for (let j = i0; j <= i; j++) {
        const rj = j * n;
        let s = m[ri + j] + (i === j ? damping : 0);
        for (let k = 0; k < j; k++) s -= l[ri + k] * l[rj + k];
        if (i === j) {
          if (!(s > 0)) {
            throw new NotPositiveDefiniteError(`cholesky: pivot ${i} is ${s} (matrix not SPD)`);
          }
          l[ri + i] = Math.sqrt(s);
        } else {
          l[ri + j] = s / l[rj + j];
        }
      }
    }
  }
  return l;
};

/**
 * V = (L⁻¹)ᵀ of a lower-triangular L (row-major), upper triangular:
 * V[j, i] = L⁻¹[i, j] = −⟨L[i, j:i], V[j, j:i]⟩ / L[i, i] for j < i, and V[i, i] = 1 / L[i, i].
 * Four rows j at a time share the loads of row i of L (V is zero left of its diagonal).
 */
export const lowerInverseTransposed = (l: Float64Array, n: number): Float64Array => {
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    const d = 1 / l[ri + i];
    v[ri + i] = d;
    let j = 0;
    for (; j + 4 <= i; j += 4) {
      const r0 = j * n, r1 = r0 + n, r2 = r1 + n, r3 = r2 + n;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let k = j; k < i; k++) {
        const x = l[ri + k];
        s0 += x * v[r0 + k];
        s1 += x * v[r1 + k];
        s2 += x * v[r2 + k];
        s3 += x * v[r3 + k];
      }
      v[r0 + i] = -s0 * d;
      v[r1 + i] = -s1 * d;
      v[r2 + i] = -s2 * d;
      v[r3 + i] = -s3 * d;
    }
    for (; j < i; j++) {
      const rj = j * n;
      let s = 0;
      for (let k = j; k < i; k++) s += l[ri + k] * v[rj + k];
      v[rj + i] = -s * d;
    }
  }
  return v;
};

/**
 * (m + δI)⁻¹ for an SPD m: Cholesky m + δI = L·Lᵀ, V = L⁻ᵀ, then (m + δI)⁻¹ = V·Vᵀ, i.e.
 * out[i, j] = ⟨V[i, i:], V[j, i:]⟩ for j ≤ i (V upper triangular), four rows j at a time.
 */
export const spdInverse = (m: ArrayLike<number>, n: number, damping = 0): Float64Array => {
  const v = lowerInverseTransposed(cholesky(m, n, damping), n);
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    let j = 0;
    for (; j + 4 <= i + 1; j += 4) {
      const r0 = j * n, r1 = r0 + n, r2 = r1 + n, r3 = r2 + n;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let k = i; k < n; k++) {
        const x = v[ri + k];
        s0 += x * v[r0 + k];
        s1 += x * v[r1 + k];
        s2 += x * v[r2 + k];
        s3 += x * v[r3 + k];
      }
      out[ri + j] = s0;
      out[ri + j + 1] = s1;
      out[ri + j + 2] = s2;
      out[ri + j + 3] = s3;
    }
    for (; j <= i; j++) {
      const rj = j * n;
      let s = 0;
      for (let k = i; k < n; k++) s += v[ri + k] * v[rj + k];
      out[ri + j] = s;
    }
  }
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) out[j * n + i] = out[i * n + j];
  return out;
};

/** Sizes of ⌈n / maxDim⌉ contiguous blocks as equal as possible (each at most maxDim). */
export const blockSizes = (n: number, maxDim: number): number[] => {
  if (!(maxDim >= 1)) throw new RangeError(`maxDim must be ≥ 1, got ${maxDim}`);
  const k = Math.ceil(n / maxDim);
  const base = Math.floor(n / k), extra = n % k;
  return Array.from({ length: k }, (_, i) => base + (i < extra ? 1 : 0));
};

/**
 * (m + δI)⁻¹ when n ≤ maxDim; otherwise the inverse of its block-diagonal part
 * blockdiag(m₁₁ + δI, m₂₂ + δI, …) with `blockSizes(n, maxDim)` (zeros off the diagonal blocks).
 * Symmetrizes m first ((m + mᵀ)/2), since factors come back from float32 sums.
 */
export const dampedInverse = (
  m: ArrayLike<number>,
  n: number,
  damping: number,
  maxDim = Infinity,
): Float64Array => {
  const out = new Float64Array(n * n);
  let start = 0;
  for (const b of n <= maxDim ? [n] : blockSizes(n, maxDim)) {
    const sub = new Float64Array(b * b);
    for (let i = 0; i < b; i++) {
      for (let j = 0; j < b; j++) {
        const gi = start + i, gj = start + j;
        sub[i * b + j] = 0.5 * (m[gi * n + gj] + m[gj * n + gi]);
      }
    }
    const inv = spdInverse(sub, b, damping);
    for (let i = 0; i < b; i++) out.set(inv.subarray(i * b, (i + 1) * b), (start + i) * n + start);
    start += b;
  }
  return out;
};
