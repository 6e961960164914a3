import { tf } from "../_deps.ts";
import { assert, fc } from "../../tests/_util/deps.ts";
import { useTestBackend } from "../../tests/_util/backend.ts";
import { withNoLeaks } from "../../tests/_util/numeric.ts";
import { type Batch, disposeBatch, oneHot } from "./batch.ts";
import { cifar10Source } from "./cifar10.ts";
import { DataError, TooFewExamplesError } from "./errors.ts";
import type { ByteImages } from "./images.ts";
import {
  batches,
  type BatchStream,
  parsePosition,
  type PipelineOptions,
  windows,
} from "./pipeline.ts";
import { type Source, unitScaleSource } from "./source.ts";

await useTestBackend();

/** n 2×2 one-channel images whose first pixel is their index; labels index mod 10. */
const indexed = (n: number): ByteImages => {
  const pixels = new Uint8Array(n * 4);
  for (let i = 0; i < n; i++) pixels.set([i, 1, 2, 3], 4 * i);
  return {
    name: `indexed-${n}`,
    pixels,
    labels: Int32Array.from({ length: n }, (_, i) => i % 10),
    shape: [2, 2, 1],
    numClasses: 10,
  };
};

/** The image indices in a batch of `indexed` images (and checks labels and shapes). */
const idsOf = (b: Batch): number[] => {
  const x = b.x.dataSync(), y = b.y.dataSync();
  const n = b.y.shape[0];
  assert.deepEqual(b.x.shape, [n, 2, 2, 1]);
  const ids = Array.from({ length: n }, (_, i) => Math.round(x[4 * i] * 255));
  ids.forEach((id, i) => assert.equal(y[i], id % 10));
  return ids;
};

/** Takes up to `count` batches as id lists, disposing them. */
const take = async (stream: BatchStream, count = Infinity): Promise<number[][]> => {
  const out: number[][] = [];
  while (out.length < count) {
    const b = await stream.next();
    if (b === null) break;
    out.push(idsOf(b));
    disposeBatch(b);
  }
  return out;
};

Deno.test("pipeline: each epoch draws every id once through the buffer; the remainder is dropped", async () => {
  await withNoLeaks(async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 0, max: 50 }),
        fc.nat(),
        async (n, batchSize, shuffleBuffer, seed) => {
          const stream = batches(unitScaleSource(indexed(n)), {
            batchSize,
            shuffleBuffer,
            seed,
            epochs: 2,
          });
          const perEpoch = Math.floor(n / batchSize);
          if (perEpoch === 0) {
            await assert.rejects(() => stream.next(), TooFewExamplesError);
            return;
          }
          const all = await take(stream);
          assert.equal(all.length, 2 * perEpoch);
          for (let e = 0; e < 2; e++) {
            const ids = all.slice(e * perEpoch, (e + 1) * perEpoch).flat();
            assert.equal(new Set(ids).size, ids.length, "no id twice in an epoch");
            assert.ok(ids.every((id) => id >= 0 && id < n));
            assert.ok(all.every((b) => b.length === batchSize));
          }
          assert.deepEqual({ ...stream.position, stream: "" }, {
            version: 1,
            stream: "",
            epoch: 1,
            step: perEpoch,
            consumed: perEpoch * batchSize,
            globalStep: 2 * perEpoch,
          });
          assert.equal(await stream.next(), null);
        },
      ),
      { numRuns: 30 },
    );
  });
});

Deno.test("pipeline: a seed fixes the order; seeds and epochs differ; buffer 1 keeps storage order", async () => {
  const source = unitScaleSource(indexed(60));
  const run = (o: Partial<PipelineOptions>) =>
    take(batches(source, { batchSize: 6, seed: 0, shuffleBuffer: 20, epochs: 2, ...o }));
  await withNoLeaks(async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 2 ** 31 }), async (seed) => {
        const a = await run({ seed });
        assert.deepEqual(await run({ seed }), a);
        assert.notDeepEqual(await run({ seed: seed + 1 }), a);
        assert.notDeepEqual(a.slice(0, 10), a.slice(10), "each epoch is reshuffled");
      }),
      { numRuns: 5 },
    );
    const ordered = (await run({ shuffleBuffer: 1, epochs: 1 })).flat();
    assert.deepEqual(ordered, Array.from({ length: 60 }, (_, i) => i));
  });
});

