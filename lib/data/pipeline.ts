/**
 * The input pipeline: seeded shuffling through a buffer of configurable size, batches with the
 * remainder of each epoch dropped, windows of T consecutive batches, prefetch of the next batch
 * while the current step runs, and a JSON-serializable position to resume a stream exactly.
 *
 * The shuffle buffer holds example ids, not examples, so it costs a few bytes per slot whatever
 * the images' size; it draws the same permutations as a buffer of examples. Every random choice is
 * derived from the seed, the epoch and the example's index in the epoch, so a stream resumed from
 * a position replays the ids (cheap: no decoding) and continues with identical batches.
 *
 * A source with fewer usable examples than one batch is an error (`TooFewExamplesError`, at the
 * end of the first whole epoch), never a stream that spins through empty epochs or yields nothing.
 * @module
 */
import { E, t } from "../_deps.ts";
import { foldIn, type Key, keyFromSeed, split, stream } from "../prng.ts";
import { type Batch, disposeBatch, type HostBatch, toBatch } from "./batch.ts";
import { DataError, TooFewExamplesError } from "./errors.ts";
import { imageSize } from "./images.ts";
import type { Example, Source } from "./source.ts";

/** Where a stream is: enough to resume exactly the same stream (serialize with JSON.stringify). */
export interface Position {
  /** Format version of the position. */
  readonly version: 1;
  /** Fingerprint of the source and options; resuming under another one is an error. */
  readonly stream: string;
  /** Epoch the next batch comes from (0-based). */
  readonly epoch: number;
  /** Batches already handed out in this epoch. */
  readonly step: number;
  /** Ids already drawn from this epoch's shuffled order (including skipped corrupt ones). */
  readonly consumed: number;
  /** Batches handed out since the stream began, over all epochs. */
  readonly globalStep: number;
}

const Count = t.refinement(t.number, (n) => Number.isInteger(n) && n >= 0, "non-negative integer");
const PositionCodec = t.type({
  version: t.literal(1),
  stream: t.string,
  epoch: Count,
  step: Count,
  consumed: Count,
  globalStep: Count,
});

/** Decodes a position read back from JSON (a DataError says what is wrong). */
export const parsePosition = (json: unknown): Position => {
  const value = typeof json === "string" ? JSON.parse(json) : json;
  const decoded = PositionCodec.decode(value);
  if (E.isLeft(decoded)) {
    throw new DataError(
      `not a pipeline position: ${
        JSON.stringify(value)
      } (expected {version: 1, stream, epoch, step, consumed, globalStep})`,
    );
  }
  return decoded.right;
};

/** Options of `batches`. */
export interface PipelineOptions {
  /** Examples per batch; an epoch's last incomplete batch is dropped. */
  readonly batchSize: number;
  /** Seed of the shuffle, the shard order and every augmentation. */
  readonly seed: number;
  /** Shuffle buffer size; 0 or 1 keeps storage order (default 0). */
  readonly shuffleBuffer?: number;
  /** Stop after this many epochs (default: never). */
  readonly epochs?: number;
  /** Batches built ahead while the consumer works (default 1; 0 turns prefetch off). */
  readonly prefetch?: number;
  /** Resume from a position reported by a stream with the same source and options. */
  readonly resumeFrom?: Position;
}

/** Ids through a shuffle buffer of `size` slots drawing from `r` (order kept when size ≤ 1). */
export async function* shuffleBuffer<Id>(
  ids: Iterable<Id> | AsyncIterable<Id>,
  size: number,
  r: () => number,
): AsyncGenerator<Id> {
  if (size <= 1) {
    yield* ids;
    return;
  }
  const buffer: Id[] = [];
  for await (const id of ids) {
    if (buffer.length < size) {
      buffer.push(id);
      continue;
    }
    const j = Math.min(size - 1, Math.floor(r() * size));
    yield buffer[j];
    buffer[j] = id;
  }
  while (buffer.length) {
    const j = Math.min(buffer.length - 1, Math.floor(r() * buffer.length));
    yield buffer[j];
    buffer[j] = buffer[buffer.length - 1];
    buffer.pop();
  }
}

interface Keys {
  readonly shuffle: Key;
  readonly order: Key;
  readonly augment: Key;
}

type Positioned = HostBatch & { readonly position: Position };

async function* hostBatches<Id>(
  source: Source<Id>,
  options: Required<Pick<PipelineOptions, "batchSize" | "shuffleBuffer" | "epochs">>,
  keys: Keys,
  start: Position,
): AsyncGenerator<Positioned> {
  const { batchSize, shuffleBuffer: bufferSize, epochs } = options;
  let { epoch, step, consumed, globalStep } = start;
  for (; epoch < epochs; epoch++, step = 0, consumed = 0) {
    const ids = source.ids(epoch, foldIn(keys.order, epoch));
    const order = shuffleBuffer(ids, bufferSize, stream(foldIn(keys.shuffle, epoch)))[
      Symbol.asyncIterator
    ]();
    try {
      const fromStart = consumed === 0;
      const seen = yield* epochBatches(
        source,
        order,
        batchSize,
        foldIn(keys.augment, epoch),
        consumed,
        (b) => {
          step++;
          globalStep++;
          return { ...start, epoch, step, consumed: b, globalStep };
        },
      );
      // A whole epoch without one batch: every later epoch is the same, so never spin on.
      if (fromStart && seen.loaded < batchSize) {
        throw new TooFewExamplesError(source.name, seen.loaded, batchSize, seen.drawn);
      }
    } finally {
      await order.return?.(undefined); // closes what the source holds open (e.g. a shard)
    }
  }
}

