/**
 * The native LSTM kernels' row pass on several threads. A chunk of rows at a time, the calling
 * thread and up to `threads − 1` row workers (`lstm_worker.ts`, `node:worker_threads`) each run a
 * share of the chunk's rows through every layer and the head (`lstm_rows.ts` `runRows`, the float32
 * WebAssembly kernel, one instance per thread), written straight into one output on a
 * SharedArrayBuffer. Inputs not on shared memory are copied for the workers' shares first.
 *
 * - Values equal the one-thread pass (`lstmRowsOneThread`) bit for bit.
 * - Threads: `MLHF_THREADS` when set (1 turns this off), else the machine's cores, at most
 *   {@link MAX_THREADS}. Calls under {@link THREADED_MIN_ROWS} rows use one thread.
 * - The workers start on the first large call (a handshake); when they cannot (no worker support,
 *   a module loaded over the network) the pass runs on one thread and {@link rowThreadsStatus}
 *   says why. A failed share is redone on the calling thread and the workers are stopped. Workers
 *   are unref'd: they never keep a process alive.
 * @module
 */
import { Worker } from "node:worker_threads";
import {
  checkPackedOut,
  type Head,
  type LayerData,
  lstmRowsOneThread,
  packedLength,
  type RowJob,
  runRows,
  U,
} from "./lstm_rows.ts";

/** Rows under which a call runs on the calling thread only (a share must be worth a message). */
export const THREADED_MIN_ROWS = 32_768;
/** Rows per chunk: a chunk's rows are shared out at once (the inputs copied for it: ≤ 10 MiB). */
export const CHUNK_ROWS = 131_072;
/** Most threads used (the calling one included). */
export const MAX_THREADS = 8;
/** How long the first call waits for the workers to start. */
const HANDSHAKE_MS = 30_000;
/** How long a share may take before the calling thread gives up on it and redoes it. */
const SHARE_MS = 600_000;

interface RowWorker {
  readonly worker: Worker;
  /** [answer (0 pending, 1 done, 2 failed), error text length], then the text's UTF-8 bytes. */
  readonly flag: Int32Array;
}

/** Bytes of a worker's error text kept in its flag buffer. */
export const ERROR_TEXT_BYTES = 1024;

/** The flag buffer of a worker: two int32s, then room for its error text. */
const flagBuffer = (): Int32Array =>
  new Int32Array(new SharedArrayBuffer(8 + ERROR_TEXT_BYTES), 0, 2);

/** The error text a worker wrote next to its flag. */
const errorText = (flag: Int32Array): string =>
  new TextDecoder().decode(
    new Uint8Array(flag.buffer, 8, Math.min(Atomics.load(flag, 1), ERROR_TEXT_BYTES)).slice(),
  );

/** Writes an error text next to a flag (the worker's side), cut to fit. */
export const writeErrorText = (flag: Int32Array, text: string): void => {
  const bytes = new TextEncoder().encode(text).subarray(0, ERROR_TEXT_BYTES);
  new Uint8Array(flag.buffer, 8, ERROR_TEXT_BYTES).set(bytes);
  Atomics.store(flag, 1, bytes.length);
};

let workers: RowWorker[] | null = null;
let status = "not started";

/** Threads wanted: `MLHF_THREADS` if set and valid, else the cores, capped at MAX_THREADS. */
export const threadsWanted = (): number => {
  let env: string | undefined;
  try {
    env = Deno.env.get("MLHF_THREADS");
  } catch {
    env = undefined; // no env permission: use the default
  }
  const cores = (globalThis.navigator as { hardwareConcurrency?: number } | undefined)
    ?.hardwareConcurrency ?? 1;
  const n = env !== undefined && /^\d+$/.test(env.trim()) ? Number(env) : cores;
  return Math.max(1, Math.min(MAX_THREADS, n));
};

/**
 * True when a pass over `n` rows is meant to be shared with row workers (it then needs its output
 * on shared memory); false when it runs on the calling thread.
 */
export const rowPassShared = (n: number): boolean => n >= THREADED_MIN_ROWS && threadsWanted() > 1;

/** Why the row pass runs on the threads it does (for reports and tests). */
export const rowThreadsStatus = (): string => status;

