/**
 * Bench suite of issue 19 (rows `dist/`): data parallelism over MPI on the CUDA-convnet
 * (1 756 426 parameters, batch 128 = the global batch, 32×32×3). The suite launches
 * `mpirun -n 2` on this file (its worker) and reads the rows rank 0 prints; it returns no rows where
 * `mpirun` is absent. Rows: one all-reduce of the convnet's 1.76 M floats over 2 ranks, on the
 * host buffer (MPI_Allreduce alone) and from tensors (`allreduceMean`: device read, all-reduce,
 * upload); one MLHF K = 4 step and one HF(fixed) K = 4 step at N = 1 (one process, no MPI) and
 * N = 2 (each rank 64 examples, K + 2 reductions), each rank timing its own step after a barrier.
 * MLHF − HF(fixed) at N = 1 is the meta-networks' time, the part sharding the LSTMs by coordinates
 * would split (README "Several machines (MPI)"). And one MLHF K = 4 step of ResNet-18 v2 at batch 4 on
 * one process, the single-node number `tools/mpi_scaling.ts` projects from.
 * @module
 */
import { tf } from "../../lib/_deps.ts";
import type { BenchOptions, BenchRow, BenchSuite } from "../../lib/bench/harness.ts";
import { measure } from "../../lib/bench/harness.ts";
import { randomBatch } from "../../lib/bench/batch.ts";
import { keyFromSeed, split } from "../../lib/prng.ts";
import { disposeTree, leaves, type Params, size } from "../../lib/tree.ts";
import { softmaxCrossEntropy } from "../../ops/losses.ts";
import { cudaConvnet } from "../../models/cuda_convnet.ts";
import { resnet18V2ImageNet } from "../../models/resnet_v2.ts";
import { kindLeaves } from "../../models/types.ts";
import { disposeState, type GradientTransformation } from "../../lib/optim/base.ts";
import { hessianFree } from "../../lib/optim/hessian_free.ts";
import { mlhf } from "../../lib/optim/mlhf/optimizer.ts";
import { initMetaWeights } from "../../lib/optim/mlhf/meta_weights.ts";
import { trainStepDevice } from "../../lib/train/step.ts";
import { type Communicator, openCommunicator } from "../../lib/distributed/communicator.ts";
import { dataParallelStep } from "../../lib/distributed/data_parallel.ts";
import { allreduceMean } from "../../lib/distributed/reduce.ts";
import { selectBackend } from "../../lib/backend/select.ts";

const BATCH = 128;
/** The CUDA-convnet's parameters on 32×32×3 (checked against the model). */
const FLOATS = 1_756_426;
const OPTIMIZERS = ["mlhf K=4", "hf-fixed K=4"] as const;

/** The rows' names at `n` ranks. */
const names = (n: number) => ({
  host: `dist/allreduce cudaConvnet ${FLOATS} floats N=${n} host buffer`,
  tensors: `dist/allreduce cudaConvnet ${FLOATS} floats N=${n} from tensors`,
  step: (opt: string) => `dist/step cudaConvnet b${BATCH} ${opt} N=${n}`,
  resnet18: `dist/step resnet18 b${RESNET18_BATCH} mlhf K=4 N=${n}`,
});

/** ResNet-18's batch per rank (224×224×3, 1001 classes), as `optim/` times its SGD step. */
const RESNET18_BATCH = 4;

/**
 * One MLHF K = 4 step of ResNet-18 v2 on one process (`tools/mpi_scaling.ts` scales it: its
 * single-node T₁ at 4 examples per rank).
 */
const resnet18Row = async (row: string, opts: BenchOptions): Promise<BenchRow> => {
  const model = resnet18V2ImageNet() as unknown as AnyModel;
  const [kp, kx, km] = split(keyFromSeed(6), 3);
  const init = model.init(kp, [224, 224, 3]);
  const kinds = kindLeaves(init.kinds);
  const meta = initMetaWeights(
    km,
    { dampingMode: "rnn", preconditioner: "rnn", xInit: "previous" },
    [
      ...new Set(kinds),
    ],
  );
  const opt = mlhf({ metaWeights: meta, kinds, learningRate: 2, cgIterations: 4 });
  const state = opt.init(init.params);
  const batch = randomBatch(kx, RESNET18_BATCH, [224, 224, 3], 1001);
  try {
    return await measure(row, () => {
      const r = trainStepDevice({
        model: model.apply,
        lossFn: softmaxCrossEntropy,
        optimizer: opt,
        params: init.params,
        state,
        batch,
        key: keyFromSeed(9),
        keepPrevious: true,
      });
      return [r.params, r.aux, r.read] as unknown as tf.TensorContainer;
    }, opts);
  } finally {
    disposeState(state);
    tf.dispose([batch.x, batch.y, ...leaves(meta as unknown as Params)]);
    disposeTree(init.params);
    disposeTree(init.state);
  }
};
type AnyModel = import("../../models/types.ts").Model<Params, Params>;

