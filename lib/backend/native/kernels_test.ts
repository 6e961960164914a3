/**
 * Every kernel the native backend overrides equals the cpu backend's result (float32 tolerance) on
 * fast-check random shapes, strides, paddings, transposes and broadcasts, computed in one process
 * on both backends. Where the stock cpu kernel is wrong (AvgPoolGrad at SAME-padded borders, and
 * BatchMatMul when both batch shapes broadcast), the reference is the exact adjoint / an explicitly
 * broadcast product instead.
 * @module
 */
import { tf } from "../../_deps.ts";
import { assert, fc } from "../../../tests/_util/deps.ts";
import { assertAllClose } from "../../../tests/_util/numeric.ts";
import { nativeAvailable, onBoth, randArray, randInts, runOn, testName } from "./_test_util.ts";
import { COL_CHUNK_FLOATS, type ConvEngine, setConvEngine } from "./kernels/conv.ts";
import { RECYCLE_MIN_ELEMENTS, recycleStats, setRecycleLimits } from "./kernels/_util.ts";
import { NATIVE_BACKEND, OVERRIDDEN_KERNELS } from "./backend.ts";
import { sumValues } from "./kernels/elementwise.ts";

const ignore = !nativeAvailable;
const TOL = { rtol: 1e-4, atol: 1e-4 };
const RUNS = 40;

const close = (r: { cpu: Float32Array[]; native: Float32Array[] }, what: string, tol = TOL) =>
  r.cpu.forEach((c, i) => assertAllClose(r.native[i], c, tol, `${what} output ${i}`));

// ---------------------------------------------------------------------------------------------
// matMul

const dim = fc.integer({ min: 1, max: 9 });

Deno.test({
  name: testName("BatchMatMul equals cpu for all transposes and cpu-compatible batch broadcasts"),
  ignore,
  fn: async () => {
    await fc.assert(
      fc.asyncProperty(
        dim,
        dim,
        dim,
        fc.array(fc.integer({ min: 1, max: 3 }), { maxLength: 2 }),
        fc.constantFrom("same", "suffix", "ones"),
        fc.boolean(),
        fc.boolean(),
        fc.boolean(),
        fc.integer({ min: 0, max: 1e6 }),
        async (m, n, k, outer, bKind, tA, tB, swap, seed) => {
          let oa = outer,
            ob = bKind === "same"
              ? outer
              : bKind === "suffix"
              ? outer.slice(1)
              : outer.map(() => 1);
          if (swap) [oa, ob] = [ob, oa];
          const aShape = [...oa, ...(tA ? [k, m] : [m, k])];
          const bShape = [...ob, ...(tB ? [n, k] : [k, n])];
          const av = randArray(aShape.reduce((x, y) => x * y, 1), seed);
          const bv = randArray(bShape.reduce((x, y) => x * y, 1), seed + 1);
          const r = await onBoth(() =>
            tf.matMul(tf.tensor(av, aShape), tf.tensor(bv, bShape), tA, tB)
          );
          close(r, `matMul ${aShape} ${bShape} tA=${tA} tB=${tB}`);
        },
      ),
      { numRuns: 60 },
    );
  },
});

Deno.test({
  name: testName("BatchMatMul broadcasts batch dims both ways like an explicit broadcast"),
  ignore,
  fn: async () => {
    const av = randArray(2 * 1 * 3 * 4, 1), bv = randArray(1 * 3 * 4 * 5, 2);
    const got = await runOn(
      "native",
      () => tf.matMul(tf.tensor(av, [2, 1, 3, 4]), tf.tensor(bv, [1, 3, 4, 5])),
    );
    const want = await runOn("cpu", () =>
      tf.matMul(
        tf.broadcastTo(tf.tensor(av, [2, 1, 3, 4]), [2, 3, 3, 4]),
        tf.broadcastTo(tf.tensor(bv, [1, 3, 4, 5]), [2, 3, 4, 5]),
      ));
    assertAllClose(got[0], want[0], TOL, "broadcast matMul");
  },
});

Deno.test({
  name: testName("_FusedMatMul (bias, activations) equals cpu"),
  ignore,
  fn: async () => {
    await fc.assert(
      fc.asyncProperty(
        dim,
        dim,
        dim,
        fc.boolean(),
        fc.boolean(),
        fc.constantFrom("none", "n", "1", "mn"),
        fc.constantFrom("linear", "relu", "relu6", "leakyrelu", "elu", "sigmoid", "prelu"),
        fc.integer({ min: 0, max: 1e6 }),
        async (m, n, k, tA, tB, biasKind, activation, seed) => {
          const a = randArray(m * k, seed), b = randArray(k * n, seed + 1).map((v) => 4 * v);
          const biasShape = biasKind === "n" ? [n] : biasKind === "1" ? [1] : [m, n];
          const bias = randArray(m * n, seed + 2).subarray(0, biasShape.reduce((x, y) => x * y));
          const alpha = randArray(n, seed + 3);
          const r = await onBoth(() =>
            tf.fused.matMul({
              a: tf.tensor(a, tA ? [k, m] : [m, k]),
              b: tf.tensor(b, tB ? [n, k] : [k, n]),
              transposeA: tA,
              transposeB: tB,
              bias: biasKind === "none" ? undefined : tf.tensor(bias, biasShape),
              activation: activation as tf.fused.Activation,
              preluActivationWeights: activation === "prelu" ? tf.tensor(alpha, [n]) : undefined,
              leakyreluAlpha: 0.3,
            })
          );
          close(r, `fused matMul ${activation} bias ${biasKind}`);
        },
      ),
      { numRuns: 40 },
    );
  },
});