/** Stops the workers (the next large call starts them again). */
export const stopRowWorkers = (): void => {
  for (const w of workers ?? []) void w.worker.terminate();
  workers = null;
  status = "stopped";
};

/** Waits for a worker's answer: "ok", "failed" (it reported an error) or "timed out". */
const wait = (w: RowWorker, ms: number): "ok" | "failed" | "timed out" =>
  Atomics.wait(w.flag, 0, 0, ms) === "timed-out"
    ? "timed out"
    : Atomics.load(w.flag, 0) === 1
    ? "ok"
    : "failed";

/** Where the worker module is (tests point it elsewhere to exercise a failed start). */
let workerUrl = new URL("./lstm_worker.ts", import.meta.url);
/** Sets the worker module's URL and stops the workers (for tests); returns the previous one. */
export const setRowWorkerUrl = (url: URL): URL => {
  const prev = workerUrl;
  workerUrl = url;
  stopRowWorkers();
  return prev;
};

const startWorkers = (count: number): RowWorker[] => {
  if (workerUrl.protocol !== "file:") {
    status = "one thread: the module was not loaded from a file (workers need a local module)";
    return [];
  }
  const started: RowWorker[] = [];
  try {
    for (let k = 0; k < count; k++) {
      const worker = new Worker(workerUrl);
      worker.unref();
      const w: RowWorker = { worker, flag: flagBuffer() };
      started.push(w);
      worker.postMessage({ kind: "ping", flag: w.flag });
    }
    for (const w of started) {
      const answer = wait(w, HANDSHAKE_MS);
      if (answer === "timed out") {
        throw new Error(
          `a row worker (${workerUrl.href}) did not start in ${HANDSHAKE_MS / 1000} s`,
        );
      }
      if (answer === "failed") {
        throw new Error(`a row worker failed to start: ${errorText(w.flag)}`);
      }
    }
  } catch (e) {
    for (const w of started) void w.worker.terminate();
    status = `one thread: ${String((e as Error)?.message ?? e)}`;
    return [];
  }
  status = `${count + 1} threads`;
  return started;
};

/** The workers for a call, started on first use; [] when the pass runs on one thread. */
const rowWorkers = (): RowWorker[] => {
  const want = threadsWanted() - 1;
  if (want <= 0) {
    status = "one thread (MLHF_THREADS or the machine's cores)";
    return [];
  }
  if (workers === null) workers = startWorkers(want);
  return workers;
};

/**
 * A shared Float32Array as it crosses to a worker: a one-byte view of its buffer plus where it
 * lies. (Deno's `node:worker_threads` serializes a typed array element by element even when its
 * buffer is shared — seconds for millions of floats — while the buffer itself is shared as it should
 * be; so only a 1-byte view travels and the worker rebuilds the array on the same memory.)
 */
export interface SharedRef {
  readonly buffer: Uint8Array;
  readonly byteOffset: number;
  readonly length: number;
}
const ref = (a: Float32Array): SharedRef => ({
  buffer: new Uint8Array(a.buffer, 0, 1),
  byteOffset: a.byteOffset,
  length: a.length,
});
const deref = (r: SharedRef): Float32Array =>
  new Float32Array(r.buffer.buffer, r.byteOffset, r.length);

/** A {@link RowJob} as sent to a worker: row arrays as {@link SharedRef}s, weights as numbers. */
export interface RowMessage {
  readonly n: number;
  readonly first: number;
  readonly m: number;
  readonly x: SharedRef;
  readonly inW: number;
  readonly layers: ReadonlyArray<{
    readonly w: number[];
    readonly b: number[];
    readonly c: SharedRef;
    readonly h: SharedRef;
  }>;
  readonly head?: { readonly w: number[]; readonly b: number };
  readonly out: SharedRef;
}

/** A job as a {@link RowMessage} (its row arrays must lie on SharedArrayBuffers). */
const rowMessage = (job: RowJob): RowMessage => ({
  ...job,
  x: ref(job.x),
  layers: job.layers.map((ly) => ({
    w: Array.from(ly.w),
    b: Array.from(ly.b),
    c: ref(ly.c),
    h: ref(ly.h),
  })),
  head: job.head && { w: Array.from(job.head.w), b: job.head.b },
  out: ref(job.out),
});

