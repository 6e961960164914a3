/**
 * Expected weak-scaling efficiency of a data-parallel MLHF step (README "Several machines (MPI)"),
 * from single-node measurements and a stated network.
 *
 * Cost model. With N ranks, each on its own batch of b examples (weak scaling: the global batch is
 * N·b), one MLHF step with K CG iterations costs what one process pays on b examples, plus K + 2
 * all-reduces of the |θ| float32 parameters (the gradient, r₀ = b − A·x₀, K products G·p; the
 * loss and accuracy are scalars) and, per all-reduce, the device→host→device copies of the vector
 * (MPI reduces host memory):
 *
 *   T(N) = T₁(b) + (K + 2)·(A(N, |θ|) + H(|θ|)),   E(N) = T₁(b) / T(N),
 *
 * with a ring all-reduce A(N, n) = 2(N − 1)·(α + 4n/(N·β)) for latency α and bandwidth β, and H the
 * measured host-copy overhead per reduction (scaled by |θ|). The MLHF LSTMs run on every rank on
 * identical inputs, so their time T_lstm is in T₁(b) at every N; sharding them by coordinates would
 * save T_lstm·(1 − 1/N) per step and cost two all-gathers of |θ| floats (λ and P), about one
 * all-reduce: the tool prints both.
 *
 * Inputs: `deno task bench --filter dist/ --json FILE` (rows `dist/step cudaConvnet b128 … N=1`,
 * the all-reduce rows at N = 2, and `dist/step resnet18 b4 mlhf K=4 N=1`).
 *
 * ```sh
 * deno run -A --frozen tools/mpi_scaling.ts --bench results/mpi/bench.json --gbps 25 --latency-us 20
 * ```
 * @module
 */
import {
  flag,
  FlagError,
  oneOf,
  parseFlags,
  PositiveIntFlag,
  PositiveNumberFlag,
  StringFlag,
  usage,
} from "../lib/cli/flags.ts";
import type { BenchRow } from "../lib/bench/harness.ts";

/** A network: bandwidth per link in Gb/s and per-message latency in µs. */
export interface Network {
  readonly gbps: number;
  readonly latencyUs: number;
}

/** One model's single-node numbers. */
export interface StepModel {
  readonly name: string;
  /** |θ|. */
  readonly params: number;
  /** T₁(b): one step on one process at the per-rank batch, ms. */
  readonly stepMs: number;
  /** All-reduces of |θ| floats per step (K + 2). */
  readonly reductions: number;
  /** H: device→host→device copy overhead per reduction, ms. */
  readonly hostMs: number;
  /** The meta-networks' share of the step (MLHF − HF(fixed) at the same K), ms. */
  readonly lstmMs: number;
}

/** Ring all-reduce of `floats` float32 over `n` ranks, ms: 2(n − 1) steps of n-th of the data. */
export const ringAllreduceMs = (floats: number, n: number, net: Network): number =>
  n <= 1 ? 0 : 2 * (n - 1) * (net.latencyUs / 1e3 + (4 * floats / n) / (net.gbps * 1e9 / 8) * 1e3);

/** T(N) of the cost model, ms. */
export const distributedStepMs = (m: StepModel, n: number, net: Network): number =>
  m.stepMs + (n > 1 ? m.reductions * (ringAllreduceMs(m.params, n, net) + m.hostMs) : 0);

/** E(N) = T₁ / T(N). */
export const efficiency = (m: StepModel, n: number, net: Network): number =>
  m.stepMs / distributedStepMs(m, n, net);

/** What sharding the LSTMs by coordinates would save and cost per step at N ranks, ms. */
export const lstmSharding = (m: StepModel, n: number, net: Network) => ({
  savedMs: m.lstmMs * (1 - 1 / n),
  // Two all-gathers (λ and P), each half a ring all-reduce's traffic, plus their host copies.
  costMs: n <= 1 ? 0 : ringAllreduceMs(m.params, n, net) + 2 * m.hostMs,
});

/** Which statistic of a bench row to use: `min` (the least disturbed run) or `median`. */
export type Stat = "min" | "median";

const row = (rows: readonly BenchRow[], name: string, stat: Stat): number => {
  const r = rows.find((x) => x.name === name);
  if (!r) throw new Error(`--bench: no row "${name}" (run deno task bench --filter dist/ --json)`);
  return stat === "min" ? r.minMs : r.medianMs;
};