// ---------------------------------------------------------------------------------------------
// convolution

/** A random conv problem: x [b,h,w,ci], filter [kh,kw,ci,co], stride, padding. */
const convCase = fc.record({
  b: fc.integer({ min: 1, max: 3 }),
  h: fc.integer({ min: 1, max: 9 }),
  w: fc.integer({ min: 1, max: 9 }),
  // ≥ TRANSPOSED_MIN_CHANNELS (8) with stride 1 takes the flipped-filter input-gradient path.
  ci: fc.oneof(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 8, max: 10 })),
  co: fc.integer({ min: 1, max: 6 }),
  kh: fc.integer({ min: 1, max: 4 }),
  kw: fc.integer({ min: 1, max: 4 }),
  sh: fc.constantFrom(1, 1, 2, 3),
  sw: fc.constantFrom(1, 1, 2, 3),
  pad: fc.constantFrom("same", "valid", "explicit"),
  pads: fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 4, maxLength: 4 }),
  seed: fc.integer({ min: 0, max: 1e6 }),
}).filter((c) => c.pad !== "valid" || (c.h >= c.kh && c.w >= c.kw))
  .filter((c) =>
    c.pad !== "explicit" || (c.h + c.pads[0] + c.pads[1] >= c.kh &&
      c.w + c.pads[2] + c.pads[3] >= c.kw)
  );

type ConvCase = typeof convCase extends fc.Arbitrary<infer T> ? T : never;

const padOf = (c: ConvCase): "same" | "valid" | tf.backend_util.ExplicitPadding =>
  c.pad === "explicit"
    ? [[0, 0], [c.pads[0], c.pads[1]], [c.pads[2], c.pads[3]], [0, 0]]
    : c.pad as "same" | "valid";

const convData = (c: ConvCase) => ({
  x: randArray(c.b * c.h * c.w * c.ci, c.seed),
  f: randArray(c.kh * c.kw * c.ci * c.co, c.seed + 1),
  xShape: [c.b, c.h, c.w, c.ci] as [number, number, number, number],
  fShape: [c.kh, c.kw, c.ci, c.co] as [number, number, number, number],
});

const conv = (c: ConvCase, x: tf.Tensor, f: tf.Tensor) =>
  tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, [c.sh, c.sw], padOf(c));

/** The conv kernels' engines (oneDNN when loaded, and im2col); without oneDNN both are im2col. */
const engine = fc.constantFrom<ConvEngine>("onednn", "im2col");

/** {@link onBoth} with native's conv kernels on engine `e`. */
const onBothWith = async (e: ConvEngine, f: () => tf.Tensor | tf.Tensor[]) => {
  const prev = setConvEngine(e);
  try {
    return await onBoth(f);
  } finally {
    setConvEngine(prev);
  }
};

Deno.test({
  name: testName("Conv2D and FusedConv2D equal cpu (strides, SAME/VALID/explicit padding)"),
  ignore,
  fn: async () => {
    await fc.assert(
      fc.asyncProperty(convCase, fc.boolean(), engine, async (c, fused, e) => {
        const d = convData(c);
        const bias = randArray(c.co, c.seed + 2);
        const r = await onBothWith(e, () => {
          const x = tf.tensor4d(d.x, d.xShape), f = tf.tensor4d(d.f, d.fShape);
          return fused
            ? tf.fused.conv2d({
              x,
              filter: f,
              strides: [c.sh, c.sw],
              pad: padOf(c),
              bias: tf.tensor1d(bias),
              activation: "relu",
            })
            : conv(c, x, f);
        });
        close(r, `conv2d ${JSON.stringify(c)} fused=${fused} ${e}`);
      }),
      { numRuns: RUNS },
    );
  },
});

Deno.test({
  name: testName("Conv2DBackpropInput and Conv2DBackpropFilter equal cpu"),
  ignore,
  fn: async () => {
    await fc.assert(
      fc.asyncProperty(convCase, engine, async (c, e) => {
        const d = convData(c);
        const attrs = { strides: [c.sh, c.sw], pad: padOf(c), dataFormat: "NHWC" };
        const r = await onBothWith(e, () => {
          const x = tf.tensor4d(d.x, d.xShape), f = tf.tensor4d(d.f, d.fShape);
          const y = conv(c, x, f);
          const dy = tf.tensor(randArray(y.size, c.seed + 3), y.shape);
          const dx = tf.engine().runKernel(
            "Conv2DBackpropInput",
            { dy, filter: f },
            { ...attrs, inputShape: d.xShape } as unknown as tf.NamedAttrMap,
          ) as tf.Tensor;
          const dw = tf.engine().runKernel(
            "Conv2DBackpropFilter",
            { x, dy },
            { ...attrs, filterShape: d.fShape } as unknown as tf.NamedAttrMap,
          ) as tf.Tensor;
          return [dx, dw];
        });
        close(r, `conv2d backprop ${JSON.stringify(c)} ${e}`);
      }),
      { numRuns: RUNS },
    );
  },
});

