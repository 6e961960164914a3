/**
 * Data parallelism over MPI (lib/distributed, issue 19). Without MPI: the reduction count of one
 * HF step (K + 2 |θ|-vectors), sharding, the bit-identity check. With `mpirun` (CI installs Open
 * MPI; the tests say so and are ignored where it is absent): `deno task eval --distributed` on 2
 * ranks equals one process on the same global batch to float32 tolerance; a rank killed with
 * SIGKILL stops the job with a message naming it, and `--resume` then reproduces the uninterrupted
 * 2-rank run bit for bit; 2-rank meta-training resumed from rank 0's checkpoint reproduces its
 * uninterrupted run's meta-weights bit for bit.
 * @module
 */
import { join } from "node:path";
import { tf } from "../lib/_deps.ts";
import { assert } from "./_util/deps.ts";
import { withNoLeaks } from "./_util/numeric.ts";
import { errorLine } from "./_util/cli.ts";
import { loopback } from "../lib/distributed/communicator.ts";
import { assertIdentical, hashTensors, RanksDifferError } from "../lib/distributed/consistency.ts";
import { reducedCurvature } from "../lib/distributed/reduce.ts";
import { checkShardable, shardRows } from "../lib/distributed/shard.ts";
import { gaussNewtonProduct } from "../lib/curvature/gauss_newton.ts";
import { conjugateGradient, dampedOperator } from "../lib/solvers/cg.ts";
import { leaves, type Params, size, zerosLike } from "../lib/tree.ts";
import { softmaxCrossEntropy } from "../ops/losses.ts";
import type { Nn } from "../ops/nn.ts";
import { decodeTree } from "../lib/run/tensor_file.ts";
import { readJsonl } from "../lib/run/logger.ts";

type Mlp = { w1: tf.Tensor; b1: tf.Tensor; w2: tf.Tensor; b2: tf.Tensor };
const mlp = (nn: Nn, p: Mlp, x: tf.Tensor) =>
  nn.dense(nn.sigmoid(nn.dense(x, p.w1, p.b1)), p.w2, p.b2);

Deno.test("one HF step all-reduces the loss-free curvature K + 2 times (g, r₀, K products)", async () => {
  await withNoLeaks(() => {
    const p: Mlp = {
      w1: tf.randomNormal([5, 4], 0, 0.5, "float32", 1),
      b1: tf.zeros([4]),
      w2: tf.randomNormal([4, 3], 0, 0.5, "float32", 2),
      b2: tf.zeros([3]),
    };
    const batch = {
      x: tf.randomNormal([6, 5], 0, 1, "float32", 3),
      y: tf.oneHot([0, 1, 2, 0, 1, 2], 3),
    };
    const comm = loopback();
    const gn = gaussNewtonProduct(mlp, softmaxCrossEntropy, p, batch);
    const reduced = reducedCurvature(gn, comm);
    const K = 3;
    const [x, xRef] = [reduced, gn].map((c) =>
      tf.tidy(() =>
        leaves(
          conjugateGradient(dampedOperator(c.product, 0.1), c.gradient, {
            x0: zerosLike(c.gradient),
            maxIterations: K,
            epsilon: 0,
          }).x,
        )
      )
    );
    assert.equal(comm.stats.allreduces, K + 2);
    assert.equal(comm.stats.floats, (K + 2) * size(p as unknown as Params));
    // One rank: the mean is the identity, bit for bit.
    x.forEach((t, i) => assert.deepEqual(t.dataSync(), xRef[i].dataSync()));
    tf.dispose([...x, ...xRef, batch.x, batch.y, ...leaves(p as unknown as Params)]);
    reduced.dispose();
  });
});

Deno.test("shards: rank r of N gets rows [r·B/N, (r+1)·B/N); B not divisible is refused", async () => {
  await withNoLeaks(() => {
    const x = tf.tidy(() => tf.range(0, 12).reshape([6, 2]));
    const [a] = shardRows([x], 1, 3);
    assert.deepEqual(Array.from(a.dataSync()), [4, 5, 6, 7]);
    tf.dispose([x, a]);
  });
  assert.throws(
    () => checkShardable(30, 4),
    /^Error: --batch-size 30 does not split evenly over 4 ranks; expected a multiple of 4$/,
  );
});

Deno.test("bit-identity check: equal hashes pass; a rank whose bits differ is named", async () => {
  await withNoLeaks(() => {
    const t = tf.tensor([1, 2, 3]);
    const u = tf.tensor([1, 2, 3 + 2 ** -20]);
    const [a, b] = hashTensors([t]);
    assert.notDeepEqual(hashTensors([u]), [a, b]);
    // A 2-rank job seen from rank 0: the peer's hashes arrive through the all-reduce.
    const peer = (ha: number, hb: number) => ({
      ...loopback(),
      size: 2,
      allreduceSum: (buf: Float32Array | Float64Array) => {
        buf[2] = ha;
        buf[3] = hb;
      },
    });
    assertIdentical([t], peer(a, b), "params");
    const [c, d] = hashTensors([u]);
    assert.throws(
      () => assertIdentical([t], peer(c, d), "params after step 40"),
      (e: unknown) =>
        e instanceof RanksDifferError &&
        e.message === "params after step 40: rank 1 of 2 differ from rank 0 " +
            "(data-parallel ranks must stay bit-identical)",
    );
    tf.dispose([t, u]);
  });
});

