/**
 * Runs a suite: for every task, seed, family and grid value, one training run through
 * `compareOptimizers` in `<out>/<task>/seed-<seed>/<label>/` (one run per call, so each finished
 * run is final: a killed suite resumed with `resume` reuses every finished run and continues the
 * unfinished one from its checkpoint), then writes `report.md`, `runs.csv`, `summary.csv` and
 * `profile.svg` in `<out>`. Tasks train on MNIST's `eval-train` split and test on `test`.
 * @module
 */
import { join } from "node:path";
import { tf } from "../../_deps.ts";
import { FlagError } from "../../cli/flags.ts";
import { openSource } from "../../data/dataset.ts";
import { describeDefaultTransfer } from "../../optim/mlhf/kind_map.ts";
import { metaWeightTensors } from "../../optim/mlhf/meta_weights.ts";
import { writeFileAtomic } from "../../run/atomic.ts";
import { exists } from "../../run/files.ts";
import { compareOptimizers } from "../compare.ts";
import { readRunLogs } from "../logs.ts";
import { modelKinds } from "../models.ts";
import type { MetaWeightsSource, OptimizerSpec } from "../optimizers.ts";
import { countExamples, type Problem, resolveMetaWeights } from "../problem.ts";
import { weightDecayFor } from "../weight_decay.ts";
import {
  type MlhfVariant,
  type SuiteFamily,
  type SuiteName,
  SUITES,
  type SuiteTask,
} from "./heldout.ts";
import { TARGET_FAMILY } from "./heldout.ts";
import { profileSvg, runsCsv, suiteMarkdown, summaryCsv } from "./report.ts";
import { type SuiteRun, summarizeTask, type TaskSummary } from "./summary.ts";
import { transformedSource } from "./transformed_source.ts";

/** What a suite run needs. */
export interface SuiteOptions {
  /** Output directory. */
  readonly out: string;
  /** The suite. */
  readonly suite: SuiteName;
  /** Task names to run (empty: all, in the suite's order). */
  readonly tasks?: readonly string[];
  /** Family names to run (empty: all); must include the target family. */
  readonly families?: readonly string[];
  /** The seeds. */
  readonly seeds: readonly number[];
  /** Steps per task instead of each task's own (0 or absent: the task's). */
  readonly steps?: number;
  /** Evaluate every this many steps instead of each task's own (0 or absent: the task's). */
  readonly evalEvery?: number;
  /** Test examples per evaluation (0: all). */
  readonly evalExamples: number;
  /** MLHF's meta-weights file, or `untrained`. */
  readonly metaWeights: string;
  /** Continue the suite in `out`. */
  readonly resume: boolean;
  /** For the report. */
  readonly command: string;
  readonly backend: string;
  /** Progress lines (default console.error). */
  readonly log?: (line: string) => void;
}

/** What the suite wrote. */
export interface SuiteResult {
  readonly reportPath: string;
  readonly profilePath: string;
  readonly summaries: readonly TaskSummary[];
  readonly runs: readonly SuiteRun[];
}

/** The value's label text: `lr0.003`, `damping10`. */
const valueLabel = (key: string, v: number): string => `${key}${v}`;

/** One planned run: its family, grid value and optimizer spec. */
interface Planned {
  readonly family: SuiteFamily;
  readonly value: number | null;
  readonly spec: OptimizerSpec;
}

/** The runs of a family: one per grid value (or one). */
export const familyRuns = (f: SuiteFamily): Planned[] =>
  f.grid
    ? f.grid.values.map((v) => ({
      family: f,
      value: v,
      spec: {
        name: f.optimizer,
        label: `${f.name}-${valueLabel(f.grid!.key, v)}`,
        settings: { ...f.settings, [f.grid!.key]: v },
      },
    }))
    : [{
      family: f,
      value: null,
      spec: { name: f.optimizer, label: f.name, settings: f.settings },
    }];

/** Picks the named items of a list, in the list's order; throws a FlagError naming an unknown one. */
const pick = <T extends { name: string }>(
  all: readonly T[],
  names: readonly string[] | undefined,
  flag: string,
): T[] => {
  if (!names?.length) return [...all];
  for (const n of names) {
    if (!all.some((x) => x.name === n)) {
      throw new FlagError(
        `--${flag}: unknown name '${n}' (one of ${all.map((x) => x.name).join(", ")})`,
      );
    }
  }
  return all.filter((x) => names.includes(x.name));
};