Deno.test({
  name: testName("im2col conv kernels handle batches larger than one im2col chunk"),
  ignore,
  fn: async () => {
    // 42 images of 24×24 with a 5×5×8 window: 24·24·200 floats per image, COL_CHUNK_FLOATS per
    // chunk → several chunks (and a short last one).
    const c: ConvCase = {
      b: 42,
      h: 24,
      w: 24,
      ci: 8,
      co: 3,
      kh: 5,
      kw: 5,
      sh: 1,
      sw: 1,
      pad: "same",
      pads: [0, 0, 0, 0],
      seed: 5,
    };
    const perChunk = Math.floor(COL_CHUNK_FLOATS / (24 * 24 * 200));
    assert.ok(c.b % perChunk !== 0 && c.b / perChunk > 2, `${perChunk} images per chunk`);
    const d = convData(c);
    const attrs = { strides: [1, 1], pad: "same", dataFormat: "NHWC" };
    const r = await onBothWith("im2col", () => {
      const x = tf.tensor4d(d.x, d.xShape), f = tf.tensor4d(d.f, d.fShape);
      const y = conv(c, x, f);
      const dy = tf.tensor(randArray(y.size, 9), y.shape);
      const dw = tf.engine().runKernel("Conv2DBackpropFilter", { x, dy }, {
        ...attrs,
        filterShape: d.fShape,
      } as unknown as tf.NamedAttrMap) as tf.Tensor;
      return [y, tf.conv2dTranspose(dy as tf.Tensor4D, f, d.xShape, 1, "same"), dw];
    });
    close(r, "chunked conv", { rtol: 2e-4, atol: 5e-4 });
  },
});

// ---------------------------------------------------------------------------------------------
// pooling

const poolCase = fc.record({
  b: fc.integer({ min: 1, max: 2 }),
  h: fc.integer({ min: 1, max: 8 }),
  w: fc.integer({ min: 1, max: 8 }),
  c: fc.integer({ min: 1, max: 4 }),
  fh: fc.integer({ min: 1, max: 3 }),
  fw: fc.integer({ min: 1, max: 3 }),
  sh: fc.integer({ min: 1, max: 3 }),
  sw: fc.integer({ min: 1, max: 3 }),
  pad: fc.constantFrom("same", "valid"),
  ints: fc.boolean(),
  seed: fc.integer({ min: 0, max: 1e6 }),
}).filter((p) => p.pad === "same" || (p.h >= p.fh && p.w >= p.fw));

type PoolCase = typeof poolCase extends fc.Arbitrary<infer T> ? T : never;

const poolX = (p: PoolCase) => {
  const n = p.b * p.h * p.w * p.c;
  return p.ints ? randInts(n, p.seed) : randArray(n, p.seed);
};

Deno.test({
  name: testName("MaxPool, AvgPool and MaxPoolGrad equal cpu (ties, all-negative windows)"),
  ignore,
  fn: async () => {
    await fc.assert(
      fc.asyncProperty(poolCase, async (p) => {
        const xv = poolX(p);
        const pad = p.pad as "same" | "valid";
        const r = await onBoth(() => {
          const x = tf.tensor4d(xv, [p.b, p.h, p.w, p.c]);
          const mp = tf.maxPool(x, [p.fh, p.fw], [p.sh, p.sw], pad);
          const ap = tf.avgPool(x, [p.fh, p.fw], [p.sh, p.sw], pad);
          const dy = tf.tensor(randArray(mp.size, p.seed + 1), mp.shape);
          const dx = tf.engine().runKernel("MaxPoolGrad", { dy, input: x, output: mp }, {
            filterSize: [p.fh, p.fw],
            strides: [p.sh, p.sw],
            pad,
          } as unknown as tf.NamedAttrMap) as tf.Tensor;
          return [mp, ap, dx];
        });
        close(r, `pool ${JSON.stringify(p)}`);
      }),
      { numRuns: 60 },
    );
  },
});

Deno.test({
  name: testName("MaxPoolGrad routes to the first maximum, also in all-negative windows"),
  ignore,
  fn: async () => {
    // One 2×2 window per case, row-major: expected index of the gradient.
    const cases: Array<[number[], number]> = [
      [[-3, -1, -2, -4], 1],
      [[5, 5, 5, 5], 0],
      [[-2, -7, -2, -2], 0],
      [[0, 1, 3, 3], 2],
    ];
    for (const [vals, at] of cases) {
      const [dx] = await runOn("native", () => {
        const x = tf.tensor4d(vals, [1, 2, 2, 1]);
        return tf.engine().runKernel("MaxPoolGrad", {
          dy: tf.ones([1, 1, 1, 1]),
          input: x,
          output: x,
        }, {
          filterSize: [2, 2],
          strides: [2, 2],
          pad: "valid",
        } as unknown as tf.NamedAttrMap) as tf.Tensor;
      });
      assert.deepEqual([...dx], [0, 1, 2, 3].map((i) => (i === at ? 1 : 0)), `window ${vals}`);
    }
  },
});

