/**
 * The meta-networks' LSTM steps as fused WGSL kernels for the webgpu backend: `MlhfLstmCell` and
 * `MlhfLstmNet` (contracts in `lib/kernels.ts`, the same as the native backend's), one thread per
 * row: the row's inputs, state and the small weights (read as `vec4` per gate) give the gate
 * pre-activations, activations and new state in registers, then the next layer and the head, in
 * one dispatch instead of ~14 element-wise programs per layer. Forward only: `lstmCell` and
 * `lstmNetStep` carry the gradients (`lib/optim/mlhf/lstm_kernel.ts`).
 *
 * σ(x) = 1/(1 + e^−x); tanh(x) = sign(x)·(1 − e^−2|x|)/(1 + e^−2|x|) (stable at ±∞, as TF.js's own
 * webgpu tanh). The inputs' widths and the layer count are compiled in (pipeline cache key); the
 * row count is a uniform.
 * @module
 */
import { LSTM_CELL_KERNEL, LSTM_KERNEL_UNITS as U, LSTM_NET_KERNEL } from "../../../kernels.ts";
import { tf } from "../../../_deps.ts";
import {
  ints,
  type KernelArgs,
  viewAs,
  webgpuBackend,
  type WebGpuKernel,
  type WgslProgram,
} from "./_util.ts";

const ACTIVATIONS = `
fn lstmSigmoid(x : vec4<f32>) -> vec4<f32> { return 1.0 / (1.0 + exp(-x)); }
fn lstmTanh(x : vec4<f32>) -> vec4<f32> {
  let e = exp(-2.0 * abs(x));
  return sign(x) * (1.0 - e) / (1.0 + e);
}`;

/**
 * WGSL of one cell on row `n`: inputs are scalar expressions; weights `w` ([inW+U, 4U] bound as
 * vec4: row r, gate g at w[r·4 + g]), bias `b` (4 vec4), state `c`, `h` (vec4 per row). Defines
 * `c{l}n`, `h{l}n`.
 */
const cellCode = (
  l: number,
  inputs: string[],
  w: string,
  b: string,
  c: string,
  h: string,
  wOff = 0,
  bOff = 0,
) => {
  const rows = [...inputs, ...[0, 1, 2, 3].map((u) => `h${l}.${"xyzw"[u]}`)];
  const lines = [
    `let h${l} = ${h}[n];`,
    [0, 1, 2, 3].map((k) => `var ${GATES[k]}${l} = ${b}[${bOff + k}];`).join(" "),
  ];
  rows.forEach((v, r) => {
    lines.push(`{ let v = vec4<f32>(${v});`);
    GATES.forEach((g, k) => {
      lines.push(`${g}${l} = fma(v, ${w}[${wOff + r * 4 + k}], ${g}${l});`);
    });
    lines.push("}");
  });
  lines.push(
    `let c${l}n = lstmSigmoid(gi${l}) * lstmTanh(gj${l}) + ${c}[n] * lstmSigmoid(gf${l} + 1.0);`,
    `let h${l}n = lstmTanh(c${l}n) * lstmSigmoid(go${l});`,
  );
  return lines.join("\n  ");
};

const GATES = ["gi", "gj", "gf", "go"];

const xInputs = (inW: number, offset = "0") =>
  Array.from({ length: inW }, (_, i) => `X[${offset} + n * ${inW} + ${i}]`);

const rowDispatch = (n: number): [number, number, number] => [Math.ceil(n / 64), 1, 1];

/**
 * `MlhfLstmCell`: output vec4 [c′ rows | h′ rows]; x is read from float `gXOff` on (a previous
 * cell's packed output supplies h′ as the next layer's x).
 */
