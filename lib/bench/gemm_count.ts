/**
 * Multiply-adds of the GEMM-like kernels a computation ran (`Conv2D`, `FusedConv2D`,
 * `Conv2DBackpropInput`, `Conv2DBackpropFilter`, `BatchMatMul`, `_FusedMatMul`), from the kernel
 * shapes `tf.profile` records: a backend-independent cost of a training step, so a measured
 * slowdown against SGD can be set beside the ratio of work the algorithm must do (the cost model of
 * docs/algorithm.md#cost-model counts the same way). Other kernels (element-wise, pooling, the
 * meta-networks' tiny GEMMs) are not counted.
 * @module
 */
import { tf } from "../_deps.ts";

const prod = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1);

/** Multiply-adds of one kernel call from its name and shapes; 0 for kernels not counted. */
export const kernelMultiplyAdds = (
  name: string,
  inputShapes: readonly (readonly number[])[],
  outputShapes: readonly (readonly number[])[],
): number => {
  const out = outputShapes[0];
  if (!out) return 0;
  switch (name) {
    case "Conv2D":
    case "FusedConv2D": { // out [N, Ho, Wo, Co], filter [kh, kw, Ci, Co]
      const f = inputShapes[1];
      return prod(out.slice(0, 3)) * prod(f);
    }
    case "Conv2DBackpropInput": { // dy [N, Ho, Wo, Co], filter [kh, kw, Ci, Co]
      return prod(inputShapes[0].slice(0, 3)) * prod(inputShapes[1]);
    }
    case "Conv2DBackpropFilter": { // dy [N, Ho, Wo, Co] → filter [kh, kw, Ci, Co]
      return prod(inputShapes[1].slice(0, 3)) * prod(out);
    }
    case "BatchMatMul":
    case "_FusedMatMul": { // a [..., m, k] or [..., k, m]; out [..., m, n]
      const a = inputShapes[0], m = out[out.length - 2];
      return prod(out) * (prod(a.slice(-2)) / m);
    }
    default:
      return 0;
  }
};

/** Runs `f` under `tf.profile` and returns the GEMM multiply-adds of the kernels it ran. */
export const gemmMultiplyAdds = async (f: () => void | Promise<void>): Promise<number> => {
  const info = await tf.profile(async () => {
    await f();
  });
  return info.kernels.reduce(
    (s, k) =>
      s + kernelMultiplyAdds(
        k.name,
        k.inputShapes as number[][],
        k.outputShapes as number[][],
      ),
    0,
  );
};
