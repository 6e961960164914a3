import { tf } from "../../_deps.ts";
import { useTestBackend } from "../../../tests/_util/backend.ts";
import { assertAllClose, withNoLeaks } from "../../../tests/_util/numeric.ts";
import { keyFromSeed, normal } from "../../prng.ts";
import {
  initLstmNet,
  installLstmFastPaths,
  lstmCell,
  lstmCellComposed,
  lstmFastPaths,
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

Deno.test("lstm: lstmCell and lstmNetStep use an installed fast path, and the composition on null", () => {
  const saved = { ...lstmFastPaths() };
  try {
    tf.tidy(() => {
      const w = initLstmNet(keyFromSeed(2));
      const st = zeroLstmState(3);
      const input = tf.ones([3, 3]) as tf.Tensor2D;
      const l0 = w.layers[0];
      const [cWant, hWant] = lstmCellComposed(l0.kernel, l0.bias, input, st.c[0], st.h[0]);
      const want = lstmNetStepComposed(w, st, input);
      const calls = { cell: 0, net: 0 };
      installLstmFastPaths({
        cell: () => (calls.cell++, null),
        netStep: () => (calls.net++, null),
      });
      const [c1, h1] = lstmCell(l0.kernel, l0.bias, input, st.c[0], st.h[0]);
      assertAllClose([c1, h1], [cWant, hWant], { rtol: 1e-6, atol: 1e-7 });
      assertAllClose(lstmNetStep(w, st, input).out, want.out, { rtol: 1e-6, atol: 1e-7 });
      if (calls.cell !== 1 || calls.net !== 1) throw new Error(`calls ${JSON.stringify(calls)}`);
      const marker = tf.fill([3], 7) as tf.Tensor1D;
      installLstmFastPaths({ netStep: () => ({ out: marker, state: st }) });
      if (lstmNetStep(w, st, input).out !== marker) throw new Error("fast path not used");
    });
  } finally {
    installLstmFastPaths({ cell: saved.cell, netStep: saved.netStep });
  }
});