const cellProgram = (n: number, inW: number): WgslProgram => ({
  outputShape: [2 * n * U],
  shaderKey: `mlhfLstmCell_${inW}`,
  dispatchLayout: { x: [0] },
  dispatch: rowDispatch(n),
  variableNames: ["W", "Bias", "X", "C", "H"],
  variableComponents: [4, 4, 1, 4, 4],
  workgroupSize: [64, 1, 1],
  uniforms: "gRows : i32, gXOff : i32,",
  outputComponent: 4,
  getUserCode: () =>
    `${ACTIVATIONS}
fn main(index : i32) {
  let n = index;
  if (n >= uniforms.gRows) { return; }
  ${cellCode(0, xInputs(inW, "uniforms.gXOff"), "W", "Bias", "C", "H")}
  result[n] = c0n;
  result[uniforms.gRows + n] = h0n;
}`,
});

/** Offsets (in floats) of each layer's kernel and bias and of the head in the packed weights. */
const weightLayout = (inW: number, layers: number) => {
  const offs: { w: number; b: number }[] = [];
  let o = 0;
  for (let l = 0; l < layers; l++) {
    const w = o;
    o += ((l === 0 ? inW : U) + U) * 4 * U;
    offs.push({ w, b: o });
    o += 4 * U;
  }
  return { layers: offs, head: o, headBias: o + U, total: o + U + 1 };
};

/**
 * `MlhfLstmNet` with at most {@link FUSED_MAX_LAYERS} layers in one dispatch: the small weights
 * come packed in one buffer (WebGPU allows 8 storage buffers per shader), staged per workgroup in
 * workgroup memory as vec4; output scalar [out (rows) | c′₀ | h′₀ | c′₁ | h′₁ | …].
 */
const netProgram = (n: number, inW: number, layers: number): WgslProgram => {
  const lay = weightLayout(inW, layers);
  const n4 = Math.ceil(lay.total / 4);
  const names = ["X", "P"], comps = [1, 1];
  for (let l = 0; l < layers; l++) {
    names.push(`C${l}`, `H${l}`);
    comps.push(4, 4);
  }
  const body: string[] = [];
  for (let l = 0; l < layers; l++) {
    const inputs = l === 0 ? xInputs(inW) : [0, 1, 2, 3].map((u) => `h${l - 1}n.${"xyzw"[u]}`);
    const { w, b } = lay.layers[l];
    body.push(cellCode(l, inputs, `lw`, `lw`, `C${l}`, `H${l}`, w / 4, b / 4));
    for (const [s, v] of [[0, `c${l}n`], [1, `h${l}n`]] as const) {
      const off = `uniforms.gRows * ${1 + (2 * l + s) * U} + n * ${U}`;
      body.push(`{ let o = ${off};`);
      [0, 1, 2, 3].forEach((u) => body.push(`result[o + ${u}] = ${v}.${"xyzw"[u]};`));
      body.push("}");
    }
  }
  const hb = lay.headBias;
  body.push(
    `result[n] = dot(h${layers - 1}n, lw[${lay.head / 4}]) + lw[${hb >> 2}].${"xyzw"[hb & 3]};`,
  );
  return {
    outputShape: [n + 2 * layers * n * U],
    shaderKey: `mlhfLstmNet_${inW}_${layers}`,
    dispatchLayout: { x: [0] },
    dispatch: rowDispatch(n),
    variableNames: names,
    variableComponents: comps,
    workgroupSize: [64, 1, 1],
    uniforms: "gRows : i32,",
    getUserCode: () =>
      `${ACTIVATIONS}
var<workgroup> lw : array<vec4<f32>, ${n4}>;
fn main(index : i32) {
  for (var i = i32(localIndex); i < ${n4}; i = i + 64) {
    var v = vec4<f32>(0.0);
    for (var q = 0; q < 4; q = q + 1) {
      if (4 * i + q < ${lay.total}) { v[q] = P[4 * i + q]; }
    }
    lw[i] = v;
  }
  workgroupBarrier();
  let n = index;
  if (n >= uniforms.gRows) { return; }
  ${body.join("\n  ")}
}`,
  };
};