Deno.test({
  name: testName("AvgPoolGrad equals cpu for VALID and is the exact adjoint of AvgPool for SAME"),
  ignore,
  fn: async () => {
    await fc.assert(
      fc.asyncProperty(poolCase, async (p) => {
        const xv = poolX(p);
        const pad = p.pad as "same" | "valid";
        const shape: [number, number, number, number] = [p.b, p.h, p.w, p.c];
        const f = () => {
          const x = tf.tensor4d(xv, shape);
          const y = tf.avgPool(x, [p.fh, p.fw], [p.sh, p.sw], pad);
          const dy = tf.tensor(randArray(y.size, p.seed + 1), y.shape);
          const dx = tf.engine().runKernel("AvgPoolGrad", { dy, input: x }, {
            filterSize: [p.fh, p.fw],
            strides: [p.sh, p.sw],
            pad,
          } as unknown as tf.NamedAttrMap) as tf.Tensor;
          // ⟨avgPool(x), dy⟩ and ⟨x, avgPoolGrad(dy)⟩ must agree (adjoint identity).
          return [dx, tf.sum(tf.mul(y, dy)), tf.sum(tf.mul(x, dx))];
        };
        const nat = await runOn("native", f);
        assertAllClose(nat[2], nat[1], TOL, `adjoint ${JSON.stringify(p)}`);
        if (pad === "valid") assertAllClose(nat[0], (await runOn("cpu", f))[0], TOL, "valid");
      }),
      { numRuns: RUNS },
    );
  },
});

// ---------------------------------------------------------------------------------------------
// element-wise and Sum

Deno.test({
  name: testName("Sum's loops add in row order in float64, bit for bit, where the order matters"),
  ignore,
  fn: () => {
    // Magnitudes from 1e-20 to 1e20, and rows that cancel (1, 1e20, −1e20, 1, …: in row order
    // the first 1 is lost and the last kept; any other grouping loses another): float64 sums
    // round, so another order gives other bits.
    const cases = [[1, 1, 64], [2, 3, 5], [3, 4, 7], [1, 9, 64], [2, 131, 3]];
    for (
      const [[outer, red, inner], cancel] of cases.flatMap((c) => [[c, false], [c, true]] as const)
    ) {
      const n = outer * red * inner;
      const x = randArray(n, red).map((v, i) =>
        cancel
          ? [1, 1e20, -1e20, 1][Math.floor(i / inner) % 4] * (1 + (i % inner) / 8)
          : v * 10 ** (((i * 7919) % 41) - 20)
      );
      const got = sumValues(x, outer, red, inner);
      for (let o = 0; o < outer; o++) {
        for (let i = 0; i < inner; i++) {
          let sum = 0;
          for (let r = 0; r < red; r++) sum += x[(o * red + r) * inner + i];
          const at = `[${outer}, ${red}, ${inner}] at (${o}, ${i})`;
          assert.ok(Object.is(got[o * inner + i], Math.fround(sum)), at);
        }
      }
    }
  },
});

const shapeArb = fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 0, maxLength: 4 });

Deno.test({
  name: testName(
    "Add, Sub, Multiply, Equal, Relu, Step, Sum, ArgMax equal cpu (broadcasts, axes, ties)",
  ),
  ignore,
  fn: async () => {
    await fc.assert(
      fc.asyncProperty(
        shapeArb,
        fc.integer({ min: 0, max: 4 }),
        fc.constantFrom("same", "trailing", "leading1", "middle"),
        fc.boolean(),
        fc.integer({ min: 0, max: 4 }),
        fc.integer({ min: 0, max: 4 }),
        fc.boolean(),
        fc.integer({ min: 0, max: 1e6 }),
        async (shape, cut, bKind, swap, ax0, axLen, keepDims, seed) => {
          const k = Math.min(cut, shape.length);
          let bShape = bKind === "same"
            ? shape
            : bKind === "trailing"
            ? shape.slice(k)
            : bKind === "leading1"
            ? [...shape.slice(0, k).map(() => 1), ...shape.slice(k)]
            : shape.map((d, i) => (i === k ? 1 : d)); // a middle broadcast: cpu fallback path
          let aShape = shape;
          if (swap) [aShape, bShape] = [bShape, aShape];
          const size = (s: number[]) => s.reduce((x, y) => x * y, 1);
          const av = randInts(size(aShape), seed).map((v, i) => v + (i % 3) * 0.25);
          const bv = randArray(size(bShape), seed + 1);
          const xv = randInts(size(shape), seed + 2).map((v, i) => v + (i % 5) * 0.125);
          const lo = Math.min(ax0, Math.max(shape.length - 1, 0));
          const axes = Array.from(
            { length: Math.min(axLen, shape.length - lo) },
            (_, i) => lo + i,
          );
          const sumAxes = axes.length ? axes : undefined;
          const negAxes = axes.length
            ? [...axes].reverse().map((v) => v - shape.length)
            : undefined;
          const r = await onBoth(() => {
            const a = tf.tensor(av, aShape), b = tf.tensor(bv, bShape);
            const x = tf.tensor(xv, shape);
            return [
              tf.add(a, b),
              tf.sub(a, b),
              tf.mul(a, b),
              tf.relu(x),
              tf.step(x, 0.5),
              tf.sum(x, sumAxes, keepDims),
              tf.sum(x, negAxes),
              tf.cast(tf.equal(tf.round(a), tf.round(b)), "float32"),
              tf.cast(tf.equal(tf.cast(x, "int32"), 1), "float32"),
              tf.cast(tf.equal(2, x), "float32"),
              ...(shape.length === 0 ? [] : [
                tf.cast(tf.argMax(x, lo), "float32"),
                tf.cast(tf.argMax(x, lo - shape.length), "float32"),
              ]),
            ];
          });
          close(r, `elementwise ${aShape} ${bShape} axes ${axes}`);
        },
      ),
      { numRuns: 80 },
    );
  },
});

