/**
 * Meta-training survives faults: a `deno task train` process killed (SIGKILL) mid-run and resumed
 * with `--resume` ends with the same meta-weights as an uninterrupted run with the same seed.
 * @module
 */
import { tf } from "../lib/_deps.ts";
import { useTestBackend } from "./_util/backend.ts";
import { assertAllClose } from "./_util/numeric.ts";
import { loadMetaWeights } from "../lib/meta/meta_weights_file.ts";
import { leaves, type Params } from "../lib/tree.ts";

await useTestBackend();

const TRAIN = new URL("../tasks/train.ts", import.meta.url).pathname;
const ARGS = [
  "--backend",
  "wasm",
  "--mlp-hidden",
  "4",
  "--batch-size",
  "16",
  "--meta-roll-back",
  "2",
  "--iterations",
  "6",
  "--checkpoint-every",
  "1",
  "--keep-prob",
  "0.5",
  "--seed",
  "3",
];

const run = (out: string, extra: string[] = []) =>
  new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--frozen", TRAIN, ...ARGS, "--out", out, ...extra],
    stdout: "piped",
    stderr: "piped",
  });

const lines = async (path: string) => {
  try {
    return (await Deno.readTextFile(path)).split("\n").filter((l) => l.trim()).length;
  } catch {
    return 0;
  }
};

Deno.test({
  name:
    "meta-training: a run killed mid-way and resumed gives the uninterrupted run's meta-weights",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      const straight = await run(`${dir}/a`).output();
      if (!straight.success) throw new Error(new TextDecoder().decode(straight.stderr));
      // Start the same run, kill it once 3 iterations are logged, then resume it.
      const child = run(`${dir}/b`).spawn();
      const deadline = Date.now() + 120_000;
      while ((await lines(`${dir}/b/meta_train.jsonl`)) < 3) {
        if (Date.now() > deadline) throw new Error("the run never reached iteration 3");
        await new Promise((r) => setTimeout(r, 50));
      }
      child.kill("SIGKILL");
      await child.output();
      const logged = await lines(`${dir}/b/meta_train.jsonl`);
      if (logged >= 6) throw new Error("the run finished before it could be killed");
      const resumed = await run(`${dir}/b`, ["--resume"]).output();
      const text = new TextDecoder().decode(resumed.stderr);
      if (!resumed.success) throw new Error(text);
      if (!/resuming at iteration [1-5]/.test(text)) throw new Error(`did not resume: ${text}`);
      const a = await loadMetaWeights(`${dir}/a/meta-weights.mlhf`);
      const b = await loadMetaWeights(`${dir}/b/meta-weights.mlhf`);
      try {
        assertAllClose(leaves(b.weights as Params), leaves(a.weights as Params), {
          rtol: 0,
          atol: 0,
        }, "meta-weights");
        if ((await lines(`${dir}/b/meta_train.jsonl`)) !== 6) {
          throw new Error("log has not exactly 6 records");
        }
      } finally {
        tf.dispose([...leaves(a.weights as Params), ...leaves(b.weights as Params)]);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
