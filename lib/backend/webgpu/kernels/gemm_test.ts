import { assert } from "../../../../tests/_util/deps.ts";
import { chooseTiling, gemmDispatch, withSplits } from "./gemm.ts";

Deno.test("webgpu gemm: 128-wide tiles for long sides, 64×64 and split k for few tiles", () => {
  assert.deepEqual(chooseTiling({ batch: 1, m: 4096, n: 4096, k: 4096 }), {
    tm: 8,
    tn: 8,
    splits: 1,
    kChunk: 4096,
  });
  // The convnet's dense layer: [128, 4096]·[4096, 384] → 2·6 = 12 tiles of 64, k split in 8.
  const dense = chooseTiling({ batch: 1, m: 128, n: 384, k: 4096 });
  assert.deepEqual([dense.tm, dense.splits, dense.kChunk], [4, 8, 512]);
  // The first conv layer's filter gradient: [75, 131072]·[131072, 64] → 2 tiles, 64 splits.
  const filt = chooseTiling({ batch: 1, m: 75, n: 64, k: 128 * 32 * 32 });
  assert.deepEqual([filt.tm, filt.splits, filt.kChunk], [4, 64, 2048]);
  // A 64-wide side gets 64-wide tiles: the convnet's 64→64 conv, forward, at batch 128.
  const conv = chooseTiling({ batch: 1, m: 128 * 16 * 16, n: 64, k: 1600 });
  assert.deepEqual([conv.tm, conv.tn, conv.splits], [8, 4, 1]);
  // Short k is never split.
  assert.equal(chooseTiling({ batch: 1, m: 40, n: 40, k: 1000 }).splits, 1);
});

Deno.test("webgpu gemm: k chunks are multiples of 8 and cover k without empty splits", () => {
  for (const [k, s] of [[997, 3], [1000, 4], [20, 5], [8, 1], [1, 7], [4097, 64]]) {
    const t = withSplits(4, 4, k, s);
    assert.equal(t.kChunk % 8, 0, `k ${k}`);
    assert.ok(t.splits * t.kChunk >= k && (t.splits - 1) * t.kChunk < k, `k ${k} splits ${s}`);
    assert.ok(t.splits <= s, `k ${k}: ${t.splits} > ${s}`);
  }
});

Deno.test("webgpu gemm: the grid is refused past the device's per-dimension limit", () => {
  const t = withSplits(8, 8, 64, 1);
  assert.deepEqual(gemmDispatch({ batch: 3, m: 300, n: 129, k: 64 }, t, 65535), [2, 3, 3]);
  assert.equal(gemmDispatch({ batch: 1, m: 128 * 70000, n: 8, k: 8 }, t, 65535), null);
});
