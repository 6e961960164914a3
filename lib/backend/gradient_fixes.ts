/**
 * Gradient overrides that make TF.js's first-order reverse mode correct and fast on every backend,
 * by routing the kernels' gradients through the DSL's own transpose rules (`ops/conv.ts`):
 * - Conv2D: the filter gradient by im2col + matMul (stock wasm has no Conv2DBackpropFilter kernel;
 *   stock cpu's takes ~50 s on a CIFAR layer, docs/tfjs-notes.md#conv2d-filter-gradient).
 * - MaxPool: the cotangent goes to the first arg-max of each window (wasm's MaxPoolGrad sends it to
 *   the wrong element when every value in the window is negative).
 * - BatchMatMul (2-D): the DSL's matMul transpose rule, which on wasm transposes explicitly
 *   instead of passing flags (4–6× faster there, `ops/_matmul.ts`).
 * - AvgPool: with SAME padding, cpu's AvgPoolGrad divides by the full window where TF.js's own
 *   forward averages only in-bounds elements, so stock gradients are wrong there (measured in
 *   `tests/jvp_rules_test.ts`, the avgPool row, which compares against the tape).
 * Registered once per process; a kernel-level backend (the native BLAS one) may still override the
 * kernels underneath.
 * @module
 */
import { tf } from "../_deps.ts";
import { avgPool, conv2d, maxPool, type PoolAttrs } from "../../ops/conv.ts";
import { matMul } from "../../ops/linalg.ts";
import { maxPoolInputGrad, type Padding } from "../../ops/windows.ts";

let installed = false;

const asPair = (v: number | readonly number[]): [number, number] =>
  typeof v === "number" ? [v, v] : [v[0], v[1]];

const checkPadding = (pad: unknown, op: string): Padding => {
  if (pad === "same" || pad === "valid") return pad;
  throw new Error(
    `${op} gradient: padding ${JSON.stringify(pad)} is not supported (use 'same' or 'valid')`,
  );
};

const poolAttrs = (attrs: unknown, op: string): PoolAttrs => {
  const a = attrs as { filterSize: number | number[]; strides: number | number[]; pad: unknown };
  return {
    filterSize: asPair(a.filterSize),
    strides: asPair(a.strides),
    padding: checkPadding(a.pad, op),
  };
};

/** Installs the overrides (idempotent). Warnings TF.js prints on override are silenced. */
export const installGradientFixes = (): void => {
  if (installed) return;
  installed = true;
  const warn = console.warn;
  console.warn = () => {};
  try {
    tf.registerGradient({
      kernelName: "Conv2D",
      inputsToSave: ["x", "filter"],
      gradFunc: (dy, saved, attrs) => {
        const [x, w] = saved;
        const a = attrs as unknown as {
          strides: number | number[];
          pad: unknown;
          dataFormat: string;
          dilations: number | number[];
        };
        const dil = asPair(a.dilations ?? 1);
        if (a.dataFormat !== "NHWC" || dil[0] !== 1 || dil[1] !== 1) {
          throw new Error("Conv2D gradient: only NHWC without dilation is supported");
        }
        const ca = { strides: asPair(a.strides), padding: checkPadding(a.pad, "Conv2D") };
        const t = (i: number) => () =>
          conv2d.transpose(
            [x, w],
            dy as tf.Tensor,
            dy as tf.Tensor,
            [i === 0, i === 1],
            ca,
            undefined,
          )[i]!;
        return { x: t(0), filter: t(1) };
      },
    });
    const stockMatMulGrad = tf.getGradient("BatchMatMul");
    tf.registerGradient({
      kernelName: "BatchMatMul",
      inputsToSave: ["a", "b"],
      gradFunc: (dy, saved, attrs) => {
        const [a, b] = saved;
        const at = attrs as unknown as { transposeA: boolean; transposeB: boolean };
        if (a.rank !== 2 || b.rank !== 2 || !stockMatMulGrad) {
          return stockMatMulGrad!.gradFunc(dy, saved, attrs);
        }
        const ma = { transposeA: at.transposeA, transposeB: at.transposeB };
        const t = (i: number) => () =>
          matMul.transpose(
            [a, b],
            dy as tf.Tensor,
            dy as tf.Tensor,
            [i === 0, i === 1],
            ma,
            undefined,
          )[i]!;
        return { a: t(0), b: t(1) };
      },
    });
    for (const op of [maxPool, avgPool] as const) {
      const kernelName = op === maxPool ? "MaxPool" : "AvgPool";
      tf.registerGradient({
        kernelName,
        inputsToSave: ["x"],
        gradFunc: (dy, saved, attrs) => {
          const [x] = saved;
          const a = poolAttrs(attrs, kernelName);
          return {
            x: () => {
              // Max-pool: the backend's `MlhfMaxPoolGrad` kernel where it has one (no masks).
              if (op === maxPool) {
                return maxPoolInputGrad(
                  dy as tf.Tensor4D,
                  x as tf.Tensor4D,
                  a.filterSize,
                  a.strides,
                  a.padding,
                );
              }
              const ct = dy as tf.Tensor;
              const res = avgPool.residuals!([x], ct, a);
              return avgPool.transpose([x], ct, ct, [true], a, res)[0]!;
            },
          };
        },
      });
    }
  } finally {
    console.warn = warn;
  }
};