Deno.test({
  name: testName("Slice and PadV2 equal cpu (float32, int32, bool; strided boxes)"),
  ignore,
  fn: async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 4 }),
        fc.array(fc.nat(), { minLength: 8, maxLength: 8 }),
        fc.constantFrom("float32", "int32", "bool"),
        fc.constantFrom(0, -3.5, 2),
        fc.integer({ min: 0, max: 1e6 }),
        async (shape, picks, dtype, constantValue, seed) => {
          const begin = shape.map((d, i) => picks[i] % d);
          const size = shape.map((d, i) => 1 + (picks[i + 4] % (d - begin[i])));
          const pads = shape.map((_, i): [number, number] => [picks[i] % 3, picks[i + 4] % 2]);
          const vals = randInts(shape.reduce((a, b) => a * b, 1), seed);
          const cv = dtype === "float32" ? constantValue : constantValue === 2 ? 1 : 0;
          const r = await onBoth(() => {
            const x = tf.tensor(
              dtype === "bool" ? vals.map((v) => (v > 0 ? 1 : 0)) : vals,
              shape,
              dtype,
            );
            return [
              tf.cast(tf.slice(x, begin, size), "float32"),
              tf.cast(tf.pad(x, pads, cv), "float32"),
            ];
          });
          close(r, `slice/pad ${shape} ${begin} ${size} ${JSON.stringify(pads)} ${dtype}`);
        },
      ),
      { numRuns: 80 },
    );
  },
});

Deno.test({
  name: testName("Concat equals cpu (float32, int32, bool; any axis; empty inputs; long blocks)"),
  ignore,
  fn: async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 4 }),
        fc.array(fc.integer({ min: 0, max: 70 }), { minLength: 1, maxLength: 4 }),
        fc.nat(),
        fc.constantFrom("float32", "int32", "bool"),
        fc.integer({ min: 0, max: 1e6 }),
        async (shape, lengths, axisPick, dtype, seed) => {
          const axis = axisPick % shape.length;
          // Inputs differ along the axis (zero-length ones included); the last axis makes blocks
          // of up to 70 elements, either side of the copy's `set` length.
          const shapes = lengths.map((l) => shape.map((d, i) => (i === axis ? l : d)));
          const r = await onBoth(() => {
            const xs = shapes.map((sh, k) => {
              const vals = randInts(sh.reduce((a, b) => a * b, 1), seed + k);
              return tf.tensor(dtype === "bool" ? vals.map((v) => +(v > 0)) : vals, sh, dtype);
            });
            return [
              tf.cast(tf.concat(xs, axis), "float32"),
              tf.cast(tf.concat(xs, axis - shape.length), "float32"),
            ];
          });
          r.cpu.forEach((c, i) =>
            sameValues(r.native[i], c, `concat ${JSON.stringify(shapes)} axis ${axis} ${dtype}`)
          );
        },
      ),
      { numRuns: 80 },
    );
  },
});

/** Exact equality that treats NaN as equal to NaN (and −0 as +0), with the first mismatch named. */
const sameValues = (got: Float32Array, want: Float32Array, what: string) => {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < got.length; i++) {
    const g = got[i], w = want[i];
    if (!(g === w || (g !== g && w !== w))) assert.fail(`${what}[${i}] = ${g}, expected ${w}`);
  }
};

const SPECIALS = [NaN, Infinity, -Infinity, -0, 0, 1, -1, 3.5, -2.25, 1e-40, -1e-40, 3e38, -3e38];

/** Random floats with special values (NaN, ±∞, ±0, denormals, extremes) mixed in. */
const withSpecials = (n: number, seed: number, every: number): Float32Array => {
  const v = randInts(n, seed).map((x, i) => x + (i % 4) * 0.25);
  for (let i = seed % every; i < n; i += every) v[i] = SPECIALS[(i * 7 + seed) % SPECIALS.length];
  return v;
};

Deno.test({
  name: testName(
    "Neg, Square, Relu, Step, Greater/Less(Equal), Cast, Tile, Pack equal cpu (broadcasts, NaN, ±∞)",
  ),
  ignore,
  fn: async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 5 }), { maxLength: 4 }),
        fc.integer({ min: 0, max: 4 }),
        fc.constantFrom("same", "trailing", "leading1", "scalar", "middle"),
        fc.boolean(),
        fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 4, maxLength: 4 }),
        fc.integer({ min: 0, max: 4 }),
        fc.integer({ min: 2, max: 9 }),
        fc.integer({ min: 0, max: 1e6 }),
        async (shape, cut, bKind, swap, repsAll, axis0, every, seed) => {
          const k = Math.min(cut, shape.length);
          let bShape = bKind === "same"
            ? shape
            : bKind === "trailing"
            ? shape.slice(k)
            : bKind === "leading1"
            ? [...shape.slice(0, k).map(() => 1), ...shape.slice(k)]
            : bKind === "scalar"
            ? []
            : shape.map((d, i) => (i === k ? 1 : d)); // a middle broadcast: cpu fallback path
          let aShape = shape;
          if (swap) [aShape, bShape] = [bShape, aShape];
          const size = (sh: number[]) => sh.reduce((x, y) => x * y, 1);
          const av = withSpecials(size(aShape), seed, every);
          const bv = withSpecials(size(bShape), seed + 1, every + 1);
          const xv = withSpecials(size(shape), seed + 2, every);
          const reps = repsAll.slice(0, shape.length);
          const axis = Math.min(axis0, shape.length);
          const got: Record<string, Float32Array[]> = {};
          for (const be of ["cpu", "native"]) {
            got[be] = await runOn(be, () => {
              const a = tf.tensor(av, aShape), b = tf.tensor(bv, bShape);
              const x = tf.tensor(xv, shape);
              const xi = tf.tensor(xv.map((v) => (v === v && Math.abs(v) < 1e6 ? v : 7)), shape)
                .toInt();
              const mask = tf.greater(x, 0);
              return [
                tf.neg(x),
                tf.square(x),
                tf.relu(x),
                tf.step(x),
                tf.step(x, -0.5),
                tf.cast(tf.greater(a, b), "float32"),
                tf.cast(tf.greaterEqual(a, b), "float32"),
                tf.cast(tf.less(a, b), "float32"),
                tf.cast(tf.lessEqual(a, b), "float32"),
                tf.cast(mask, "float32"),
                tf.cast(xi, "float32"),
                tf.mul(tf.cast(mask, "float32"), x), // a cast mask feeding a float kernel
                tf.tile(x, reps),
                tf.cast(tf.tile(mask, reps), "float32"),
                tf.cast(tf.tile(xi, reps), "float32"),
                tf.stack([x, tf.neg(x), x], axis),
                tf.cast(tf.stack([xi, xi], axis), "float32"),
                tf.cast(tf.stack([mask, mask, mask], axis), "float32"),
                tf.add(a, b),
                tf.sub(a, b),
                tf.mul(a, b),
              ];
            });
          }
          got.cpu.forEach((c, i) =>
            sameValues(got.native[i], c, `${aShape} ${bShape} reps ${reps} axis ${axis} out ${i}`)
          );
        },
      ),
      { numRuns: 120 },
    );
  },
});