// ---- with mpirun ----

const hasMpirun = new Deno.Command("sh", { args: ["-c", "command -v mpirun"] }).outputSync()
  .success;
if (!hasMpirun) {
  console.log(
    "distributed_test: mpirun not found: the 2-rank tests are ignored (install Open MPI: " +
      "apt-get install openmpi-bin libopenmpi-dev)",
  );
}
const MPIRUN = ["-n", "2", "--allow-run-as-root", "--oversubscribe"];
const task = (name: string) => new URL(`../tasks/${name}.ts`, import.meta.url).pathname;

interface Out {
  readonly code: number;
  readonly text: string;
}

const spawn = (argv: string[], timeoutMs = 60_000) =>
  new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(timeoutMs),
  }).spawn();

const finish = async (p: Deno.ChildProcess): Promise<Out> => {
  const o = await p.output();
  const dec = new TextDecoder();
  return { code: o.code, text: dec.decode(o.stdout) + dec.decode(o.stderr) };
};

const deno = (
  t: string,
  args: string[],
) => [Deno.execPath(), "run", "-A", "--frozen", task(t), ...args];
const mpi = (
  t: string,
  args: string[],
) => ["mpirun", ...MPIRUN, ...deno(t, [...args, "--distributed"])];

/** The float32 tensors of a checkpoint's subtree, by path. */
const tensorsOf = async (file: string, key: string): Promise<Map<string, Float32Array>> => {
  const d = decodeTree(await Deno.readFile(file), file);
  const out = new Map<string, Float32Array>();
  const walk = (v: unknown, path: string) => {
    if (v instanceof tf.Tensor) {
      out.set(path, new Float32Array(v.dataSync()));
      v.dispose();
    } else if (v && typeof v === "object") {
      for (const [k, w] of Object.entries(v)) walk(w, `${path}/${k}`);
    }
  };
  walk((d.value as Record<string, unknown>)[key], key);
  for (const [k, w] of Object.entries(d.value as Record<string, unknown>)) {
    if (k !== key) walk(w, "");
  }
  return new Map([...out].filter(([k]) => k.startsWith(key)));
};

const steps = async (run: string) =>
  (await readJsonl(join(run, "log.jsonl"))).filter((r) => r.kind === "step");

const EVAL = [
  ...["--backend", "wasm", "--batch-size", "32", "--eval-examples", "100"],
  ...["--shuffle-buffer", "1", "--eval-every", "0"],
];

Deno.test({
  name: "mpirun -n 2 eval --distributed equals one process on the global batch (float32)",
  ignore: !hasMpirun,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "mlhf-mpi-eval-" });
    try {
      const args = [...EVAL, "--compare", "mlhf,hf-fixed:cg-iter=4,adam", "--steps", "5"];
      const one = await finish(spawn(deno("eval", [...args, "--out", join(dir, "one")])));
      assert.equal(one.code, 0, one.text);
      const two = await finish(spawn(mpi("eval", [...args, "--out", join(dir, "two")])));
      assert.equal(two.code, 0, two.text);
      for (const run of ["mlhf", "hf-fixed", "adam"]) {
        const [a, b] = [await steps(join(dir, "one", run)), await steps(join(dir, "two", run))];
        assert.equal(b.length, 5, run);
        a.forEach((r, i) => {
          const [x, y] = [r.loss as number, b[i].loss as number];
          assert.ok(Math.abs(x - y) <= 1e-6 * Math.abs(x), `${run} step ${i + 1}: ${x} vs ${y}`);
          assert.equal(r.accuracy, b[i].accuracy, `${run} step ${i + 1}: accuracy`);
        });
        const ckpt = (d: string) => join(dir, d, run, "checkpoint", "train.bin");
        const [p, q] = [
          await tensorsOf(ckpt("one"), "params"),
          await tensorsOf(ckpt("two"), "params"),
        ];
        assert.ok(p.size > 0 && p.size === q.size, `${run}: ${p.size} vs ${q.size} tensors`);
        for (const [k, v] of p) {
          const w = q.get(k)!;
          let worst = 0;
          v.forEach((e, i) => (worst = Math.max(worst, Math.abs(e - w[i]) / (1e-3 + Math.abs(e)))));
          assert.ok(worst < 1e-4, `${run} ${k}: relative difference ${worst}`);
        }
      }
      // Only rank 0 writes: one set of logs, one report.
      assert.ok(two.text.split("\n").filter((l) => l.startsWith("report:")).length === 1, two.text);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** The pid of rank `rank` among mpirun `pid`'s children (its OMPI_COMM_WORLD_RANK). */
const rankPid = async (pid: number, rank: number): Promise<number | null> => {
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const stat = await Deno.readTextFile(`/proc/${e.name}/stat`);
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid !== pid) continue;
      const env = await Deno.readTextFile(`/proc/${e.name}/environ`);
      if (env.split("\0").includes(`OMPI_COMM_WORLD_RANK=${rank}`)) return Number(e.name);
    } catch { /* gone */ }
  }
  return null;
};

