/**
 * A register-blocked WGSL GEMM for TF.js's webgpu backend, C[z] = A[z]·B[z], written the way that
 * reached 19.8 TFLOP/s on an H200 through Deno's WebGPU (`../shared/design/gpu.md`): 16×16 threads
 * per workgroup, each thread TM×TN outputs (8×8 or 4×4) held in TM·TN/4 `vec4<f32>` accumulators
 * written out as separate variables (arrays indexed in loops spill), k-steps of 8, the A tile
 * staged k-major ("transposed") in workgroup memory and both tiles read as `vec4`.
 *
 * Where the operands come from is a parameter: each operand is a WGSL function that returns four
 * consecutive elements along its contiguous axis, zero outside the matrix
 * (`loadA(z, m, k)`: A(m, k..k+3) or A(m..m+3, k); `loadB(z, k, n)`: B(k, n..n+3) or B(k..k+3, n)).
 * The matmul kernel reads plain (possibly transposed) matrices; the convolutions read their
 * operands through im2col index arithmetic (implicit GEMM), so no patch matrix is ever stored.
 *
 * Few output tiles and a long k (a filter gradient: M·N small, k = batch·pixels) split k over
 * `splits` workgroups along z, each writing a partial product, then a second program sums them.
 * @module
 */
import type { tf } from "../../../_deps.ts";
import { ints, type Uniform, type WebGpuBackendLike, type WgslProgram } from "./_util.ts";

/** One GEMM operand: how its four-element vectors are read. */
export interface GemmOperand {
  /** The axis along which `load` returns consecutive elements (A: "k" or "m"; B: "k" or "n"). */
  readonly contiguous: "k" | "m" | "n";
  /**
   * WGSL defining `fn loadA(z : i32, m : i32, k : i32) -> vec4<f32>` (resp. `loadB(z, k, n)`),
   * zero outside the matrix; it may read `uniforms.gM`, `gN`, `gK` and its own uniforms.
   */
  readonly code: string;
  /** Identifies `code` in the pipeline cache key. */
  readonly key: string;
  /** How the operand's buffer is bound: 4 = `array<vec4<f32>>` (aligned vector loads). */
  readonly components: 1 | 4;
}

/** How a GEMM is cut into workgroups. */
export interface Tiling {
  /** Outputs per thread along m and n (the workgroup tile is 16·tm × 16·tn). */
  readonly tm: 4 | 8;
  readonly tn: 4 | 8;
  /** Workgroups along k per output tile (1 = no split); each covers `kChunk` (a multiple of 8). */
  readonly splits: number;
  readonly kChunk: number;
}

/** A GEMM's sizes: `batch` independent products of [m, k]·[k, n]. */
export interface GemmSize {
  readonly batch: number;
  readonly m: number;
  readonly n: number;
  readonly k: number;
}

/** Below this many workgroups a GEMM uses smaller tiles, then splits k (a GPU has ~100 cores). */
const MIN_WORKGROUPS = 96;

/**
 * The tiling for a GEMM: 8 outputs per thread along m (resp. n) when that side is longer than 64,
 * else 4 (a 64-wide side, e.g. 64 output channels, fills a 64-wide tile); 4×4 when that gives too
 * few workgroups; and k split when even those are few and k is long (each split ≥ 512 of k).
 */
export const chooseTiling = ({ batch, m, n, k }: GemmSize): Tiling => {
  const count = (tm: number, tn: number) =>
    batch * Math.ceil(m / (16 * tm)) * Math.ceil(n / (16 * tn));
  const side = (x: number): 4 | 8 => (x > 64 ? 8 : 4);
  let tm = side(m), tn = side(n);
  if (count(tm, tn) < MIN_WORKGROUPS) tm = tn = 4;
  const tiles = count(tm, tn);
  let splits = 1;
  if (tiles < MIN_WORKGROUPS && k >= 1024) {
    splits = Math.max(
      1,
      Math.min(64, Math.ceil((2 * MIN_WORKGROUPS) / tiles), Math.floor(k / 512)),
    );
  }
  return withSplits(tm, tn, k, splits);
};

/** A tiling with k cut into (at most) `splits` chunks that are multiples of 8, none empty. */
export const withSplits = (tm: 4 | 8, tn: 4 | 8, k: number, splits: number): Tiling => {
  const kChunk = Math.max(8, Math.ceil(Math.ceil(k / Math.max(1, splits)) / 8) * 8);
  return { tm, tn, splits: Math.max(1, Math.ceil(k / kChunk)), kChunk };
};

/** The workgroup grid of a GEMM, or null when a dimension exceeds the device's limit. */
export const gemmDispatch = (
  s: GemmSize,
  t: Tiling,
  maxPerDim: number,
): [number, number, number] | null => {
  const d: [number, number, number] = [
    Math.ceil(s.n / (16 * t.tn)),
    Math.ceil(s.m / (16 * t.tm)),
    s.batch * t.splits,
  ];
  return d.every((x) => x <= maxPerDim) && s.batch * t.splits * s.m * s.n < 2 ** 31 ? d : null;
};