Deno.test({
  name: testName(
    "Sigmoid, Softmax, AddN, Unpack, SplitV, block (column) broadcasts equal cpu bit for bit",
  ),
  ignore,
  fn: async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 4 }),
        fc.integer({ min: 0, max: 3 }),
        fc.integer({ min: 0, max: 3 }),
        fc.boolean(),
        fc.constantFrom("float32", "int32", "bool"),
        fc.integer({ min: 2, max: 9 }),
        fc.integer({ min: 0, max: 1e6 }),
        async (shape, k0, k1, swap, dtype, every, seed) => {
          const r = shape.length;
          const [lo, hi] = [Math.min(k0, k1) % r, Math.max(k0, k1) % r].sort((p, q) => p - q);
          // One block of axes [lo, hi] kept, the others 1: columns ([…, 1]), rows, middles.
          let bShape = shape.map((d, i) => (i >= lo && i <= hi ? d : 1));
          if (lo > 0 && seed % 2) bShape = bShape.slice(lo); // without its leading 1s too
          let aShape = shape;
          if (swap) [aShape, bShape] = [bShape, aShape];
          const size = (sh: number[]) => sh.reduce((x, y) => x * y, 1);
          const av = withSpecials(size(aShape), seed, every);
          const bv = withSpecials(size(bShape), seed + 1, every + 1);
          const xv = withSpecials(size(shape), seed + 2, every);
          const axis = k0 % r;
          const parts = [1, shape[axis] - 1].filter((d) => d > 0);
          const got: Record<string, Float32Array[]> = {};
          for (const be of ["cpu", "native"]) {
            got[be] = await runOn(be, () => {
              const a = tf.tensor(av, aShape), b = tf.tensor(bv, bShape);
              const x = tf.tensor(xv, shape);
              const xd = dtype === "float32" ? x : tf.cast(x, dtype as "int32" | "bool");
              const f = (ts: tf.Tensor[]) => ts.map((t) => tf.cast(t, "float32"));
              return [
                tf.sigmoid(x),
                tf.softmax(x),
                tf.softmax(tf.tensor(randArray(xv.length, seed).map((v) => v * 30), shape)),
                tf.add(a, b),
                tf.sub(a, b),
                tf.mul(a, b),
                tf.div(a, b),
                tf.addN([tf.neg(x), x]), // two inputs: its own loop (−0 + 0 = +0)
                tf.addN([x, tf.neg(x), tf.sigmoid(x), x]),
                tf.div(2.5, x), // a scalar numerator
                tf.sub(2.5, x),
                // The sign of a zero sum: (0 + (−0)) + (−0) = +0, seen through 1/·.
                tf.div(1, tf.addN([tf.neg(tf.zerosLike(x)), tf.neg(tf.zerosLike(x))])),
                tf.div(1, tf.addN([tf.neg(tf.zerosLike(x)), tf.neg(tf.zerosLike(x)), x])),
                ...f(tf.unstack(xd, axis)),
                ...f(tf.unstack(xd, axis - r)),
                ...f(tf.split(xd, parts, axis)),
                ...f(tf.split(tf.concat([xd, xd], axis), 2, axis)),
              ];
            });
          }
          got.cpu.forEach((c, i) =>
            sameValues(got.native[i], c, `${aShape} ${bShape} axis ${axis} ${dtype} out ${i}`)
          );
        },
      ),
      { numRuns: 120 },
    );
  },
});

