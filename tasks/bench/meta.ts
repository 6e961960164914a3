/**
 * Bench suite of issue 7: one meta-training iteration (T = 2 and T = 10 windows, K = 2) on the
 * original's MNIST MLP (784→20 sigmoid→10, batch 128), and one MLHF evaluation step there. Rows
 * are prefixed `meta/`.
 * @module
 */
import { tf } from "../../lib/_deps.ts";
import { type BenchRow, type BenchSuite, measure, untidied } from "../../lib/bench/harness.ts";
import { foldIn, keyFromSeed, split } from "../../lib/prng.ts";
import { randomBatch } from "../../lib/bench/batch.ts";
import { disposeTree, type Params } from "../../lib/tree.ts";
import { softmaxCrossEntropy } from "../../ops/losses.ts";
import { mlp } from "../../models/mlp.ts";
import { kindLeaves } from "../../models/types.ts";
import { initMetaWeights } from "../../lib/optim/mlhf/meta_weights.ts";
import {
  initMetaTrainState,
  META_TRAIN_DEFAULTS,
  metaIteration,
  type MetaProblem,
  metaTrainStateTensors,
} from "../../lib/meta/meta_train.ts";
import type { Batch } from "../../lib/curvature/gauss_newton.ts";

const BATCH = 128;

export const metaSuite: BenchSuite = {
  name: "meta",
  run: async (opts) => {
    const rows: BenchRow[] = [];
    const model = mlp();
    for (const T of [2, 10]) {
      const name = `meta/mnist mlp b${BATCH}: meta-iteration T=${T}`;
      if (!name.includes(opts.filter)) continue;
      const [kp, km, kd] = split(keyFromSeed(11), 3);
      const init = model.init(kp, [28, 28, 1]);
      const kinds = kindLeaves(init.kinds);
      const o = { ...META_TRAIN_DEFAULTS, metaRollBack: T };
      const pr: MetaProblem<Params> = {
        model: model.apply as MetaProblem<Params>["model"],
        lossFn: softmaxCrossEntropy,
        kinds,
      };
      const meta = initMetaWeights(km, o, [...new Set(kinds)]);
      const batches: Batch[] = Array.from(
        { length: T },
        (_, i) => randomBatch(foldIn(kd, i), BATCH, [28, 28, 1], 10),
      );
      let state = initMetaTrainState(pr, o, init.params as Params, meta);
      let i = 0;
      // Each run continues the trajectory (the state is threaded, as in a real run).
      rows.push(
        await measure(
          name,
          // As the meta-training loop runs it: the device part and its one `await`ed read
          // (untidied: the iteration frees what it does not carry on).
          untidied(async () => {
            const r = await metaIteration(pr, o, state, batches, foldIn(keyFromSeed(12), i++));
            state = r.state;
            return [];
          }),
          opts,
          "2 differentiated passes over the window",
        ),
      );
      tf.dispose([
        ...metaTrainStateTensors(state),
        ...batches.flatMap((b) => [b.x, b.y]),
      ]);
      disposeTree(init.state);
    }
    return rows;
  },
};