/**
 * True when the tiles cover m, n and k exactly: stores need no column checks (the row check stays:
 * cheap and uniform), and dense operands skip theirs (`denseOperand`, `checked: false`).
 */
export const tilesExactly = (s: GemmSize, t: Tiling): boolean =>
  s.m % (16 * t.tm) === 0 && s.n % (16 * t.tn) === 0 && s.k % 8 === 0;

const comps = ["x", "y", "z", "w"];

/** WGSL of the tiled main function (see the module doc). */
const gemmSource = (
  t: Tiling,
  a: GemmOperand,
  b: GemmOperand,
  vecOut: boolean,
  exact: boolean,
): string => {
  const { tm, tn } = t;
  const tileM = 16 * tm, tileN = 16 * tn, am4 = tileM / 4, bn4 = tileN / 4;
  const loads = (count: number, body: string) =>
    count >= 256 ? `{ let li = tid;\n${body} }` : `if (tid < ${count}) { let li = tid;\n${body} }`;
  const scatter = (arr: string, stride: number, base: string, c: string, v: string) =>
    comps.map((q, i) => `${arr}[${base} + ${i * stride}][${c}] = ${v}.${q};`).join("\n");
  const loadA = a.contiguous === "k"
    ? `let m = li >> 1u; let kq = (li & 1u) * 4u;
       let v = loadA(zIn, m0 + i32(m), k0 + i32(kq));
       ${scatter("mmAs", am4, `kq * ${am4}u + (m >> 2u)`, "m & 3u", "v")}`
    : `let kr = li / ${am4}u; let mq = li % ${am4}u;
       mmAs[li] = loadA(zIn, m0 + i32(mq * 4u), k0 + i32(kr));`;
  const loadB = b.contiguous === "n"
    ? `let kr = li / ${bn4}u; let nq = li % ${bn4}u;
       mmBs[li] = loadB(zIn, k0 + i32(kr), n0 + i32(nq * 4u));`
    : `let n = li >> 1u; let kq = (li & 1u) * 4u;
       let v = loadB(zIn, k0 + i32(kq), n0 + i32(n));
       ${scatter("mmBs", bn4, `kq * ${bn4}u + (n >> 2u)`, "n & 3u", "v")}`;
  const acc = (r: number, h: number) => `acc${r}_${h}`;
  const accs: string[] = [];
  for (let r = 0; r < tm; r++) {
    for (let h = 0; h < tn / 4; h++) accs.push(`var ${acc(r, h)} = vec4<f32>(0.0);`);
  }
  const steps: string[] = [];
  for (let kk = 0; kk < 8; kk++) {
    const s: string[] = [];
    for (let g = 0; g < tm / 4; g++) s.push(`let a${g} = mmAs[${kk * am4 + g * 16}u + ty];`);
    for (let h = 0; h < tn / 4; h++) s.push(`let b${h} = mmBs[${kk * bn4 + h * 16}u + tx];`);
    for (let r = 0; r < tm; r++) {
      for (let h = 0; h < tn / 4; h++) {
        s.push(`${acc(r, h)} = fma(vec4<f32>(a${r >> 2}.${comps[r & 3]}), b${h}, ${acc(r, h)});`);
      }
    }
    steps.push(`{\n${s.join("\n")}\n}`);
  }
  const writes: string[] = [];
  for (let r = 0; r < tm; r++) {
    writes.push(`{ let m = m0 + ${(r >> 2) * 64 + (r & 3)} + i32(ty) * 4;`);
    writes.push(`if (m < uniforms.gM) { let row = (z * uniforms.gM + m) * uniforms.gN;`);
    for (let h = 0; h < tn / 4; h++) {
      const n = `(n0 + ${h * 64} + i32(tx) * 4)`;
      if (exact) {
        writes.push(`result[(row + ${n}) / 4] = ${acc(r, h)};`);
      } else if (vecOut) {
        writes.push(`if (${n} < uniforms.gN) { result[(row + ${n}) / 4] = ${acc(r, h)}; }`);
      } else {
        for (let i = 0; i < 4; i++) {
          writes.push(
            `if (${n} + ${i} < uniforms.gN) { result[row + ${n} + ${i}] = ${acc(r, h)}.${
              comps[i]
            }; }`,
          );
        }
      }
    }
    writes.push("} }");
  }
  return `
var<workgroup> mmAs : array<vec4<f32>, ${8 * am4}>;
var<workgroup> mmBs : array<vec4<f32>, ${8 * bn4}>;
${a.code}
${b.code}
fn main() {
  let tx = localId.x;
  let ty = localId.y;
  let tid = localIndex;
  let z = i32(workgroupId.z);
  let split = z % uniforms.gSplits;
  let m0 = i32(workgroupId.y) * ${tileM};
  let n0 = i32(workgroupId.x) * ${tileN};
  let kBegin = split * uniforms.gKChunk;
  let kEnd = min(uniforms.gK, kBegin + uniforms.gKChunk);
  let zIn = z / uniforms.gSplits;
  ${accs.join("\n  ")}
  for (var k0 = kBegin; k0 < kEnd; k0 = k0 + 8) {
    ${loads(2 * tileM, loadA)}
    ${loads(2 * tileN, loadB)}
    workgroupBarrier();
    ${steps.join("\n    ")}
    workgroupBarrier();
  }
  ${writes.join("\n  ")}
}`;
};