/** The CUDA-convnet's and ResNet-18's step models from the `dist/` bench rows. */
export const modelsFromBench = (
  rows: readonly BenchRow[],
  k = 4,
  stat: Stat = "min",
): StepModel[] => {
  const convnet = 1_756_426, resnet18 = 11_692_329;
  const host = row(rows, `dist/allreduce cudaConvnet ${convnet} floats N=2 from tensors`, stat) -
    row(rows, `dist/allreduce cudaConvnet ${convnet} floats N=2 host buffer`, stat);
  const perFloat = Math.max(0, host) / convnet;
  const mlhf = row(rows, `dist/step cudaConvnet b128 mlhf K=${k} N=1`, stat);
  const hf = row(rows, `dist/step cudaConvnet b128 hf-fixed K=${k} N=1`, stat);
  const lstmPerFloat = Math.max(0, mlhf - hf) / convnet;
  const resnetStep = row(rows, `dist/step resnet18 b4 mlhf K=${k} N=1`, stat);
  return [
    {
      name: "CUDA-convnet, 128 examples per rank",
      params: convnet,
      stepMs: mlhf,
      reductions: k + 2,
      hostMs: perFloat * convnet,
      lstmMs: lstmPerFloat * convnet,
    },
    {
      name: "ResNet-18 v2 (ImageNet), 4 examples per rank",
      params: resnet18,
      stepMs: resnetStep,
      reductions: k + 2,
      hostMs: perFloat * resnet18,
      // The meta-networks are coordinatewise: their time scales with |θ| (at most the whole step).
      lstmMs: Math.min(resnetStep, lstmPerFloat * resnet18),
    },
  ];
};

/** The Markdown table of the estimate. */
export const scalingTable = (
  models: readonly StepModel[],
  ranks: readonly number[],
  net: Network,
): string => {
  const ms = (x: number) => x >= 100 ? `${x.toFixed(0)} ms` : `${x.toPrecision(2)} ms`;
  const head = [
    "model",
    "T₁ (measured)",
    ...ranks.flatMap((
      n,
    ) => [`all-reduce N=${n}`, `T(${n})`, `E(${n})`, `LSTM shard saves/costs N=${n}`]),
  ];
  const body = models.map((m) => [
    m.name,
    ms(m.stepMs),
    ...ranks.flatMap((n) => {
      const s = lstmSharding(m, n, net);
      return [
        ms(ringAllreduceMs(m.params, n, net)),
        ms(distributedStepMs(m, n, net)),
        `${(100 * efficiency(m, n, net)).toFixed(1)} %`,
        `${ms(s.savedMs)} / ${ms(s.costMs)}`,
      ];
    }),
  ]);
  const line = (cells: readonly string[]) => `| ${cells.join(" | ")} |`;
  return [line(head), line(head.map((_, i) => (i === 0 ? ":--" : "--:"))), ...body.map(line)].join(
    "\n",
  );
};

/** The tool's flags. */
export const SPECS = {
  bench: flag(StringFlag, "", "JSON of deno task bench --filter dist/ --json FILE", "a path"),
  gbps: flag(PositiveNumberFlag, 25, "network bandwidth per link, Gb/s"),
  "latency-us": flag(PositiveNumberFlag, 20, "latency per message, µs"),
  ranks: flag(StringFlag, "8,64", "rank counts to estimate", "comma-separated integers"),
  k: flag(PositiveIntFlag, 4, "CG iterations K (K + 2 all-reduces per step)"),
  stat: flag(
    oneOf(["min", "median"] as const),
    "min" as Stat,
    "statistic of each bench row (min: the least disturbed run on a shared machine)",
  ),
};

if (import.meta.main) {
  const SUMMARY = "Weak-scaling estimate of a data-parallel MLHF step from single-node bench rows.";
  try {
    const parsed = parseFlags(Deno.args, SPECS);
    if (parsed.kind === "help") {
      console.log(usage("tools/mpi_scaling.ts", SUMMARY, SPECS));
      Deno.exit(0);
    }
    const c = parsed.config;
    if (!c.bench) {
      throw new FlagError("--bench: needed (the JSON of deno task bench --filter dist/)");
    }
    const ranks = c.ranks.split(",").map(Number);
    if (!ranks.every((n) => Number.isInteger(n) && n >= 1)) {
      throw new FlagError(`--ranks: ${JSON.stringify(c.ranks)}; expected integers ≥ 1`);
    }
    const net = { gbps: c.gbps, latencyUs: c["latency-us"] };
    const rows = JSON.parse(await Deno.readTextFile(c.bench)) as BenchRow[];
    console.log(
      `Network: ring all-reduce, ${net.gbps} Gb/s per link, ${net.latencyUs} µs per message; ` +
        `K = ${c.k} (K + 2 all-reduces per step); bench rows' ${c.stat}.\n`,
    );
    console.log(scalingTable(modelsFromBench(rows, c.k, c.stat), ranks, net));
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    Deno.exit(2);
  }
}
