import { assert } from "../tests/_util/deps.ts";
import {
  configDir,
  configEnv,
  formatLossRange,
  formatPercentRange,
  pairCounts,
  parseConfig,
  range,
  reportRows,
  sameBits,
  type SpreadRow,
  spreadTables,
  trajectoryHash,
} from "./spread_summary.ts";

/** Asserts that `f` throws an Error whose message contains `text`. */
const throwsWith = (f: () => unknown, text: string) =>
  assert.throws(f, (e: Error) => e.message.includes(text) || assert.fail(e.message));

Deno.test("parseConfig reads backend, threads, core and repeat in any order", () => {
  assert.deepEqual(parseConfig("native:t4:SkylakeX"), {
    spec: "native:t4:SkylakeX",
    backend: "native",
    threads: 4,
    core: "SkylakeX",
    repeat: 1,
  });
  assert.deepEqual(parseConfig("wasm:r2"), {
    spec: "wasm:r2",
    backend: "wasm",
    threads: null,
    core: null,
    repeat: 2,
  });
  assert.deepEqual(configDir(parseConfig("native:Zen:r3:t1")), "native-t1-Zen-r3");
  assert.deepEqual(configDir(parseConfig("cpu")), "cpu");
});

Deno.test("parseConfig rejects what it cannot mean, naming the configuration", () => {
  throwsWith(() => parseConfig("auto"), `bad configuration "auto": unknown backend`);
  throwsWith(() => parseConfig("wasm:t2"), "native backend only");
  throwsWith(() => parseConfig("native:t0"), "threads must be at least 1");
  throwsWith(() => parseConfig("native:t1:t2"), `repeated part "t2"`);
  throwsWith(() => parseConfig("native:4"), `unexpected part "4"`);
});

Deno.test("configEnv sets what is asked and removes inherited BLAS settings otherwise", () => {
  const plain = configEnv(parseConfig("native"), 2, "");
  assert.deepEqual(plain.set, {});
  assert.deepEqual(plain.unset.includes("OPENBLAS_CORETYPE"), true);
  assert.deepEqual(plain.unset.includes("OPENBLAS_NUM_THREADS"), true);
  const asked = configEnv(parseConfig("native:t2:Haswell"), 2, "");
  assert.deepEqual(asked.set, { OPENBLAS_NUM_THREADS: "2", OPENBLAS_CORETYPE: "Haswell" });
  assert.deepEqual(asked.unset.includes("OPENBLAS_CORETYPE"), false);
  const faked = configEnv(parseConfig("native:t8"), 2, "/x/fake_nproc.so");
  assert.deepEqual(faked.set, {
    OPENBLAS_NUM_THREADS: "8",
    LD_PRELOAD: "/x/fake_nproc.so",
    FAKE_NPROC: "8",
    MLHF_THREADS: "2",
  });
  throwsWith(() => configEnv(parseConfig("native:t8"), 2, ""), "--fake-nproc");
});

Deno.test("trajectoryHash tells trajectories apart by any bit of any logged figure", () => {
  const steps = [{ loss: 2.3 }, { loss: 0.5 }];
  const evals = [{ train_loss: 0.4, test_loss: 0.3, test_accuracy: 0.9 }];
  const h = trajectoryHash(steps, evals);
  assert.deepEqual(/^[0-9a-f]{14}$/.test(h), true);
  assert.deepEqual(trajectoryHash(steps.map((s) => ({ ...s })), evals), h);
  const nudged = [{ loss: 2.3 }, { loss: 0.5 + 2 ** -52 }];
  assert.deepEqual(trajectoryHash(nudged, evals) === h, false);
  const other = [{ train_loss: 0.4, test_loss: 0.3, test_accuracy: 0.9001 }];
  assert.deepEqual(trajectoryHash(steps, other) === h, false);
});

Deno.test("reportRows reads settings and status by label from a comparison report", () => {
  const md = [
    "# Optimizer comparison",
    "",
    "| optimizer | settings       | steps | final test acc | status             |",
    "| :-------- | :------------- | ----: | -------------: | ------------------ |",
    "| mlhf      | lr=1 cg-iter=2 |   468 |         92.30% | finished           |",
    "| adam      | a \\| b         |    12 |         11.35% | diverged at step 12 |",
    "",
    "| optimizer | other |",
  ].join("\n");
  const rows = reportRows(md);
  assert.deepEqual([...rows.keys()], ["mlhf", "adam"]);
  assert.deepEqual(rows.get("mlhf"), { settings: "lr=1 cg-iter=2", status: "finished" });
  assert.deepEqual(rows.get("adam"), { settings: "a | b", status: "diverged at step 12" });
  assert.deepEqual(reportRows("no table").size, 0);
});

