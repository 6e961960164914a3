/**
 * The LSTM row pass on several threads (`lstm_threads.ts`): bit-identical to the one-thread pass
 * (`lstm_rows.ts`; `lstm_test.ts` checks that against the op composition), for inputs on plain and
 * on shared memory, row counts that do and do not fill the last chunk or block, with
 * and without the head; a worker that fails its shares leaves the call and later ones on one thread,
 * with the reason, and the same values; a pass into a given array (shared or plain, stale
 * contents) writes all of it; the fused network step through TF.js equals the composition at a size
 * that runs threaded, and its packed output, recycled once every view of it is disposed, is fully
 * written when reused.
 * @module
 */
import { tf } from "../../_deps.ts";
import { assert } from "../../../tests/_util/deps.ts";
import { assertAllClose } from "../../../tests/_util/numeric.ts";
import { lstmNetStepComposed, type LstmNetWeights } from "../../optim/mlhf/lstm.ts";
import { lstmNetStepKernel } from "../../optim/mlhf/lstm_kernel.ts";
import { type LayerData, lstmRowsOneThread, packedLength, U } from "./lstm_rows.ts";
import { recycleStats } from "./kernels/_util.ts";
import {
  CHUNK_ROWS,
  rowThreadsStatus,
  runLstmRows,
  setRowWorkerUrl,
  stopRowWorkers,
  THREADED_MIN_ROWS,
  threadsWanted,
} from "./lstm_threads.ts";
import { nativeAvailable, randArray, runOn, testName } from "./_test_util.ts";

const ignore = !nativeAvailable;
const threaded = threadsWanted() > 1;

const onShared = (a: Float32Array): Float32Array => {
  const s = new Float32Array(new SharedArrayBuffer(a.byteLength));
  s.set(a);
  return s;
};

const inputs = (n: number, inW: number, seed: number, shared: boolean) => {
  const f = shared ? onShared : (a: Float32Array) => a;
  const layers: LayerData[] = [0, 1].map((l) => ({
    w: randArray(((l === 0 ? inW : U) + U) * 4 * U, seed + 10 * l).map((v) => 2 * v),
    b: randArray(4 * U, seed + 10 * l + 1),
    c: f(randArray(n * U, seed + 10 * l + 2).map((v) => 3 * v)),
    h: f(randArray(n * U, seed + 10 * l + 3)),
  }));
  return { x: f(randArray(n * inW, seed + 99).map((v) => 4 * v)), layers };
};

const firstDifference = (a: Float32Array, b: Float32Array): number => {
  if (a.length !== b.length) return -2;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return i;
  return -1;
};

Deno.test({
  name: testName("the threaded LSTM row pass equals the one-thread pass bit for bit"),
  ignore,
  // The workers are unref'd and outlive single tests by design; each test stops them at its end.
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () => {
    try {
      const cases = [
        { n: THREADED_MIN_ROWS + 777, inW: 3, shared: false, head: true },
        { n: CHUNK_ROWS + 3 * THREADED_MIN_ROWS, inW: 3, shared: true, head: true },
        { n: THREADED_MIN_ROWS + 1, inW: 4, shared: true, head: false },
      ];
      for (const [k, cs] of cases.entries()) {
        const { x, layers } = inputs(cs.n, cs.inW, 7 + k, cs.shared);
        const head = cs.head ? { w: randArray(U, 50 + k), b: 0.25 } : undefined;
        const want = lstmRowsOneThread(cs.n, x, cs.inW, layers, head);
        const got = runLstmRows(cs.n, x, cs.inW, layers, head);
        const at = firstDifference(got, want);
        assert.equal(at, -1, `case ${k}: first difference at ${at} (${rowThreadsStatus()})`);
        if (threaded) assert.equal(rowThreadsStatus(), `${threadsWanted()} threads`);
      }
    } finally {
      stopRowWorkers();
    }
  },
});

Deno.test({
  name: testName("a row worker that fails its shares: the call is redone here, later calls too"),
  ignore: ignore || !threaded,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () => {
    const prev = setRowWorkerUrl(new URL("./testdata/failing_row_worker.ts", import.meta.url));
    try {
      for (const n of [CHUNK_ROWS + THREADED_MIN_ROWS + 5, THREADED_MIN_ROWS]) {
        const { x, layers } = inputs(n, 3, 3, false);
        const head = { w: randArray(U, 4), b: -0.5 };
        const got = runLstmRows(n, x, 3, layers, head);
        assert.equal(
          rowThreadsStatus(),
          "one thread: a row worker failed (planted failure)",
          `status after n=${n}`,
        );
        const want = lstmRowsOneThread(n, x, 3, layers, head);
        assert.equal(firstDifference(got, want), -1, `n=${n}`);
      }
    } finally {
      setRowWorkerUrl(prev);
    }
  },
});