/** The rows of one process (N = 1 when `comm` is null, else this rank's view). */
const rows = async (comm: Communicator | null, opts: BenchOptions): Promise<BenchRow[]> => {
  const n = comm?.size ?? 1;
  const out: BenchRow[] = [];
  const model = cudaConvnet() as unknown as AnyModel;
  const [kp, kx, km] = split(keyFromSeed(5), 3);
  const init = model.init(kp, [32, 32, 3]);
  const kinds = kindLeaves(init.kinds);
  const floats = size(init.params);
  if (floats !== FLOATS) {
    throw new Error(`dist/: the convnet has ${floats} parameters, not ${FLOATS}`);
  }
  const name = names(n);
  const global = randomBatch(kx, BATCH, [32, 32, 3], 10);
  const dp = comm ? dataParallelStep({ comm, checkEvery: 1 }) : null;
  const [x, y] = dp ? dp.shard([global.x, global.y]) : [global.x, global.y];
  const want = (row: string) => !opts.filter || row.includes(opts.filter);
  if (comm) {
    const host = new Float32Array(floats).fill(1);
    const row = name.host;
    if (want(row)) {
      out.push(await measure(row, () => (comm.barrier(), comm.allreduceSum(host), []), opts));
    }
    const tensors = name.tensors;
    if (want(tensors)) {
      out.push(
        await measure(
          tensors,
          () => (comm.barrier(), allreduceMean(leaves(init.params), comm)),
          opts,
        ),
      );
    }
  }
  const meta = initMetaWeights(
    km,
    { dampingMode: "rnn", preconditioner: "rnn", xInit: "previous" },
    [
      ...new Set(kinds),
    ],
  );
  // deno-lint-ignore no-explicit-any
  const optimizers: Array<[typeof OPTIMIZERS[number], GradientTransformation<any, Params>]> = [
    [OPTIMIZERS[0], mlhf({ metaWeights: meta, kinds, learningRate: 2, cgIterations: 4 })],
    [OPTIMIZERS[1], hessianFree({ learningRate: 1e-2, damping: 5e-3, cgIterations: 4 })],
  ];
  for (const [label, opt] of optimizers) {
    const row = name.step(label);
    if (!want(row)) continue;
    const state = opt.init(init.params);
    out.push(
      await measure(
        row,
        () => {
          comm?.barrier();
          const r = trainStepDevice({
            model: model.apply,
            lossFn: dp ? dp.loss(softmaxCrossEntropy) : softmaxCrossEntropy,
            optimizer: opt,
            params: init.params,
            state,
            batch: { x, y },
            key: keyFromSeed(9),
            keepPrevious: true,
            ...(dp ? { curvature: dp.curvature } : {}),
          });
          return [r.params, r.aux, r.read] as unknown as tf.TensorContainer;
        },
        opts,
        n > 1
          ? `per rank: batch ${BATCH / n}, ${4 + 2} all-reduces of ${floats} floats`
          : undefined,
      ),
    );
    disposeState(state);
  }
  tf.dispose(leaves(meta as unknown as Params));
  if (!comm && want(name.resnet18)) out.push(await resnet18Row(name.resnet18, opts));
  if (dp) tf.dispose([x, y]);
  tf.dispose([global.x, global.y]);
  disposeTree(init.params);
  disposeTree(init.state);
  return out;
};

const hasMpirun = (): boolean =>
  new Deno.Command("sh", { args: ["-c", "command -v mpirun"], stdout: "null", stderr: "null" })
    .outputSync().success;

export const distributedSuite: BenchSuite = {
  name: "distributed",
  run: async (opts) => {
    const matches = (n: number) => {
      const m = names(n);
      return [m.host, m.tensors, ...OPTIMIZERS.map(m.step), ...(n === 1 ? [m.resnet18] : [])]
        .some((r) => r.includes(opts.filter));
    };
    const local = matches(1) ? await rows(null, opts) : [];
    if (!matches(2)) return local;
    if (!hasMpirun()) {
      console.error("  dist/: mpirun not found: the N=2 rows are skipped (install openmpi-bin)");
      return local;
    }
    const p = await new Deno.Command("mpirun", {
      args: [
        ...["-n", "2", "--allow-run-as-root", "--oversubscribe"],
        ...[Deno.execPath(), "run", "-A", "--frozen", new URL(import.meta.url).pathname],
        JSON.stringify({ ...opts, backend: tf.getBackend() }),
      ],
      stdout: "piped",
      stderr: "inherit",
    }).output();
    const text = new TextDecoder().decode(p.stdout);
    if (!p.success) throw new Error(`dist/: mpirun -n 2 failed (code ${p.code}): ${text}`);
    const line = text.split("\n").find((l) => l.startsWith("ROWS "));
    if (!line) throw new Error(`dist/: the 2-rank worker printed no rows: ${text}`);
    return [...local, ...JSON.parse(line.slice(5)) as BenchRow[]];
  },
};

if (import.meta.main) {
  const opts = JSON.parse(Deno.args[0]) as BenchOptions & { backend: string };
  await selectBackend(opts.backend as never);
  const comm = openCommunicator();
  const got = await rows(comm, opts);
  if (comm.rank === 0) console.log(`ROWS ${JSON.stringify(got)}`);
  comm.finalize();
}