Deno.test("range and its formats: median of odd and even counts, non-finite values left out", () => {
  assert.deepEqual(range([0.3, 0.1, 0.2]), { n: 3, median: 0.2, min: 0.1, max: 0.3 });
  assert.deepEqual(range([4, 1, NaN, 2, 3]), { n: 4, median: 2.5, min: 1, max: 4 });
  assert.deepEqual(range([NaN]).n, 0);
  assert.deepEqual(formatPercentRange(range([0.923, 0.9112, 0.9236])), "92.30 (91.12–92.36)");
  assert.deepEqual(formatPercentRange(range([0.9253, 0.9253])), "92.53");
  assert.deepEqual(formatPercentRange(range([0.92531, 0.92529])), "92.53");
  assert.deepEqual(formatLossRange(range([0.27651, 0.27649])), "0.2765");
  assert.deepEqual(formatPercentRange(range([])), "–");
  assert.deepEqual(formatLossRange(range([0.2484, 0.2462, 0.2628])), "0.2484 (0.2462–0.2628)");
});

const row = (config: string, seed: number, acc: number, hash: string): SpreadRow => ({
  config,
  seed,
  label: "mlhf",
  settings: "lr=1",
  status: "finished",
  steps: 468,
  finalTestAccuracy: acc,
  bestTestAccuracy: acc + 0.001,
  bestTrainLoss: 0.25,
  finalTestLoss: 0.26,
  peakLoss: 2.3,
  hash,
});

Deno.test("sameBits groups configurations by trajectory, biggest group first", () => {
  const rows = [row("wasm", 1, 0.91, "b"), row("native-t1", 1, 0.92, "a"), row("cpu", 1, 0.9, "a")];
  assert.deepEqual(sameBits(rows), "{native-t1, cpu} {wasm}");
});

Deno.test("spreadTables pools runs and splits them by seed and by configuration", () => {
  const rows = [
    row("native-t1", 1, 0.92, "a"),
    row("wasm", 1, 0.91, "b"),
    row("native-t1", 2, 0.93, "c"),
    row("wasm", 2, 0.93, "c"),
  ];
  const md = spreadTables(rows);
  const line = (start: string) =>
    md.split("\n").map((l) => l.replace(/ +/g, " ")).find((l) => l.startsWith(start));
  assert.deepEqual(
    line("| mlhf | lr=1"),
    "| mlhf | lr=1 | 4 (2 seeds × 2 configs) | 92.50 (91.00–93.00) | 92.60 (91.10–93.10) | " +
      "0.2500 | 3 | 4 finished |",
  );
  assert.deepEqual(
    line("| mlhf | 1 |"),
    "| mlhf | 1 | 91.50 (91.00–92.00) | 91.60 (91.10–92.10) | 0.2500 | {native-t1} {wasm} |",
  );
  assert.deepEqual(
    line("| mlhf | 2 |"),
    "| mlhf | 2 | 93.00 | 93.10 | 0.2500 | {native-t1, wasm} |",
  );
  assert.deepEqual(
    line("| mlhf | wasm |"),
    "| mlhf | wasm | 92.00 (91.00–93.00) | 92.10 (91.10–93.10) | 0.2500 | 1, 2 |",
  );
});

Deno.test("pairCounts compares two optimizers only in the runs they share", () => {
  const adam = (config: string, seed: number, acc: number): SpreadRow => ({
    ...row(config, seed, acc, "x"),
    label: "adam",
    bestTrainLoss: 0.3,
  });
  const rows = [
    row("native-t1", 1, 0.92, "a"),
    row("wasm", 1, 0.91, "b"),
    row("wasm", 2, 0.95, "c"),
    adam("native-t1", 1, 0.915),
    adam("wasm", 1, 0.91),
    adam("cpu", 1, 0.5),
  ];
  assert.deepEqual(pairCounts(rows), [
    { a: "mlhf", b: "adam", runs: 2, finalHigher: 1, bestHigher: 1, lossLower: 2 },
  ]);
  assert.deepEqual(pairCounts(rows.slice(0, 3)), []);
});
