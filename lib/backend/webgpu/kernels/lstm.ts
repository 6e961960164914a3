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
import {
  ints,
  type KernelArgs,
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
const cellCode = (l: number, inputs: string[], w: string, b: string, c: string, h: string) => {
  const rows = [...inputs, ...[0, 1, 2, 3].map((u) => `h${l}.${"xyzw"[u]}`)];
  const lines = [
    `let h${l} = ${h}[n];`,
    `var gi${l} = ${b}[0]; var gj${l} = ${b}[1]; var gf${l} = ${b}[2]; var go${l} = ${b}[3];`,
  ];
  rows.forEach((v, r) => {
    lines.push(`{ let v = vec4<f32>(${v});`);
    ["gi", "gj", "gf", "go"].forEach((g, k) => {
      lines.push(`${g}${l} = fma(v, ${w}[${r * 4 + k}], ${g}${l});`);
    });
    lines.push("}");
  });
  lines.push(
    `let c${l}n = lstmSigmoid(gi${l}) * lstmTanh(gj${l}) + ${c}[n] * lstmSigmoid(gf${l} + 1.0);`,
    `let h${l}n = lstmTanh(c${l}n) * lstmSigmoid(go${l});`,
  );
  return lines.join("\n  ");
};

const xInputs = (inW: number) =>
  Array.from({ length: inW }, (_, i) => `X[n * ${inW} + ${i}]`);

const rowDispatch = (n: number): [number, number, number] => [Math.ceil(n / 64), 1, 1];

/** `MlhfLstmCell`: output vec4 [c′ rows | h′ rows]. */
const cellProgram = (n: number, inW: number): WgslProgram => ({
  outputShape: [2 * n * U],
  shaderKey: `mlhfLstmCell_${inW}`,
  dispatchLayout: { x: [0] },
  dispatch: rowDispatch(n),
  variableNames: ["W", "Bias", "X", "C", "H"],
  variableComponents: [4, 4, 1, 4, 4],
  workgroupSize: [64, 1, 1],
  uniforms: "gRows : i32,",
  outputComponent: 4,
  getUserCode: () => `${ACTIVATIONS}
fn main(index : i32) {
  let n = index;
  if (n >= uniforms.gRows) { return; }
  ${cellCode(0, xInputs(inW), "W", "Bias", "C", "H")}
  result[n] = c0n;
  result[uniforms.gRows + n] = h0n;
}`,
});

/** `MlhfLstmNet`: output scalar [out (rows) | c′₀ | h′₀ | c′₁ | h′₁ | …]. */
const netProgram = (n: number, inW: number, layers: number): WgslProgram => {
  const names = ["X"], comps = [1];
  for (let l = 0; l < layers; l++) {
    names.push(`W${l}`, `B${l}`, `C${l}`, `H${l}`);
    comps.push(4, 4, 4, 4);
  }
  names.push("HW", "HB");
  comps.push(4, 1);
  const body: string[] = [];
  for (let l = 0; l < layers; l++) {
    const inputs = l === 0 ? xInputs(inW) : [0, 1, 2, 3].map((u) => `h${l - 1}n.${"xyzw"[u]}`);
    body.push(cellCode(l, inputs, `W${l}`, `B${l}`, `C${l}`, `H${l}`));
    for (const [s, v] of [[0, `c${l}n`], [1, `h${l}n`]] as const) {
      const off = `uniforms.gRows * ${1 + (2 * l + s) * U} + n * ${U}`;
      body.push(`{ let o = ${off};`);
      [0, 1, 2, 3].forEach((u) => body.push(`result[o + ${u}] = ${v}.${"xyzw"[u]};`));
      body.push("}");
    }
  }
  body.push(`result[n] = dot(h${layers - 1}n, HW[0]) + HB[0];`);
  return {
    outputShape: [n + 2 * layers * n * U],
    shaderKey: `mlhfLstmNet_${inW}_${layers}`,
    dispatchLayout: { x: [0] },
    dispatch: rowDispatch(n),
    variableNames: names,
    variableComponents: comps,
    workgroupSize: [64, 1, 1],
    uniforms: "gRows : i32,",
    getUserCode: () => `${ACTIVATIONS}
fn main(index : i32) {
  let n = index;
  if (n >= uniforms.gRows) { return; }
  ${body.join("\n  ")}
}`,
  };
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
        ints(n),
      );
    },
  },
  {
    kernelName: LSTM_NET_KERNEL,
    kernelFunc: (args: KernelArgs) => {
      const ins = args.inputs;
      const L = (args.attrs as { layers: number }).layers;
      const [n, inW] = ins.x.shape;
      const inputs = [ins.x];
      for (let l = 0; l < L; l++) {
        inputs.push(ins[`kernel${l}`], ins[`bias${l}`], ins[`c${l}`], ins[`h${l}`]);
      }
      inputs.push(ins.headKernel, ins.headBias);
      return webgpuBackend(args).runWebGPUProgram(
        netProgram(n, inW, L),
        inputs,
        "float32",
        ints(n),
      );
    },
  },
];