const sameBatches = (a: Batch[], b: Batch[]) => {
  assert.equal(a.length, b.length);
  a.forEach((x, i) => {
    assert.deepEqual(x.x.dataSync(), b[i].x.dataSync());
    assert.deepEqual(x.y.dataSync(), b[i].y.dataSync());
  });
};

Deno.test("pipeline: a position serialized to JSON resumes exactly the same stream (augmentation included)", async () => {
  const images: ByteImages = {
    name: "cifar10/synthetic",
    pixels: Uint8Array.from({ length: 10 * 3072 }, (_, i) => (i * 13 + (i >> 7)) % 256),
    labels: Int32Array.from({ length: 10 }, (_, i) => i),
    shape: [32, 32, 3],
    numClasses: 10,
  };
  const source = cifar10Source(images, true);
  const options = { batchSize: 3, seed: 9, shuffleBuffer: 4 };
  await withNoLeaks(async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 9 }), async (k) => {
        const original = batches(source, options);
        disposeBatch(
          await Promise.all(Array.from({ length: k }, () => original.next().then((b) => b!))),
        );
        const saved = JSON.stringify(original.position);
        const expected = [];
        for (let i = 0; i < 4; i++) expected.push((await original.next())!);
        const resumed = batches(source, {
          ...options,
          resumeFrom: parsePosition(JSON.parse(saved)),
        });
        const got = [];
        for (let i = 0; i < 4; i++) got.push((await resumed.next())!);
        sameBatches(got, expected);
        assert.deepEqual(resumed.position, original.position);
        assert.equal(original.position.globalStep, k + 4);
        disposeBatch([...expected, ...got]);
        await original.close();
        await resumed.close();
      }),
      { numRuns: 8 },
    );
  });
});

Deno.test("pipeline: resuming under other options or from a non-position is an error", () => {
  const source = unitScaleSource(indexed(10));
  const position = batches(source, { batchSize: 2, seed: 1 }).position;
  assert.throws(
    () => batches(source, { batchSize: 2, seed: 2, resumeFrom: position }),
    (e: unknown) =>
      e instanceof DataError &&
      /cannot resume: the position is for stream "indexed-10\|batch=2\|shuffle=1\|seed=1"/.test(
        e.message,
      ),
  );
  assert.throws(() => parsePosition({ ...position, epoch: -1 }), DataError);
  assert.throws(() => parsePosition({ epoch: 0 }), /not a pipeline position/);
  assert.deepEqual(parsePosition(JSON.stringify(position)), position);
  assert.throws(() => batches(source, { batchSize: 0, seed: 1 }), RangeError);
});

Deno.test("pipeline: windows are T consecutive batches across epochs; a partial window is disposed", async () => {
  const source = unitScaleSource(indexed(10));
  const options = { batchSize: 2, seed: 4, shuffleBuffer: 5, epochs: 2 };
  const plain = await take(batches(source, options));
  assert.equal(plain.length, 10);
  await withNoLeaks(async () => {
    const stream = batches(source, options);
    const got: number[][][] = [];
    for await (const w of windows(stream, 3)) {
      got.push(w.map(idsOf));
      assert.equal(stream.position.globalStep, 3 * got.length);
      disposeBatch(w);
    }
    assert.deepEqual(got, [plain.slice(0, 3), plain.slice(3, 6), plain.slice(6, 9)]);
    // Stopping early disposes nothing the caller holds and leaks nothing.
    const early = batches(source, options);
    for await (const w of windows(early, 2)) {
      disposeBatch(w);
      break;
    }
    await early.close();
  });
});