/** The GEMM program: output [batch·splits, m, n] (partial products when split). */
const gemmProgram = (
  s: GemmSize,
  t: Tiling,
  a: GemmOperand,
  b: GemmOperand,
  dispatch: [number, number, number],
  names: [string, string],
  extraUniforms: string,
): WgslProgram => {
  const vecOut = s.n % 4 === 0;
  const exact = tilesExactly(s, t);
  return {
    outputShape: [s.batch * t.splits, s.m, s.n],
    shaderKey: `mlhfGemm_${t.tm}x${t.tn}_${a.key}_${b.key}_${vecOut}_${exact}`,
    dispatchLayout: { x: [2], y: [1], z: [0] },
    dispatch,
    variableNames: names,
    variableComponents: [a.components, b.components],
    workgroupSize: [16, 16, 1],
    uniforms: `gM : i32, gN : i32, gK : i32, gKChunk : i32, gSplits : i32, ${extraUniforms}`,
    outputComponent: vecOut ? 4 : 1,
    getUserCode: () => gemmSource(t, a, b, vecOut, exact),
  };
};

/** Sums `splits` partial products [batch·splits, mn] into [batch, mn]. */
const splitSumProgram = (batch: number, mn: number): WgslProgram => {
  const size = batch * mn;
  return {
    outputShape: [batch, mn],
    shaderKey: "mlhfGemmSplitSum",
    dispatchLayout: { x: [0, 1] },
    dispatch: [Math.ceil(size / 256), 1, 1],
    variableNames: ["P"],
    workgroupSize: [256, 1, 1],
    uniforms: "gMN : i32, gSplits : i32,",
    size: true,
    getUserCode: () => `
fn main(index : i32) {
  if (index < uniforms.size) {
    let b = index / uniforms.gMN;
    let r = index - b * uniforms.gMN;
    let base = b * uniforms.gSplits * uniforms.gMN + r;
    var s = 0.0;
    for (var i = 0; i < uniforms.gSplits; i = i + 1) {
      s = s + P[base + i * uniforms.gMN];
    }
    setOutputAtIndex(index, s);
  }
}`,
  };
};

/** What one GEMM call needs besides the sizes. */
export interface GemmCall {
  readonly a: GemmOperand;
  readonly b: GemmOperand;
  /** The two inputs, bound as `A` and `B` (any shapes: loaders index them flat). */
  readonly inputs: [tf.TensorInfo, tf.TensorInfo];
  /** Extra uniform fields (`"cH : i32, …"`) and their values, read by the loaders. */
  readonly uniforms?: string;
  readonly values?: number[];
}

/**
 * Runs a GEMM on the webgpu backend: returns a float32 [batch, m, n] tensor, or null when the
 * workgroup grid would exceed the device's limits (the caller then falls back).
 */
export const runGemm = (
  backend: WebGpuBackendLike,
  size: GemmSize,
  call: GemmCall,
  tiling: Tiling = chooseTiling(size),
): tf.TensorInfo | null => {
  const dispatch = gemmDispatch(
    size,
    tiling,
    backend.device.limits.maxComputeWorkgroupsPerDimension,
  );
  if (!dispatch) return null;
  const program = gemmProgram(
    size,
    tiling,
    call.a,
    call.b,
    dispatch,
    ["A", "B"],
    call.uniforms ?? "",
  );
  const uniforms: Uniform[] = ints(
    size.m,
    size.n,
    size.k,
    tiling.kChunk,
    tiling.splits,
    ...(call.values ?? []),
  );
  const out = backend.runWebGPUProgram(program, [...call.inputs], "float32", uniforms);
  if (tiling.splits === 1) return out;
  const mn = size.m * size.n;
  const summed = backend.runWebGPUProgram(
    splitSumProgram(size.batch, mn),
    [{ dataId: out.dataId, shape: [size.batch * tiling.splits, mn], dtype: "float32" }],
    "float32",
    ints(mn, tiling.splits),
  );
  backend.disposeData(out.dataId);
  return { dataId: summed.dataId, shape: [size.batch, size.m, size.n], dtype: "float32" };
};