/** The network's head on the last layer's packed cell output: out[n] = h′[n]·w + b. */
const headProgram = (n: number): WgslProgram => ({
  outputShape: [n],
  shaderKey: "mlhfLstmHead",
  dispatchLayout: { x: [0] },
  dispatch: rowDispatch(n),
  variableNames: ["Cell", "HW", "HB"],
  variableComponents: [4, 4, 1],
  workgroupSize: [64, 1, 1],
  uniforms: "gRows : i32,",
  getUserCode: () => `
fn main(index : i32) {
  if (index < uniforms.gRows) {
    result[index] = dot(Cell[uniforms.gRows + index], HW[0]) + HB[0];
  }
}`,
});

/** Layers up to which `MlhfLstmNet` runs as one program (more: one program per layer). */
export const FUSED_MAX_LAYERS = 2;

type Backend = ReturnType<typeof webgpuBackend>;

const flat = (t: tf.TensorInfo): tf.TensorInfo => viewAs(t, [tf.util.sizeFromShape(t.shape)]);

/** Concatenates 1-D tensors by TF.js's own `Concat` program. */
const concat1d = (backend: Backend, ts: tf.TensorInfo[]): tf.TensorInfo => {
  const k = tf.getKernel("Concat", "webgpu");
  if (!k) throw new Error("webgpu MlhfLstmNet: TF.js has no 'Concat' kernel for webgpu");
  return k.kernelFunc({
    inputs: ts.map(flat) as unknown as tf.NamedTensorInfoMap,
    backend: backend as unknown as tf.KernelBackend,
    attrs: { axis: 0 },
  }) as tf.TensorInfo;
};

const netKernel = (args: KernelArgs): tf.TensorInfo => {
  const ins = args.inputs;
  const L = (args.attrs as { layers: number }).layers;
  const [n, inW] = ins.x.shape;
  const backend = webgpuBackend(args);
  if (L <= FUSED_MAX_LAYERS) {
    const weights = [];
    for (let l = 0; l < L; l++) weights.push(ins[`kernel${l}`], ins[`bias${l}`]);
    const packed = concat1d(backend, [...weights, ins.headKernel, ins.headBias]);
    const inputs = [ins.x, packed];
    for (let l = 0; l < L; l++) inputs.push(ins[`c${l}`], ins[`h${l}`]);
    const out = backend.runWebGPUProgram(netProgram(n, inW, L), inputs, "float32", ints(n));
    backend.disposeData(packed.dataId);
    return out;
  }
  // One cell program per layer, each reading the previous one's h′ (at offset n·U), then the head.
  const cells: tf.TensorInfo[] = [];
  for (let l = 0; l < L; l++) {
    const x = l === 0 ? ins.x : cells[l - 1];
    cells.push(backend.runWebGPUProgram(
      cellProgram(n, l === 0 ? inW : U),
      [ins[`kernel${l}`], ins[`bias${l}`], x, ins[`c${l}`], ins[`h${l}`]],
      "float32",
      ints(n, l === 0 ? 0 : n * U),
    ));
  }
  const head = backend.runWebGPUProgram(
    headProgram(n),
    [cells[L - 1], ins.headKernel, ins.headBias],
    "float32",
    ints(n),
  );
  const out = concat1d(backend, [head, ...cells]);
  for (const t of [head, ...cells]) backend.disposeData(t.dataId);
  return out;
};

/** The LSTM kernels (no TF.js counterpart; the call sites check shapes before running them). */
export const lstmKernels = (): WebGpuKernel[] => [
  {
    kernelName: LSTM_CELL_KERNEL,
    kernelFunc: (args: KernelArgs) => {
      const { kernel, bias, x, c, h } = args.inputs;
      const [n, inW] = x.shape;
      return webgpuBackend(args).runWebGPUProgram(
        cellProgram(n, inW),
        [kernel, bias, x, c, h],
        "float32",
        ints(n, 0),
      );
    },
  },
  { kernelName: LSTM_NET_KERNEL, kernelFunc: netKernel },
];