/** The meta-weights a variant runs: the shipped ones with options overridden. */
const variantMeta = (m: MetaWeightsSource, v: MlhfVariant): MetaWeightsSource =>
  v === "shipped" ? m : v === "fixed-damping"
    ? {
      ...m,
      options: { ...m.options, dampingMode: "fixed" },
      description: `${m.description}; ablation: fixed λ instead of the λ network`,
    }
    : {
      ...m,
      options: { ...m.options, preconditioner: "none" },
      description: `${m.description}; ablation: no preconditioner (P ≡ 1)`,
    };

/** Opens a task's problem: its model and MNIST's evaluation splits, transformed. */
const openTask = async (task: SuiteTask): Promise<Problem> => {
  const train = transformedSource(
    await openSource({ dataset: "mnist", split: "eval-train" }),
    task.transform,
  );
  const test = transformedSource(
    await openSource({ dataset: "mnist", split: "test" }),
    task.transform,
  );
  return {
    modelName: task.name,
    model: task.model(train.numClasses),
    dataset: `mnist (train: ${train.name}, test: ${test.name})`,
    train,
    test,
    examplesPerEpoch: await countExamples(train),
    trainSplit: { dataset: "mnist", split: "eval-train" },
    weightDecay: weightDecayFor("mnist"),
    close: async () => {
      await train.close?.();
      await test.close?.();
    },
  };
};

