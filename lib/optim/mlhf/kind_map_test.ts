import { tf } from "../../_deps.ts";
import { useTestBackend } from "../../../tests/_util/backend.ts";
import { assertAllClose, withNoLeaks } from "../../../tests/_util/numeric.ts";
import { keyFromSeed, normal } from "../../prng.ts";
import { leaves } from "../../tree.ts";
import { initMetaWeights, metaWeightTensors } from "./meta_weights.ts";
import {
  defaultKindMap,
  describeDefaultTransfer,
  describeKindMap,
  mapMetaWeightKinds,
  parseKindMap,
} from "./kind_map.ts";
import { mlhf } from "./optimizer.ts";
import { disposeState } from "../base.ts";
import { trainStepSync } from "../../../tests/_util/step.ts";
import { softmaxCrossEntropy } from "../../../ops/losses.ts";
import type { ParamKind } from "../../param_kinds.ts";

await useTestBackend();

const expectError = (f: () => unknown, re: RegExp) => {
  try {
    f();
  } catch (e) {
    if (!re.test((e as Error).message)) throw new Error(`message ${(e as Error).message} !~ ${re}`);
    return;
  }
  throw new Error(`no error (wanted ${re})`);
};

type P = { w: tf.Tensor; b: tf.Tensor };
const opts = { dampingMode: "rnn", preconditioner: "rnn", xInit: "previous" } as const;

Deno.test("kind map: parses target=source pairs; bad pairs, unknown and repeated kinds are clear errors", () => {
  const m = parseKindMap("conv2d/kernel=dense/kernel, conv2d/bias = dense/bias");
  if (describeKindMap(m) !== "conv2d/kernel←dense/kernel, conv2d/bias←dense/bias") {
    throw new Error(`parsed ${describeKindMap(m)}`);
  }
  if (parseKindMap("").length !== 0) throw new Error("empty text is no mapping");
  expectError(() => parseKindMap("conv2d/kernel"), /'conv2d\/kernel' is not target=source/);
  expectError(() => parseKindMap("conv/kernel=dense/kernel"), /unknown kind 'conv\/kernel'/);
  expectError(
    () => parseKindMap("conv2d/bias=dense/bias,conv2d/bias=dense/kernel"),
    /'conv2d\/bias' is mapped twice/,
  );
});

Deno.test("kind map: a missing source or an already trained target is an error", () => {
  const w = initMetaWeights(keyFromSeed(1), opts, ["dense/kernel"]);
  try {
    expectError(
      () => mapMetaWeightKinds(w, parseKindMap("conv2d/bias=dense/bias")),
      /no networks for 'dense\/bias' \(they have: dense\/kernel\)/,
    );
    const w2 = initMetaWeights(keyFromSeed(1), opts, ["dense/kernel", "conv2d/kernel"]);
    try {
      expectError(
        () => mapMetaWeightKinds(w2, parseKindMap("conv2d/kernel=dense/kernel")),
        /already have networks for 'conv2d\/kernel'/,
      );
    } finally {
      tf.dispose(metaWeightTensors(w2));
    }
  } finally {
    tf.dispose(metaWeightTensors(w));
  }
});

Deno.test("kind map: a conv2d/kernel leaf driven by mapped dense/kernel networks steps exactly as a dense/kernel leaf", async () => {
  const w = initMetaWeights(keyFromSeed(3), opts, ["dense/kernel", "dense/bias"]);
  const x = tf.tensor(normal(keyFromSeed(4), 8 * 5), [8, 5]);
  const labels = tf.tensor1d([0, 1, 2, 0, 1, 2, 0, 1], "int32");
  const y = tf.tidy(() => tf.oneHot(labels, 3).toFloat());
  try {
    await withNoLeaks(() => {
      const run = (kinds: ParamKind[], meta: typeof w) => {
        const opt = mlhf<P>({ metaWeights: meta, kinds, learningRate: 1, cgIterations: 2 });
        let params: P = {
          w: tf.tensor(normal(keyFromSeed(5), 15, 0, 0.3), [5, 3]),
          b: tf.zeros([3]),
        };
        let state = opt.init(params);
        for (let i = 0; i < 3; i++) {
          const r = trainStepSync({
            model: (nn, p: P, xx) => nn.dense(xx, p.w, p.b),
            lossFn: softmaxCrossEntropy,
            optimizer: opt,
            params,
            state,
            batch: { x, y },
          });
          tf.dispose(r.aux);
          params = r.params;
          state = r.state;
        }
        disposeState(state);
        return params;
      };
      const plainRun = run(["dense/kernel", "dense/bias"], w);
      const mapped = mapMetaWeightKinds(w, parseKindMap("conv2d/kernel=dense/kernel"));
      const mappedRun = run(["conv2d/kernel", "dense/bias"], mapped);
      try {
        assertAllClose(mappedRun, plainRun, { rtol: 1e-6, atol: 1e-7 }, "parameters after 3 steps");
        // And the step does move them: the comparison is not between two untouched copies.
        const moved = tf.tidy(() =>
          tf.max(tf.abs(tf.sub(plainRun.w, tf.tensor(normal(keyFromSeed(5), 15, 0, 0.3), [5, 3]))))
            .dataSync()[0]
        );
        if (!(moved > 1e-3)) throw new Error(`MLHF did not move the weights (max change ${moved})`);
      } finally {
        tf.dispose([...leaves(plainRun), ...leaves(mappedRun)]);
      }
    });
  } finally {
    tf.dispose([x, labels, y, ...metaWeightTensors(w)]);
  }
});

Deno.test("default transfer: kinds the weights lack take the preferred trained kind's networks; explicit pairs and trained kinds are kept", () => {
  const dense: ParamKind[] = ["dense/kernel", "dense/bias"];
  const resnet: ParamKind[] = [
    "conv2d/kernel",
    "batch/gamma",
    "batch/beta",
    "conv2d/kernel",
    "dense/kernel",
    "dense/bias",
  ];
  if (
    describeKindMap(defaultKindMap(dense, resnet)) !==
      "conv2d/kernel←dense/kernel, batch/gamma←dense/bias, batch/beta←dense/bias"
  ) throw new Error(`resnet: ${describeKindMap(defaultKindMap(dense, resnet))}`);
  if (defaultKindMap(dense, dense).length !== 0) throw new Error("the MLP needs no transfer");
  // An explicit pair wins over the default one for its target.
  const explicit = parseKindMap("conv2d/kernel=dense/bias");
  const d = describeKindMap(defaultKindMap(dense, ["conv2d/kernel", "conv2d/bias"], explicit));
  if (d !== "conv2d/bias←dense/bias") throw new Error(`with an explicit map: ${d}`);
  // Conv-only weights drive an MLP; a kind with no trained source is left for MLHF to name.
  const conv = describeKindMap(defaultKindMap(["conv2d/kernel", "conv2d/bias"], dense));
  if (conv !== "dense/kernel←conv2d/kernel, dense/bias←conv2d/bias") throw new Error(conv);
  if (defaultKindMap(["dense/kernel"], ["dense/bias"]).length !== 0) {
    throw new Error("dense/bias has no trained source among dense/kernel");
  }
  const line = describeDefaultTransfer(defaultKindMap(dense, ["conv2d/kernel", "conv2d/bias"]));
  if (
    line !== "MLHF: the meta-weights have no networks for conv2d/kernel, conv2d/bias; default " +
        "transfer: conv2d/kernel←dense/kernel, conv2d/bias←dense/bias (--meta-kind-map overrides)"
  ) throw new Error(line);
});