const checkExample = (source: Source<unknown>, example: Example, size: number): void => {
  if (example.image.length !== size) {
    throw new Error(
      `${source.name}: example has ${example.image.length} values, expected ${size} for shape [${source.shape}]`,
    );
  }
  const { label } = example;
  if (!(Number.isInteger(label) && label >= 0 && label < source.numClasses)) {
    throw new Error(`${source.name}: label ${label} outside 0..${source.numClasses - 1}`);
  }
};

/**
 * The batches of one epoch from its shuffled ids, after skipping the first `consumed`; returns
 * how many ids it drew and how many examples loaded (corrupt ones skipped) after the skipped ones.
 */
async function* epochBatches<Id>(
  source: Source<Id>,
  order: AsyncIterator<Id>,
  batchSize: number,
  augmentKey: Key,
  consumed: number,
  positionAfter: (consumed: number) => Position,
): AsyncGenerator<Positioned, { drawn: number; loaded: number }> {
  const size = imageSize(source.shape);
  let index = 0, loaded = 0;
  while (index < consumed && !(await order.next()).done) index++;
  let x = new Float32Array(batchSize * size), y = new Int32Array(batchSize), filled = 0;
  for (let next = await order.next(); !next.done; next = await order.next()) {
    const example = await source.load(next.value, foldIn(augmentKey, index));
    index++;
    if (example === null) continue;
    loaded++;
    checkExample(source as Source<unknown>, example, size);
    x.set(example.image, filled * size);
    y[filled++] = example.label;
    if (filled === batchSize) {
      yield { x, y, shape: source.shape, position: positionAfter(index) };
      x = new Float32Array(batchSize * size);
      y = new Int32Array(batchSize);
      filled = 0;
    }
  }
  return { drawn: Math.max(0, index - consumed), loaded };
}

/** A stream of batches; iterate it, or call `next` and read `position` after each batch. */
export class BatchStream implements AsyncIterable<Batch> {
  #generator: AsyncGenerator<Positioned>;
  #queue: Promise<IteratorResult<Positioned>>[] = [];
  #position: Position;
  readonly #prefetch: number;

  /** Use `batches(...)` to make one. */
  constructor(generator: AsyncGenerator<Positioned>, start: Position, prefetch: number) {
    this.#generator = generator;
    this.#position = start;
    this.#prefetch = prefetch;
  }

  /** Position after the last batch handed out: pass it as `resumeFrom` to continue from there. */
  get position(): Position {
    return this.#position;
  }

  /** The next batch as tensors (the caller disposes them), or null at the end of the stream. */
  async next(): Promise<Batch | null> {
    if (this.#queue.length === 0) this.#queue.push(this.#pull());
    const head = this.#queue.shift()!;
    while (this.#queue.length < this.#prefetch) this.#queue.push(this.#pull());
    const result = await head;
    if (result.done) return null;
    this.#position = result.value.position;
    return toBatch(result.value);
  }

  /** Stops the stream and drops prefetched batches (host memory only: no tensors to leak). */
  async close(): Promise<void> {
    const pending = this.#queue;
    this.#queue = [];
    await Promise.allSettled(pending);
    await this.#generator.return(undefined);
  }

  /** The remaining batches, in order; the stream is closed when the loop ends or breaks. */
  async *[Symbol.asyncIterator](): AsyncGenerator<Batch> {
    try {
      for (let b = await this.next(); b !== null; b = await this.next()) yield b;
    } finally {
      await this.close();
    }
  }

  #pull(): Promise<IteratorResult<Positioned>> {
    const p = this.#generator.next();
    p.catch(() => {}); // a prefetched failure is reported when its batch is asked for
    return p;
  }
}

/** The fingerprint that a position must match to resume a stream. */
export const streamFingerprint = (source: Source<unknown>, options: PipelineOptions): string =>
  `${source.name}|batch=${options.batchSize}|shuffle=${
    Math.max(1, options.shuffleBuffer ?? 0)
  }|seed=${options.seed}`;

/** Batches from `source`: shuffled, augmented and batched as `options` says, resumable. */
export const batches = <Id>(source: Source<Id>, options: PipelineOptions): BatchStream => {
  const { batchSize, seed } = options;
  if (!(Number.isInteger(batchSize) && batchSize >= 1)) {
    throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
  }
  const fingerprint = streamFingerprint(source as Source<unknown>, options);
  const start: Position = options.resumeFrom ??
    { version: 1, stream: fingerprint, epoch: 0, step: 0, consumed: 0, globalStep: 0 };
  if (start.stream !== fingerprint) {
    throw new DataError(
      `cannot resume: the position is for stream "${start.stream}", this stream is "${fingerprint}"`,
    );
  }
  const [shuffle, order, augment] = split(keyFromSeed(seed), 3);
  const generator = hostBatches(
    source,
    {
      batchSize,
      shuffleBuffer: options.shuffleBuffer ?? 0,
      epochs: options.epochs ?? Infinity,
    },
    { shuffle, order, augment },
    start,
  );
  return new BatchStream(generator, start, Math.max(0, options.prefetch ?? 1));
};

/**
 * Windows of `size` consecutive batches (meta-training's unrolled steps); they may span epochs.
 * A final incomplete window is disposed, not yielded. The stream's position after a window is the
 * position to resume from. The caller disposes each window (`disposeBatch`).
 */
export async function* windows(batchStream: BatchStream, size: number): AsyncGenerator<Batch[]> {
  if (!(Number.isInteger(size) && size >= 1)) {
    throw new RangeError(`window size must be a positive integer, got ${size}`);
  }
  let window: Batch[] = [];
  try {
    for (let b = await batchStream.next(); b !== null; b = await batchStream.next()) {
      window.push(b);
      if (window.length === size) {
        const full = window;
        window = [];
        yield full;
      }
    }
  } finally {
    disposeBatch(window);
  }
}