/** A source that counts loads and can fail on one id. */
const counting = (n: number, failAt = -1) => {
  const inner = unitScaleSource(indexed(n));
  const state = { loads: 0 };
  const source: Source<number> = {
    ...inner,
    load: (id, key) => {
      state.loads++;
      if (id === failAt) throw new DataError("broken example", { file: "f", record: id });
      return inner.load(id, key);
    },
  };
  return { source, state };
};

const tick = () => new Promise((r) => setTimeout(r, 0));

Deno.test("pipeline: the next batch is built while the current step runs", async () => {
  await withNoLeaks(async () => {
    for (const prefetch of [0, 1, 2]) {
      const { source, state } = counting(40);
      const stream = batches(source, { batchSize: 4, seed: 1, prefetch });
      const b = (await stream.next())!;
      await tick(); // the "training step"
      assert.equal(state.loads, 4 * (1 + prefetch), `prefetch ${prefetch}`);
      disposeBatch(b);
      await stream.close();
    }
  });
});

Deno.test("pipeline: a failing example rejects its batch with the DataError; prefetched failures do not escape", async () => {
  await withNoLeaks(async () => {
    const failing = counting(20, 5).source;
    const stream = batches(failing, { batchSize: 4, seed: 1 });
    disposeBatch((await stream.next())!);
    await assert.rejects(stream.next(), /f: record 5: broken example/);
    assert.equal(await stream.next(), null);
    // A failure inside a prefetched batch that is never asked for is dropped on close.
    const other = batches(failing, { batchSize: 4, seed: 1, prefetch: 2 });
    disposeBatch((await other.next())!);
    await tick();
    await other.close();
  });
});

Deno.test("pipeline: fewer examples than one batch is an error, not an empty or endless stream", async () => {
  await withNoLeaks(async () => {
    // Finite epochs: the stream used to end having yielded nothing; unbounded: it spun forever.
    for (const epochs of [3, Infinity]) {
      const stream = batches(unitScaleSource(indexed(5)), { batchSize: 8, seed: 1, epochs });
      await assert.rejects(
        () => stream.next(),
        TooFewExamplesError,
        "indexed-5: 5 example(s) per epoch, fewer than one batch of 8: no batch can be made",
      );
      await stream.close();
    }
    // Corrupt records count against the batch: 9 ids, 2 skipped, 7 usable < 8.
    const inner = unitScaleSource(indexed(9));
    const skipping: Source<number> = {
      ...inner,
      load: (id, key) => (id === 2 || id === 6 ? null : inner.load(id, key)),
    };
    const stream = batches(skipping, { batchSize: 8, seed: 1, epochs: 2 });
    await assert.rejects(
      () => stream.next(),
      /7 example\(s\) per epoch \(2 corrupt one\(s\) skipped\)/,
    );
    await stream.close();
    // A resumed stream that starts at the end of an epoch goes on to the next one.
    const ok = batches(unitScaleSource(indexed(10)), { batchSize: 8, seed: 1, epochs: 2 });
    disposeBatch((await ok.next())!);
    const resumed = batches(unitScaleSource(indexed(10)), {
      batchSize: 8,
      seed: 1,
      epochs: 2,
      resumeFrom: ok.position,
    });
    assert.deepEqual((await take(resumed)).length, 1);
    await ok.close();
  });
});

Deno.test("batch: one-hot labels are float32 [B, classes]", async () => {
  await withNoLeaks(() => {
    const y = tf.tensor1d([2, 0, 1], "int32");
    const h = oneHot(y, 3);
    assert.equal(h.dtype, "float32");
    assert.deepEqual(h.arraySync(), [[0, 0, 1], [1, 0, 0], [0, 1, 0]]);
    tf.dispose([y, h]);
  });
});