Deno.test({
  name: testName("MaxPool, MaxPoolGrad and ArgMax equal cpu with NaN, ±∞ and ±0 in the windows"),
  ignore,
  fn: async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 2 }),
        fc.constantFrom("same", "valid"),
        fc.integer({ min: 2, max: 5 }),
        fc.integer({ min: 0, max: 1e6 }),
        async (h, w, c, f, st, pad, every, seed) => {
          const fs = Math.min(f, h, w);
          const xv = withSpecials(2 * h * w * c, seed, every);
          const r = await onBoth(() => {
            const x = tf.tensor4d(xv, [2, h, w, c]);
            const mp = tf.maxPool(x, fs, st, pad as "same" | "valid");
            const dy = tf.tensor(randArray(mp.size, seed + 1), mp.shape);
            const dx = tf.engine().runKernel("MaxPoolGrad", { dy, input: x, output: mp }, {
              filterSize: [fs, fs],
              strides: [st, st],
              pad,
            } as unknown as tf.NamedAttrMap) as tf.Tensor;
            return [
              mp,
              dx,
              tf.cast(tf.argMax(x, 0), "float32"),
              tf.cast(tf.argMax(x, 1), "float32"),
              tf.cast(tf.argMax(x, 3), "float32"),
            ];
          });
          // A window with no value above −∞ (all −∞ or NaN) sends its cotangent to its first element
          // on native (docs/algorithm.md#max-pool-ties) and drops it on cpu: dx is compared only
          // without such.
          const noWinner = r.cpu[0].some((v) => v !== v || v === -Infinity);
          r.cpu.forEach((v, i) => {
            const what = `pool ${h}x${w}x${c} out ${i}`;
            if (i !== 1) sameValues(r.native[i], v, what);
            else if (!noWinner) assertAllClose(r.native[i], v, TOL, what); // overlapping sums
          });
        },
      ),
      { numRuns: 80 },
    );
  },
});

Deno.test({
  name: testName("recycled output arrays never overwrite values that were read or are shared"),
  ignore,
  fn: async () => {
    const n = RECYCLE_MIN_ELEMENTS * 2;
    const xv = randArray(n, 5);
    await runOn("native", () => {
      const x = tf.tensor1d(xv);
      const before = recycleStats();
      // A kernel output read with dataSync, then disposed: its array must never be reused.
      const y = tf.relu(x);
      const read = y.dataSync() as Float32Array;
      const keep = Float32Array.from(read);
      y.dispose();
      // A kernel output viewed by the cpu's contiguous Slice (a subarray), then disposed.
      const z = tf.neg(x);
      const view = tf.slice(z, [1], [n - 1]);
      z.dispose();
      // A plain kernel output, disposed: its array is recycled by the next same-size kernel.
      tf.square(x).dispose();
      const stats = recycleStats();
      assert.ok(stats.freeBytes >= before.freeBytes + 4 * n, "a disposed output was recycled");
      // Many same-size outputs: they reuse recycled arrays and must not touch `read` or `view`.
      const outs = [tf.step(x), tf.mul(x, x), tf.add(x, 1), tf.neg(x), tf.relu(tf.neg(x))];
      assert.ok(recycleStats().reused > before.reused, "a recycled array was reused");
      sameValues(read, keep, "dataSync result after later kernels");
      sameValues(
        view.dataSync() as Float32Array,
        Float32Array.from(xv.subarray(1), (v) => -v),
        "slice view after later kernels",
      );
      sameValues(outs[1].dataSync() as Float32Array, xv.map((v) => v * v), "reused output");
      return [...outs, view];
    });
  },
});

Deno.test({
  name: testName("a full pool makes room for a new size by dropping the longest-kept arrays"),
  ignore,
  fn: async () => {
    const a = RECYCLE_MIN_ELEMENTS * 2 + 23, b = RECYCLE_MIN_ELEMENTS * 3 + 29; // lengths no other test uses
    const xa = tf.tensor1d(randArray(a, 1)), xb = tf.tensor1d(randArray(b, 2));
    const base = recycleStats().freeBytes;
    // Room for three arrays of size a beyond what waits; no array counts as large.
    const prev = setRecycleLimits({ maxBytes: base + 4 * 3 * a, firstBytes: 1 << 30 });
    try {
      await runOn("native", () => {
        tf.dispose([tf.neg(xa), tf.neg(xa), tf.neg(xa), tf.neg(xa)]);
        const full = recycleStats();
        assert.ok(full.freeBytes <= base + 4 * 3 * a, "within the limit");
        tf.neg(xb).dispose(); // a new size: the longest-kept arrays make room for it
        const after = recycleStats();
        assert.ok(after.evicted > full.evicted, "arrays were dropped for the new size");
        assert.ok(after.freeBytes <= base + 4 * 3 * a, "still within the limit");
        const out = tf.neg(xb); // reuses the array of size b
        assert.equal(
          recycleStats().reused,
          after.reused + 1,
          "the size-b array was kept and reused",
        );
        assert.deepEqual(
          Array.from(out.dataSync() as Float32Array),
          Array.from(xb.dataSync() as Float32Array, (v) => -v),
          "values of the reused array",
        );
        return out;
      });
    } finally {
      setRecycleLimits(prev);
      tf.dispose([xa, xb]);
    }
  },
});