/** Runs the suite and writes its report; see the module doc. */
export const runSuite = async (o: SuiteOptions): Promise<SuiteResult> => {
  const log = o.log ?? ((l: string) => console.error(l));
  const suite = SUITES[o.suite];
  const tasks = pick(suite.tasks, o.tasks, "tasks");
  const families = pick(suite.families, o.families, "optimizers");
  if (!families.some((f) => f.name === TARGET_FAMILY)) {
    throw new FlagError(
      `--optimizers: must include ${TARGET_FAMILY} (its tuned median final training loss is ` +
        "every task's target)",
    );
  }
  if (!o.seeds.length) throw new FlagError("--seeds: expected at least one seed");
  const marker = join(o.out, "suite.json");
  if (!o.resume && (await exists(marker))) {
    throw new FlagError(
      `--out: ${o.out} already holds a suite: pass --resume to continue it, or choose another --out`,
    );
  }
  if (o.resume && !(await exists(marker))) {
    throw new FlagError(`--resume: ${marker} does not exist (no suite to resume there)`);
  }
  await Deno.mkdir(o.out, { recursive: true });
  await writeFileAtomic(
    marker,
    JSON.stringify(
      {
        suite: o.suite,
        tasks: tasks.map((t) => t.name),
        families: families.map((f) => f.name),
        seeds: o.seeds,
        steps: o.steps || null,
        evalEvery: o.evalEvery || null,
        evalExamples: o.evalExamples,
        metaWeights: o.metaWeights,
        command: o.command,
      },
      null,
      2,
    ) + "\n",
  );
  const planned = families.flatMap(familyRuns);
  const total = tasks.length * o.seeds.length * planned.length;
  let done = 0;
  const runs: SuiteRun[] = [];
  const metaLines: string[] = [];
  for (const task of tasks) {
    const problem = await openTask(task);
    let meta: MetaWeightsSource | undefined;
    try {
      if (planned.some((p) => p.spec.name === "mlhf")) {
        meta = (await resolveMetaWeights(o.metaWeights, {
          seed: o.seeds[0],
          required: true,
          kinds: modelKinds(problem.model, problem.train.shape),
          missing: `--meta-weights ${o.metaWeights}: no such file`,
        }))!;
        if (meta.defaultTransfer?.length) {
          const line = `${task.name}: ${describeDefaultTransfer(meta.defaultTransfer)}`;
          log(line);
          metaLines.push(line);
        }
      }
      const steps = o.steps || task.steps;
      const evalEvery = Math.min(o.evalEvery || task.evalEvery, steps);
      const epochs = Math.ceil((steps * task.batchSize) / problem.examplesPerEpoch!) + 1;
      for (const seed of o.seeds) {
        const dir = join(o.out, task.name, `seed-${seed}`);
        for (const p of planned) {
          const t0 = performance.now();
          const m = meta && p.family.variant ? variantMeta(meta, p.family.variant) : undefined;
          let reused = false;
          const result = await compareOptimizers({
            out: dir,
            problem,
            optimizers: [p.spec],
            meta: m,
            seed,
            batchSize: task.batchSize,
            epochs,
            steps,
            shuffleBuffer: 50_000,
            checkpointEvery: 100,
            evalEvery,
            evalExamples: o.evalExamples,
            evalBatchSize: 500,
            resume: o.resume && (await exists(join(dir, p.spec.label))),
            command: o.command,
            backend: o.backend,
            notes: [`Held-out suite ${o.suite}, task ${task.name}: ${task.description}.`],
            progressSink: null,
            log: (line) => {
              if (line.includes("reusing its logs")) reused = true;
              else log(`${task.name} seed ${seed}: ${line}`);
            },
          });
          const summary = result.runs[0];
          const logs = await readRunLogs(join(dir, p.spec.label));
          const last = logs.evals.at(-1);
          runs.push({
            task: task.name,
            family: p.family.name,
            value: p.value,
            seed,
            label: p.spec.label,
            status: summary.status,
            curve: logs.evals
              .filter((e) => e.step > 0 && e.train_loss !== null)
              .map((e) => ({
                step: e.step,
                trainLoss: e.train_loss!,
                timeS: e.time_s,
                testAccuracy: e.test_accuracy,
              })),
            losses: logs.steps.map((s) => s.loss),
            steps: logs.steps.at(-1)?.step ?? 0,
            timeS: last?.time_s ?? 0,
          });
          done++;
          log(
            `suite [${done}/${total}] ${task.name} seed ${seed} ${p.spec.label}: ${
              reused ? `reused (${summary.status})` : summary.status
            } (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
          );
        }
      }
    } finally {
      await problem.close();
      if (meta) tf.dispose(metaWeightTensors(meta.weights));
    }
  }
  const familyNames = families.map((f) => f.name);
  const summaries = tasks.map((t) => summarizeTask(t.name, runs, familyNames, TARGET_FAMILY));
  const first = tasks[0];
  const setup = [
    `Tasks: ${tasks.map((t) => t.name).join(", ")}; seeds ${o.seeds.join(", ")}`,
    `Steps per task: ${
      o.steps ? `${o.steps} (--steps)` : tasks.map((t) => `${t.name} ${t.steps}`).join(", ")
    }; evaluation every ${o.evalEvery || (first ? first.evalEvery : 0)} steps on ${
      o.evalExamples || "all"
    } test examples`,
    "Data: MNIST eval-train split (the last 30 000 training images, disjoint from " +
    "meta-training) and test split, batch 128, shuffle buffer 50 000; no weight decay",
    `MLHF meta-weights: ${o.metaWeights}`,
    ...metaLines,
  ];
  const ctx = {
    title: `Held-out suite ${o.suite}`,
    command: o.command,
    backend: o.backend,
    setup,
    tasks: Object.fromEntries(tasks.map((t) => [t.name, t.description])),
    families: Object.fromEntries(families.map((f) => [
      f.name,
      `${f.description}${f.grid ? `; ${f.grid.key} ∈ {${f.grid.values.join(", ")}}` : ""}`,
    ])),
    mlhfFamilies: families.filter((f) => f.optimizer === "mlhf").map((f) => f.name),
    mainFamily: "mlhf",
    targetFamily: TARGET_FAMILY,
  };
  const gridKeys = Object.fromEntries(families.map((f) => [f.name, f.grid?.key]));
  const reportPath = join(o.out, "report.md"), profilePath = join(o.out, "profile.svg");
  const targets = Object.fromEntries(summaries.map((s) => [s.task, s.target]));
  await writeFileAtomic(reportPath, suiteMarkdown(summaries, ctx, gridKeys));
  await writeFileAtomic(join(o.out, "runs.csv"), runsCsv(runs, targets));
  await writeFileAtomic(join(o.out, "summary.csv"), summaryCsv(summaries));
  await writeFileAtomic(
    profilePath,
    profileSvg(summaries, `Held-out suite ${o.suite}: performance profiles`),
  );
  return { reportPath, profilePath, summaries, runs };
};