Deno.test({
  name: testName("the fused network step equals the composition at a threaded size"),
  ignore,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const n = THREADED_MIN_ROWS + 300, inW = 3;
    const run = (which: "fused" | "composed") =>
      runOn("native", () => {
        const w: LstmNetWeights = {
          layers: [0, 1].map((l) => ({
            kernel: tf.tensor2d(randArray(((l ? U : inW) + U) * 16, 3 + l), [
              (l ? U : inW) + U,
              16,
            ]),
            bias: tf.tensor1d(randArray(16, 5 + l)),
          })),
          head: { kernel: tf.tensor2d(randArray(U, 8), [U, 1]), bias: tf.tensor1d([0.1]) },
        };
        const state = {
          c: [0, 1].map((l) => tf.tensor2d(randArray(n * U, 20 + l), [n, U])),
          h: [0, 1].map((l) => tf.tensor2d(randArray(n * U, 30 + l), [n, U])),
        };
        const x = tf.tensor2d(randArray(n * inW, 40), [n, inW]);
        const s = which === "fused"
          ? lstmNetStepKernel(w, state, x)
          : lstmNetStepComposed(w, state, x);
        return [s.out, ...s.state.c, ...s.state.h];
      });
    try {
      const fused = await run("fused");
      if (threaded) assert.equal(rowThreadsStatus(), `${threadsWanted()} threads`);
      const composed = await run("composed");
      fused.forEach((v, i) =>
        assertAllClose(v, composed[i], { rtol: 1e-5, atol: 1e-5 }, `out ${i}`)
      );
      // A step whose outputs (views of one packed array) are all disposed unread: the packed array
      // goes back to the pool, and the next step of the same size reuses it, writing all of it.
      await runOn("native", () => {
        const s = lstmNetStepKernel(
          {
            layers: [0, 1].map((l) => ({
              kernel: tf.fill([(l ? U : inW) + U, 16], 0.5 - l) as tf.Tensor2D,
              bias: tf.fill([16], 2) as tf.Tensor1D,
            })),
            head: { kernel: tf.fill([U, 1], 3) as tf.Tensor2D, bias: tf.tensor1d([7]) },
          },
          {
            c: [0, 1].map(() => tf.fill([n, U], 9) as tf.Tensor2D),
            h: [0, 1].map(() => tf.fill([n, U], -9) as tf.Tensor2D),
          },
          tf.fill([n, inW], 5) as tf.Tensor2D,
        );
        tf.dispose([s.out, ...s.state.c, ...s.state.h]);
        return tf.scalar(0);
      });
      const before = recycleStats();
      const again = await run("fused");
      assert.ok(recycleStats().reused > before.reused, "the packed output was reused");
      again.forEach((v, i) => assert.equal(firstDifference(v, fused[i]), -1, `reused, out ${i}`));
    } finally {
      stopRowWorkers();
    }
  },
});

Deno.test({
  name: testName("a pass into a given array writes all of it, threaded or not"),
  ignore,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () => {
    try {
      const n = CHUNK_ROWS + THREADED_MIN_ROWS + 11, inW = 3;
      const { x, layers } = inputs(n, inW, 17, true);
      const head = { w: randArray(U, 5), b: 0.5 };
      const want = lstmRowsOneThread(n, x, inW, layers, head);
      const len = packedLength(n, 2, true);
      for (const shared of [true, false]) {
        const into = shared
          ? new Float32Array(new SharedArrayBuffer(4 * len))
          : new Float32Array(len);
        into.fill(NaN); // stale contents: every element must be overwritten
        const got = runLstmRows(n, x, inW, layers, head, into);
        assert.ok(got === into, `shared=${shared}: the pass returns the given array`);
        assert.equal(firstDifference(got, want), -1, `shared=${shared}`);
      }
      assert.throws(
        () => runLstmRows(n, x, inW, layers, head, new Float32Array(len - 1)),
        RangeError,
        "not",
      );
    } finally {
      stopRowWorkers();
    }
  },
});
