/**
 * Gradient overrides that make TF.js's first-order reverse mode correct and fast on every backend
 * (tfjs-facts.md §2b, §3):
 * - Conv2D: the filter gradient by im2col + matMul (stock wasm has no Conv2DBackpropFilter kernel;
 *   stock cpu's takes ~50 s on a CIFAR layer); the input gradient by Conv2DBackpropInput.
 * - MaxPool: the cotangent goes to the first arg-max of each window (wasm's MaxPoolGrad sends it to
 *   the wrong element when every value in the window is negative).
 * Registered once per process; a kernel-level backend (the native BLAS one) may still override the
 * kernels underneath.
 * @module
 */
import { tf } from "../_deps.ts";
import {
  conv2dFilterGrad,
  conv2dInputGrad,
  firstArgMaxMasks,
  type Padding,
  scatterPatches,
  windowGeometry,
} from "../../ops/_windows.ts";

let installed = false;

const asPair = (v: number | readonly number[]): [number, number] =>
  typeof v === "number" ? [v, v] : [v[0], v[1]];

const checkPadding = (pad: unknown, op: string): Padding => {
  if (pad === "same" || pad === "valid") return pad;
  throw new Error(`${op} gradient: padding ${JSON.stringify(pad)} is not supported (use 'same' or 'valid')`);
};

/** Max-pool transpose: scatter dy through the first-arg-max masks of x's windows. */
export const maxPoolTranspose = (
  dy: tf.Tensor4D,
  x: tf.Tensor4D,
  filterSize: [number, number],
  strides: [number, number],
  padding: Padding,
): tf.Tensor4D =>
  tf.tidy(() => {
    const g = windowGeometry(x.shape[1], x.shape[2], filterSize, strides, padding);
    const masks = firstArgMaxMasks(x, g);
    return scatterPatches(masks.map((m) => tf.mul(m, dy) as tf.Tensor4D), g);
  });

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
        const [x, w] = saved as [tf.Tensor4D, tf.Tensor4D];
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
        const strides = asPair(a.strides);
        const pad = checkPadding(a.pad, "Conv2D");
        return {
          x: () => conv2dInputGrad(dy as tf.Tensor4D, w, x.shape, strides, pad),
          filter: () =>
            conv2dFilterGrad(x, dy as tf.Tensor4D, w.shape, strides, pad),
        };
      },
    });
    tf.registerGradient({
      kernelName: "MaxPool",
      inputsToSave: ["x"],
      gradFunc: (dy, saved, attrs) => {
        const [x] = saved as [tf.Tensor4D];
        const a = attrs as unknown as {
          filterSize: number | number[];
          strides: number | number[];
          pad: unknown;
        };
        return {
          x: () =>
            maxPoolTranspose(
              dy as tf.Tensor4D,
              x,
              asPair(a.filterSize),
              asPair(a.strides),
              checkPadding(a.pad, "MaxPool"),
            ),
        };
      },
    });
  } finally {
    console.warn = warn;
  }
};