/** The job a {@link RowMessage} describes (on the worker's side). */
export const rowJob = (msg: RowMessage): RowJob => ({
  ...msg,
  x: deref(msg.x),
  layers: msg.layers.map((ly) => ({
    w: Float32Array.from(ly.w),
    b: Float32Array.from(ly.b),
    c: deref(ly.c),
    h: deref(ly.h),
  })),
  head: msg.head && { w: Float32Array.from(msg.head.w), b: msg.head.b },
  out: deref(msg.out),
});

/** Shared scratch kept between calls, for the workers' copies of inputs not on shared memory. */
let scratch: Float32Array = new Float32Array(0);
const sharedScratch = (n: number): Float32Array => {
  if (scratch.length < n) scratch = new Float32Array(new SharedArrayBuffer(4 * n));
  return scratch;
};

/**
 * The packed output of the row pass over all `n` rows of `x` ([n, inW]) with the state rows of
 * `layers`, on as many threads as are available (see the module doc). Written into `into` when
 * given (its contents do not matter: every element is written; it must lie on a SharedArrayBuffer
 * for the workers to share the pass, else the pass runs on the calling thread), else into a fresh
 * array on shared memory.
 */
export const runLstmRows = (
  n: number,
  x: Float32Array,
  inW: number,
  layers: readonly LayerData[],
  head?: Head,
  into?: Float32Array,
): Float32Array => {
  const L = layers.length;
  if (into) checkPackedOut(into, n, L, head !== undefined);
  const intoShared = !into || into.buffer instanceof SharedArrayBuffer;
  let pool = n >= THREADED_MIN_ROWS && intoShared ? rowWorkers() : [];
  if (pool.length === 0) return lstmRowsOneThread(n, x, inW, layers, head, into);
  const out = into ??
    new Float32Array(new SharedArrayBuffer(4 * packedLength(n, L, head !== undefined)));
  const copies = sharedScratch(CHUNK_ROWS * (inW + 2 * L * U));
  for (let r0 = 0; r0 < n; r0 += CHUNK_ROWS) {
    const m = Math.min(CHUNK_ROWS, n - r0);
    const per = Math.ceil(m / (pool.length + 1)); // the calling thread's rows come first
    const sent: Array<{ w: RowWorker; job: RowJob }> = [];
    let used = 0;
    /** Rows [a, a + k) of `src` (width `w` per row), on shared memory (copied when not). */
    const shared = (src: Float32Array, w: number, a: number, k: number): Float32Array => {
      const rows = src.subarray(a * w, (a + k) * w);
      if (rows.buffer instanceof SharedArrayBuffer) return rows;
      const c = copies.subarray(used, used + k * w);
      used += k * w;
      c.set(rows);
      return c;
    };
    pool.forEach((w, k) => {
      const s0 = r0 + (k + 1) * per, sm = Math.min(per, r0 + m - s0);
      if (sm <= 0) return;
      const job: RowJob = {
        n,
        first: s0,
        m: sm,
        x: shared(x, inW, s0, sm),
        inW,
        layers: layers.map((ly) => ({
          ...ly,
          c: shared(ly.c, U, s0, sm),
          h: shared(ly.h, U, s0, sm),
        })),
        head,
        out,
      };
      Atomics.store(w.flag, 0, 0);
      Atomics.store(w.flag, 1, 0);
      w.worker.postMessage({ kind: "rows", msg: rowMessage(job), flag: w.flag });
      sent.push({ w, job });
    });
    const mine = Math.min(per, m);
    runRows({
      n,
      first: r0,
      m: mine,
      x: x.subarray(r0 * inW, (r0 + mine) * inW),
      inW,
      layers: layers.map((ly) => ({
        ...ly,
        c: ly.c.subarray(r0 * U, (r0 + mine) * U),
        h: ly.h.subarray(r0 * U, (r0 + mine) * U),
      })),
      head,
      out,
    });
    let failed = "";
    for (const { w, job } of sent) {
      const answer = wait(w, SHARE_MS);
      if (answer === "ok") continue;
      failed ||= answer === "failed"
        ? errorText(w.flag)
        : `a share did not finish in ${SHARE_MS / 1000} s`;
      runRows(job); // redo it here (same values)
    }
    if (failed) { // the rest of the call and later calls run on this thread
      stopRowWorkers();
      workers = pool = [];
      status = `one thread: a row worker failed (${failed})`;
    }
  }
  return out;
};