Deno.test({
  name: testName("a recycled array returns to the pool only when every view of it is disposed"),
  ignore,
  fn: async () => {
    const n = RECYCLE_MIN_ELEMENTS * 2 + 13; // a length no other test uses
    const xv = randArray(n, 6);
    await runOn("native", () => {
      const x = tf.tensor1d(xv);
      const z = tf.neg(x);
      const a = tf.slice(z, [0], [100]), b = tf.slice(z, [100], [n - 100]); // views of z's array
      const s0 = recycleStats();
      z.dispose();
      a.dispose();
      assert.equal(recycleStats().freeBytes, s0.freeBytes, "b still lies on the array");
      // Same-size outputs while b lives: none may take b's array.
      const outs = [tf.square(x), tf.relu(x), tf.step(x), tf.mul(x, 3)];
      const copy = tf.add(b, 0); // b's values, copied by a kernel (reading b would pin its array)
      b.dispose();
      const s1 = recycleStats();
      assert.equal(s1.freeBytes, s0.freeBytes + 4 * n, "the last view disposed: back in the pool");
      const y = tf.mul(x, -2); // reuses it
      assert.equal(recycleStats().reused, s1.reused + 1, "the array was reused");
      sameValues(copy.dataSync() as Float32Array, xv.subarray(100).map((v) => -v), "view");
      sameValues(outs[0].dataSync() as Float32Array, xv.map((v) => v * v), "square");
      sameValues(y.dataSync() as Float32Array, xv.map((v) => v * -2), "reused output");
      return [...outs, copy, y];
    });
  },
});

Deno.test({
  name: testName("a full pool makes room for a large array by dropping smaller ones"),
  ignore,
  fn: async () => {
    const small = RECYCLE_MIN_ELEMENTS + 17, large = 4 * RECYCLE_MIN_ELEMENTS + 19;
    const xs = tf.tensor1d(randArray(small, 7)), xl = tf.tensor1d(randArray(large, 8));
    const base = recycleStats().freeBytes;
    // Room for 5 small arrays; arrays of ≥ 3 small ones' bytes take precedence.
    const prev = setRecycleLimits({ maxBytes: base + 4 * 5 * small, firstBytes: 4 * 3 * small });
    try {
      await runOn("native", () => {
        tf.dispose(Array.from({ length: 5 }, () => tf.neg(xs)));
        const full = recycleStats().freeBytes;
        assert.equal(full, base + 4 * 5 * small, "five small arrays kept");
        tf.neg(xs).dispose(); // a sixth small one does not fit: dropped
        assert.equal(recycleStats().freeBytes, full, "a small array does not displace others");
        tf.neg(xl).dispose(); // a large one displaces smaller ones
        const s = recycleStats();
        assert.ok(s.freeBytes <= base + 4 * 5 * small, "within the limit");
        const y = tf.neg(xl);
        assert.equal(recycleStats().reused, s.reused + 1, "the large array was kept and reused");
        return y;
      });
    } finally {
      setRecycleLimits(prev);
      tf.dispose([xs, xl]);
    }
  },
});

Deno.test({
  name: testName("overridden kernels leak no tensors"),
  ignore,
  fn: async () => {
    // runOn throws on a leak; this exercises every native kernel once inside tf.grads.
    await runOn("native", () => {
      const x = tf.tensor4d(randArray(2 * 6 * 6 * 3, 1), [2, 6, 6, 3]);
      const w = tf.tensor4d(randArray(3 * 3 * 3 * 4, 2), [3, 3, 3, 4]);
      const b = tf.tensor1d(randArray(4, 3));
      const g = tf.grads((xx: tf.Tensor, ww: tf.Tensor) => {
        const y = tf.relu(
          tf.add(tf.conv2d(xx as tf.Tensor4D, ww as tf.Tensor4D, 1, "same"), b),
        ) as tf.Tensor4D;
        const p = tf.add(tf.maxPool(y, 2, 2, "same"), tf.avgPool(y, 2, 2, "same"));
        const z = tf.fused.matMul({
          a: tf.reshape(p, [2, -1]),
          b: tf.ones([36, 5]),
          bias: b.slice(0, 1),
          activation: "relu",
        });
        return tf.sum(tf.sub(z, tf.step(z)));
      });
      return g([x, w]);
    });
  },
});

Deno.test({
  name: testName("the backend has every cpu kernel, and its own for exactly the overridden ones"),
  ignore,
  fn: () => {
    // (Kernels that only the native backend has, such as fused meta-network steps registered by
    // other modules, are not cpu kernels and not overrides: not counted here.)
    const cpu = tf.getKernelsForBackend("cpu");
    for (const k of cpu) {
      const mine = tf.getKernel(k.kernelName, NATIVE_BACKEND);
      assert.ok(mine, `no native ${k.kernelName}`);
      const own = mine.kernelFunc !== k.kernelFunc;
      assert.equal(own, OVERRIDDEN_KERNELS.includes(k.kernelName), k.kernelName);
    }
  },
});

Deno.test({
  name: testName("reading a slice view copies it: the array under it is still recycled"),
  ignore,
  fn: async () => {
    const n = RECYCLE_MIN_ELEMENTS * 2 + 31; // a length no other test uses
    const xv = randArray(n, 7);
    await runOn("native", () => {
      const x = tf.tensor1d(xv);
      const before = recycleStats();
      const z = tf.neg(x);
      const view = tf.slice(z, [1], [4]); // contiguous: the cpu Slice stores a subarray of z's array
      z.dispose();
      const read = view.dataSync() as Float32Array;
      assert.ok(read.buffer.byteLength < 4 * n, "a copy, not a view of the kernel's array");
      const keep = Float32Array.from(read);
      view.dispose();
      assert.ok(
        recycleStats().freeBytes >= before.freeBytes + 4 * n,
        "the array under the read slice went back to the pool",
      );
      const out = tf.mul(x, 2); // reuses that array
      assert.ok(recycleStats().reused > before.reused, "the array was reused");
      sameValues(read, keep, "read values after the array was reused");
      sameValues(keep, Float32Array.from(xv.subarray(1, 5), (v) => -v), "read values");
      return [x, out];
    });
  },
});
