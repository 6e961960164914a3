import { tf } from "../../_deps.ts";
import { assert } from "../../../tests/_util/deps.ts";
import { useTestBackend } from "../../../tests/_util/backend.ts";
import { assertAllClose, withNoLeaks } from "../../../tests/_util/numeric.ts";
import { keyFromSeed, normal } from "../../prng.ts";
import { backendHasKernel, LSTM_CELL_KERNEL, LSTM_NET_KERNEL } from "../../kernels.ts";
import {
  initLstmNet,
  lstmCell,
  lstmCellComposed,
  lstmNetStep,
  lstmNetStepComposed,
  lstmNetTensors,
  zeroLstmState,
} from "./lstm.ts";

await useTestBackend();

Deno.test("lstm: the cell equals tf.basicLSTMCell with forget bias 1 and a hand computation", async () => {
  await withNoLeaks(() =>
    tf.tidy(() => {
      const w = initLstmNet(keyFromSeed(3));
      const x = tf.tensor(normal(keyFromSeed(4), 5 * 3), [5, 3]) as tf.Tensor2D;
      const c = tf.tensor(normal(keyFromSeed(5), 5 * 4), [5, 4]) as tf.Tensor2D;
      const h = tf.tensor(normal(keyFromSeed(6), 5 * 4), [5, 4]) as tf.Tensor2D;
      const b = tf.tensor(normal(keyFromSeed(7), 16), [16]) as tf.Tensor1D;
      const [c1, h1] = lstmCell(w.layers[0].kernel, b, x, c, h);
      const [c2, h2] = tf.basicLSTMCell(1, w.layers[0].kernel, b, x, c, h);
      assertAllClose([c1, h1], [c2, h2], { rtol: 1e-5, atol: 1e-6 });
      // Hand computation for row 0, unit 0.
      const xs = [...x.dataSync().slice(0, 3), ...h.dataSync().slice(0, 4)];
      const W = w.layers[0].kernel.arraySync() as number[][], bb = b.dataSync();
      const g = (col: number) => xs.reduce((s, v, r) => s + v * W[r][col], 0) + bb[col];
      const sig = (v: number) => 1 / (1 + Math.exp(-v));
      const cHand = sig(g(0)) * Math.tanh(g(4)) + c.dataSync()[0] * sig(g(8) + 1);
      const hHand = Math.tanh(cHand) * sig(g(12));
      assertAllClose([c1.dataSync()[0], h1.dataSync()[0]], [cHand, hHand], {
        rtol: 1e-5,
        atol: 1e-6,
      });
    })
  );
});

Deno.test("lstm: 277 weights per network; zero state and step shapes", () => {
  tf.tidy(() => {
    const w = initLstmNet(keyFromSeed(1));
    const n = lstmNetTensors(w).reduce((s, t) => s + t.size, 0);
    if (n !== 277) throw new Error(`${n} weights`);
    const st = zeroLstmState(9);
    const r = lstmNetStep(w, st, tf.zeros([9, 3]) as tf.Tensor2D);
    if (r.out.shape.join() !== "9" || r.state.c[1].shape.join() !== "9,4") {
      throw new Error("shapes");
    }
  });
});

Deno.test("lstm: lstmCell and lstmNetStep run the LSTM kernels exactly where the backend has them", async () => {
  const w = initLstmNet(keyFromSeed(2));
  const st = zeroLstmState(3);
  const input = tf.ones([3, 3]) as tf.Tensor2D;
  const l0 = w.layers[0];
  try {
    const kernelsOf = async (f: () => tf.Tensor | tf.Tensor[]) => {
      const info = await tf.profile(() => tf.tidy(f));
      tf.dispose(info.result as tf.TensorContainer);
      return info.kernelNames;
    };
    const cellRan = await kernelsOf(() => lstmCell(l0.kernel, l0.bias, input, st.c[0], st.h[0]));
    const netRan = await kernelsOf(() => lstmNetStep(w, st, input).out);
    // On the native backend (MLHF_TEST_BACKEND=native) the kernels run; elsewhere they do not exist.
    assert.equal(cellRan.includes(LSTM_CELL_KERNEL), backendHasKernel(LSTM_CELL_KERNEL));
    assert.equal(netRan.includes(LSTM_NET_KERNEL), backendHasKernel(LSTM_NET_KERNEL));
    if (backendHasKernel(LSTM_NET_KERNEL)) return; // native: lib/backend/native/lstm_test.ts
    assert.ok(!cellRan.includes(LSTM_NET_KERNEL) && !netRan.includes(LSTM_CELL_KERNEL));
    await withNoLeaks(() =>
      tf.tidy(() => {
        // Without the kernels the routed functions are the compositions, bit for bit.
        const [c1, h1] = lstmCell(l0.kernel, l0.bias, input, st.c[0], st.h[0]);
        const [cWant, hWant] = lstmCellComposed(l0.kernel, l0.bias, input, st.c[0], st.h[0]);
        assert.deepEqual([c1.dataSync(), h1.dataSync()], [cWant.dataSync(), hWant.dataSync()]);
        const r = lstmNetStep(w, st, input), want = lstmNetStepComposed(w, st, input);
        assert.deepEqual(
          [r.out, ...r.state.c, ...r.state.h].map((t) => t.dataSync()),
          [want.out, ...want.state.c, ...want.state.h].map((t) => t.dataSync()),
        );
      })
    );
  } finally {
    tf.dispose([...lstmNetTensors(w), ...st.c, ...st.h, input]);
  }
});
