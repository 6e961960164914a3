import { tf } from "../_deps.ts";
import { assert, fc } from "../../tests/_util/deps.ts";
import { useTestBackend } from "../../tests/_util/backend.ts";
import { assertAllClose, withNoLeaks } from "../../tests/_util/numeric.ts";
import { keyFromSeed, stream } from "../prng.ts";
import {
  aspectPreservingSize,
  cropOrPad,
  padCropFlip,
  resizeBilinearCrop,
  standardize,
} from "./augment.ts";
import { preprocessCifar10Test, preprocessCifar10Train } from "./cifar10.ts";
import {
  IMAGENET_PREPROCESSING,
  preprocessImagenetEval,
  preprocessImagenetTrain,
  VGG_MEANS,
} from "./imagenet.ts";

await useTestBackend();

const image = (h: number, w: number, c: number, seed: number) =>
  Uint8Array.from({ length: h * w * c }, (_, i) => (i * 31 + seed * 17) % 256);

const meanStd = (x: Float32Array) => {
  const m = x.reduce((s, v) => s + v, 0) / x.length;
  return [m, Math.sqrt(x.reduce((s, v) => s + (v - m) ** 2, 0) / x.length)];
};

Deno.test("augment: CIFAR training keeps the shape, standardizes, and only shifts/mirrors pixels", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 2 ** 31 }),
      fc.integer({ min: 0, max: 255 }),
      (seed, lvl) => {
        const src = image(32, 32, 3, seed).map((v) => (v + lvl) % 256);
        const out = preprocessCifar10Train(src, stream(keyFromSeed(seed)));
        assert.equal(out.length, 3072);
        const [m, s] = meanStd(out);
        assert.ok(Math.abs(m) < 1e-4 && Math.abs(s - 1) < 1e-3, `mean ${m}, std ${s}`);
        assert.ok(out.every((v) => Number.isFinite(v) && Math.abs(v) <= Math.sqrt(3072)));
        // Before standardization, each output pixel is zero padding or a source pixel at a shift
        // in -4..4 (mirrored or not) that is the same for the whole image.
        const raw = padCropFlip(src, [32, 32, 3], 4, stream(keyFromSeed(seed)));
        const found = [];
        for (const flip of [false, true]) {
          for (let dy = -4; dy <= 4; dy++) {
            for (let dx = -4; dx <= 4; dx++) {
              const cand = cropOrPad(src, [32, 32, 3], dy, dx, 32, 32, flip);
              if (cand.every((v, i) => v === raw[i])) found.push([flip, dy, dx]);
            }
          }
        }
        assert.ok(found.length >= 1, "the crop is a shifted (and maybe mirrored) window");
      },
    ),
    { numRuns: 15 },
  );
  // A constant image standardizes to zeros (std floored at 1/√n), not NaN.
  assert.ok(preprocessCifar10Test(new Uint8Array(3072).fill(9)).every((v) => v === 0));
});

Deno.test("augment: a seed fixes the augmentation; seeds differ", () => {
  const src = image(32, 32, 3, 5);
  const a = preprocessCifar10Train(src, stream(keyFromSeed(11)));
  assert.deepEqual(a, preprocessCifar10Train(src, stream(keyFromSeed(11))));
  const outs = new Set(
    Array.from({ length: 8 }, (_, s) => preprocessCifar10Train(src, stream(keyFromSeed(s))).join()),
  );
  assert.ok(outs.size > 1);
});

Deno.test("augment: crop-or-pad and flip are exact; standardize matches its formula", () => {
  const src = image(3, 4, 2, 1);
  assert.deepEqual(cropOrPad(src, [3, 4, 2], 0, 0, 3, 4), Float32Array.from(src));
  const flipped = cropOrPad(src, [3, 4, 2], 0, 0, 3, 4, true);
  assert.deepEqual(cropOrPad(flipped, [3, 4, 2], 0, 0, 3, 4, true), Float32Array.from(src));
  assert.deepEqual([...flipped.subarray(0, 2)], [...src.subarray(6, 8)]); // (0,0) ← (0,3)
  const padded = cropOrPad(src, [3, 4, 2], -1, -1, 5, 6);
  assert.equal(padded[0], 0);
  assert.equal(padded[(1 * 6 + 1) * 2], src[0]);
  const x = Float32Array.of(1, 2, 3, 4);
  standardize(x);
  const s = Math.sqrt(1.25);
  assertAllClose(x, [-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s]);
});

Deno.test("augment: fused resize+crop equals TF's resizeBilinear then slice", async () => {
  await withNoLeaks(() => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 9 }),
        fc.integer({ min: 2, max: 9 }),
        fc.integer({ min: 1, max: 14 }),
        fc.integer({ min: 1, max: 14 }),
        fc.nat(),
        fc.boolean(),
        (h, w, rh, rw, seed, flip) => {
          const src = image(h, w, 3, seed);
          const r = stream(keyFromSeed(seed));
          const oh = 1 + Math.floor(r() * rh), ow = 1 + Math.floor(r() * rw);
          const top = Math.floor(r() * (rh - oh + 1)), left = Math.floor(r() * (rw - ow + 1));
          const ours = resizeBilinearCrop(src, [h, w, 3], [rh, rw], top, left, oh, ow, flip);
          const theirs = tf.tidy(() => {
            const img = tf.tensor3d(Float32Array.from(src), [h, w, 3]);
            const resized = tf.image.resizeBilinear(img, [rh, rw], false, false);
            const crop = tf.slice(resized, [top, left, 0], [oh, ow, 3]);
            return (flip ? tf.reverse(crop, 1) : crop).dataSync() as Float32Array;
          });
          assertAllClose(ours, theirs, { rtol: 1e-5, atol: 1e-3 });
        },
      ),
      { numRuns: 40 },
    );
  });
});

Deno.test("augment: ImageNet preprocessing keeps the crop shape and the mean-shifted [0,1] range", () => {
  const p = { ...IMAGENET_PREPROCESSING, cropSize: 8, resizeMin: 9, resizeMax: 15, evalResize: 10 };
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 30 }),
      fc.integer({ min: 1, max: 30 }),
      fc.nat(),
      (h, w, seed) => {
        const img = { height: h, width: w, data: image(h, w, 3, seed) };
        for (
          const out of [
            preprocessImagenetTrain(img, stream(keyFromSeed(seed)), p),
            preprocessImagenetEval(img, p),
          ]
        ) {
          assert.equal(out.length, 8 * 8 * 3);
          out.forEach((v, i) => {
            const m = VGG_MEANS[i % 3];
            assert.ok(v >= -m - 1e-6 && v <= 1 - m + 1e-6, `value ${v} outside [${-m}, ${1 - m}]`);
          });
        }
        assert.deepEqual(preprocessImagenetEval(img, p), preprocessImagenetEval(img, p));
      },
    ),
    { numRuns: 40 },
  );
});

Deno.test("augment: aspect-preserving size puts the short side at the target, rounding half to even", () => {
  assert.deepEqual(aspectPreservingSize(375, 500, 256), [256, 341]);
  assert.deepEqual(aspectPreservingSize(500, 375, 256), [341, 256]);
  assert.deepEqual(aspectPreservingSize(2, 5, 3), [3, 8]); // 7.5 → 8 (even)
  assert.deepEqual(aspectPreservingSize(2, 7, 3), [3, 10]); // 10.5 → 10 (even)
});