Deno.test({
  name: "a killed rank stops the job naming it; --resume reproduces the 2-rank run bit for bit",
  ignore: !hasMpirun,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "mlhf-mpi-kill-" });
    try {
      const args = [
        ...EVAL,
        ...[
          "--optimizer",
          "hf-fixed",
          "--cg-iter",
          "2",
          "--steps",
          "12",
          "--checkpoint-every",
          "3",
        ],
      ];
      const ref = await finish(spawn(mpi("eval", [...args, "--out", join(dir, "ref")])));
      assert.equal(ref.code, 0, ref.text);
      const out = join(dir, "killed");
      const t0 = performance.now();
      const p = spawn(mpi("eval", [...args, "--out", out]));
      let killed = false;
      while (!killed) {
        const n = await steps(join(out, "hf-fixed")).then((s) => s.length, () => 0);
        if (n >= 5) {
          const pid = await rankPid(p.pid, 1);
          assert.ok(pid !== null, "rank 1's process not found");
          Deno.kill(pid, "SIGKILL");
          killed = true;
        } else await new Promise((r) => setTimeout(r, 10));
      }
      const died = await finish(p);
      assert.notEqual(died.code, 0, died.text);
      assert.match(died.text, /process rank 1 .*exited on signal 9/s);
      assert.ok(performance.now() - t0 < 50_000, "the job did not stop promptly");
      const logged = (await steps(join(out, "hf-fixed"))).length;
      assert.ok(logged < 12, `killed after ${logged} steps: too late to test anything`);
      const resumed = await finish(spawn(mpi("eval", [...args, "--out", out, "--resume"])));
      assert.equal(resumed.code, 0, resumed.text);
      const strip = (r: Record<string, unknown>) => {
        const { step_ms: _a, time_s: _b, eval_ms: _c, ...rest } = r;
        return rest;
      };
      const [a, b] = [
        await steps(join(dir, "ref", "hf-fixed")),
        await steps(join(out, "hf-fixed")),
      ];
      assert.deepEqual(b.map(strip), a.map(strip));
      const ckpt = (d: string) => join(d, "hf-fixed", "checkpoint", "train.bin");
      for (const key of ["params", "optimizer"]) {
        const [x, y] = [
          await tensorsOf(ckpt(join(dir, "ref")), key),
          await tensorsOf(ckpt(out), key),
        ];
        assert.ok(x.size > 0);
        assert.deepEqual([...y.keys()], [...x.keys()]);
        for (const [k, v] of x) assert.deepEqual(y.get(k), v, `${key} ${k}`);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "mpirun -n 2 train --distributed: resumed from rank 0's checkpoint, same meta-weights",
  ignore: !hasMpirun,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "mlhf-mpi-train-" });
    try {
      const args = [
        ...["--backend", "wasm", "--meta-roll-back", "1", "--batch-size", "8"],
        ...["--checkpoint-every", "2", "--mlp-hidden", "8", "--keep-prob", "1"],
      ];
      const ref = await finish(
        spawn(mpi("train", [...args, "--iterations", "3", "--out", join(dir, "ref")])),
      );
      assert.equal(ref.code, 0, ref.text);
      const out = join(dir, "two-parts");
      const first = await finish(spawn(mpi("train", [...args, "--iterations", "2", "--out", out])));
      assert.equal(first.code, 0, first.text);
      const rest = await finish(
        spawn(mpi("train", [...args, "--iterations", "3", "--out", out, "--resume"])),
      );
      assert.equal(rest.code, 0, rest.text);
      const file = (d: string) => join(d, "meta-train.bin");
      const [x, y] = [
        await tensorsOf(file(join(dir, "ref")), "state"),
        await tensorsOf(file(out), "state"),
      ];
      const meta = [...x.keys()].filter((k) => k.startsWith("state/meta/"));
      assert.ok(meta.length > 0);
      for (const k of meta) assert.deepEqual(y.get(k), x.get(k), k);
      // Rank 1 kept its own trajectory, and it differs from rank 0's (its own windows; no resets).
      const r1 = await tensorsOf(join(out, "ranks", "1", "meta-train.bin"), "state");
      const theta = [...x.keys()].filter((k) => k.startsWith("state/theta/"));
      assert.ok(theta.length > 0);
      assert.ok(theta.some((k) => r1.get(k)!.some((v, i) => v !== x.get(k)![i])));
      for (const k of meta) assert.deepEqual(r1.get(k), x.get(k), `rank 1 ${k}`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("--distributed without Open MPI: one line naming what to install (exit 2)", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--frozen", task("eval"), "--distributed", "--steps", "1"],
    env: { MLHF_MPI_LIBRARY: "libmpi-not-installed.so.40" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 2);
  assert.equal(
    errorLine(new TextDecoder().decode(out.stderr)),
    "error: --distributed: Open MPI's libmpi-not-installed.so.40 was not found; install it " +
      "(Debian/Ubuntu: apt-get install openmpi-bin libopenmpi-dev) and launch with mpirun -n N",
  );
});
