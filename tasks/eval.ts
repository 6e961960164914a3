/**
 * `deno task eval`: trains a model with one optimizer or compares several (same seed, same
 * initialization, same data order), logging every step and evaluation, checkpointing, and writing
 * `report.md` and `report.svg`. With no flags: MLHF (or HF(fixed) until `weights/mlhf-mnist.mlhf`
 * exists) against Adam on the embedded MNIST with the original's quick MLP.
 * @module
 */
import { join } from "node:path";
import {
  backendFlag,
  DISTRIBUTED_FLAGS,
  ensureWritableDir,
  runCli,
  withDataParallel,
} from "./_cli.ts";
import { type BackendChoice, describeChoice } from "../lib/backend/select.ts";
import { tf } from "../lib/_deps.ts";
import { metaWeightTensors } from "../lib/optim/mlhf/meta_weights.ts";
import { compareOptimizers } from "../lib/train/compare.ts";
import { describeSettings, labelSpecs } from "../lib/train/optimizers.ts";
import { applicable, EVAL_FLAGS, type EvalFlags, planEval } from "../lib/train/plan.ts";
import { openProblem, resolveMetaWeights } from "../lib/train/problem.ts";
import { DATASET_INPUT_SHAPE, makeModel, modelKinds } from "../lib/train/models.ts";
import { describeDefaultTransfer } from "../lib/optim/mlhf/kind_map.ts";
import { missingMetaWeightsMessage } from "../lib/train/presets.ts";
import { FlagError } from "../lib/cli/flags.ts";
import { bcastString } from "../lib/distributed/communicator.ts";
import type { DataParallel } from "../lib/distributed/data_parallel.ts";
import { checkShardable } from "../lib/distributed/shard.ts";

export const SPECS = { backend: backendFlag, ...EVAL_FLAGS, ...DISTRIBUTED_FLAGS };

const SUMMARY =
  "Trains a model with one optimizer, or compares several from the same initialization and data " +
  "order, and writes JSONL/CSV logs, checkpoints, report.md and report.svg.";

/** `runs/eval-YYYYMMDD-HHMMSS` (UTC). */
const defaultOut = (): string =>
  join(
    "runs",
    `eval-${new Date().toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15)}`,
  );

/** The command line as typed (arguments with spaces or quotes quoted). */
const commandLine = (argv: readonly string[]): string =>
  [
    "deno task eval",
    ...argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`)),
  ]
    .join(" ");

/**
 * Runs the planned comparison; see the module doc. Every run is finished (or reused) and the
 * report written before a diverged run makes it throw (exit code 1).
 */
export const runEval = async (
  config: EvalFlags,
  backend: BackendChoice,
  argv: readonly string[],
  distributed?: DataParallel,
): Promise<void> => {
  const p = planEval(config);
  const comm = distributed?.comm;
  const rank0 = !comm || comm.rank === 0;
  if (comm) {
    try {
      checkShardable(p.batchSize, comm.size);
    } catch (e) {
      throw new FlagError((e as Error).message);
    }
    if (p.optimizers.some((o) => o.name === "kfac")) {
      throw new FlagError(
        "--distributed: kfac is not data-parallel (its Kronecker factors would be per shard); " +
          "leave it out of --optimizer/--compare",
      );
    }
  }
  // Every rank trains in rank 0's folder (only rank 0 writes there).
  const out = comm ? bcastString(config.out || defaultOut(), comm) : config.out || defaultOut();
  if (rank0) await ensureWritableDir("out", out);
  const notes: string[] = [];
  let items = p.optimizers;
  const meta = items.some((o) => o.name === "mlhf")
    ? await resolveMetaWeights(p.metaWeights.spec, {
      seed: config.seed,
      required: p.metaWeights.required || !p.preset.mlhfFallback,
      kindMap: p.metaKindMap,
      // The kinds do not depend on the number of classes: known before the data is opened.
      kinds: modelKinds(makeModel(p.model, 10), DATASET_INPUT_SHAPE[p.dataset]),
      missing: p.metaWeights.required
        ? `--meta-weights ${p.metaWeights.spec}: no such file`
        : missingMetaWeightsMessage(p.presetName, config["data-dir"]),
    })
    : undefined;
  if (meta?.defaultTransfer?.length) {
    notes.push(describeDefaultTransfer(meta.defaultTransfer));
    console.error(notes.at(-1));
  }
  if (meta === null) {
    const settings = { ...p.preset.mlhfFallback, ...applicable("hf-fixed", p.overrides) };
    items = items.map((o) => (o.name === "mlhf" ? { name: "hf-fixed", settings } : o));
    notes.push(
      `MLHF's meta-weights ${p.metaWeights.spec} do not exist yet, so HF with fixed damping ` +
        `(${describeSettings(settings)}, P ≡ 1, x₀ = previous solution) runs in MLHF's place.`,
    );
    console.error(`note: ${notes.at(-1)}`);
  }
  if (p.model === "mlp") {
    notes.push(
      "The model is the original's quick MLP (problems.py: mlp): 784→20 sigmoid→10, " +
        "every weight and bias N(0, 0.01²).",
    );
  }
  const problem = await openProblem(p.model, p.dataset, {
    dataDir: config["data-dir"] || undefined,
    skipCorrupt: config["skip-corrupt"],
  });
  try {
    const result = await compareOptimizers({
      out,
      problem,
      optimizers: labelSpecs(items),
      meta: meta ?? undefined,
      seed: config.seed,
      batchSize: p.batchSize,
      epochs: p.epochs,
      steps: p.steps,
      shuffleBuffer: config["shuffle-buffer"],
      checkpointEvery: config["checkpoint-every"],
      evalEvery: p.evalEvery,
      evalExamples: config["eval-examples"],
      evalBatchSize: config["eval-batch-size"],
      resume: config.resume,
      command: commandLine(argv),
      backend: describeChoice(backend).replace(/^backend: /, ""),
      notes: [
        `Preset ${p.presetName}: ${p.preset.description}.`,
        ...(comm ? [`Data-parallel over ${comm.size} MPI ranks (--distributed).`] : []),
        ...notes,
      ],
      distributed,
    });
    if (rank0) console.log(`\n${result.table}`);
    if (rank0) console.log(`report: ${result.reportPath}\nplot:   ${result.plotPath}`);
    if (result.diverged.length) {
      throw new Error(
        `${result.diverged.length} of ${result.runs.length} runs diverged (the report covers ` +
          `all of them): ${result.diverged.map((d) => d.message).join(" ")}`,
      );
    }
  } finally {
    await problem.close();
    if (meta) tf.dispose(metaWeightTensors(meta.weights));
  }
};

if (import.meta.main) {
  await runCli(
    "eval",
    SUMMARY,
    SPECS,
    (config, backend) => withDataParallel(config, (dp) => runEval(config, backend, Deno.args, dp)),
  );
}
