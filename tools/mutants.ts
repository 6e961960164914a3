/**
 * Mutation check of MLHF's sources (issue 14): each mutant is one small edit of the direction, the
 * LSTM cell, CG, the optimizer or meta-training's inner step that a faithful port must not contain;
 * the tests chosen for it must fail. The edits are applied one at a time to a temporary copy of the
 * repository (the working tree is never touched: the files `git ls-files` lists, tracked and
 * untracked-but-not-ignored, are copied and node_modules is linked), on the cpu backend. The
 * script also checks that every snippet occurs exactly once in its file (so the list cannot rot
 * silently) and that the unmutated copy passes the tests. It prints a table and exits non-zero
 * unless every mutant is killed.
 *
 * The LSTM mutant edits the op composition in lstm.ts; the native backend has its own fused kernel
 * (lib/backend/native/lstm*.ts), pinned against that composition by the native tests.
 *
 *   deno run -A tools/mutants.ts [--quick] [--only=id,id…] [--keep]
 *
 * `--quick`: the subset CI runs (4 mutants). `--only`: the named mutants. `--keep`: leave the copy.
 * @module
 */

/** One source mutation and the tests that must catch it. */
export interface Mutant {
  readonly id: string;
  readonly file: string;
  /** The exact original text; it must occur exactly once in `file`. */
  readonly from: string;
  readonly to: string;
  readonly description: string;
  readonly tests: readonly string[];
  readonly quick?: boolean;
}

const DIRECTION = "lib/optim/mlhf/direction.ts";
const DIRECTION_TEST = "lib/optim/mlhf/direction_test.ts";
const INNER_STEP_TEST = "lib/meta/inner_step_test.ts";

export const MUTANTS: readonly Mutant[] = [
  {
    id: "drop-lambda0",
    file: DIRECTION,
    from: "softplusPlus(o.lambda0),",
    to: "softplusPlus(0),",
    description: "λ = softplus(RNN_λ) without + λ₀",
    tests: [DIRECTION_TEST],
    quick: true,
  },
  {
    id: "lambda-swap-r-x",
    file: DIRECTION,
    from: "[fg, fr, fx],\n      lg,\n      softplusPlus(o.lambda0),",
    to: "[fg, fx, fr],\n      lg,\n      softplusPlus(o.lambda0),",
    description: "RNN_λ's inputs r_prev and x_prev swapped",
    tests: [DIRECTION_TEST],
    quick: true,
  },
  {
    id: "r0-as-rprev",
    file: DIRECTION,
    from: "rPrev: res.r,",
    to: "rPrev: res.r0,",
    description: "r₀ stored as the next step's r_prev (instead of the final r)",
    tests: [DIRECTION_TEST],
  },
  {
    id: "precond-rprev-for-r0",
    file: DIRECTION,
    from: "[lg, leaves(r0), leaves(x0)]",
    to: "[lg, lr, leaves(x0)]",
    description: "RNN_P fed r_prev instead of r₀",
    tests: [DIRECTION_TEST],
  },
  {
    id: "precond-xprev-for-x0",
    file: DIRECTION,
    from: "[lg, leaves(r0), leaves(x0)]",
    to: "[lg, leaves(r0), lx]",
    description: "RNN_P fed x_prev instead of x₀",
    tests: [DIRECTION_TEST],
  },
  {
    id: "forget-bias-0",
    file: "lib/optim/mlhf/lstm.ts",
    from: "tf.sigmoid(tf.add(gate(2), 1))",
    to: "tf.sigmoid(gate(2))",
    description: "LSTM forget bias 0 instead of 1 (composed cell)",
    tests: [DIRECTION_TEST],
    quick: true,
  },
  {
    id: "precond-no-softplus",
    file: DIRECTION,
    from: "softplusPlus(0),",
    to: "(out) => out,",
    description: "P = RNN_P(·) without the softplus",
    tests: [DIRECTION_TEST],
  },
  {
    id: "no-tanh-third-input",
    file: DIRECTION,
    from: "features.map((f) => squash(f, idx))",
    to: "features.map((f, j) => (j === 2 ? gather(f, idx) : squash(f, idx)))",
    description: "tanh omitted on the third input (x_prev, x₀) of every network",
    tests: [DIRECTION_TEST],
  },
  {
    id: "cg-k-minus-1",
    file: "lib/solvers/cg.ts",
    from: "k < maxIterations; k++",
    to: "k < maxIterations - 1; k++",
    description: "K − 1 CG iterations",
    tests: [DIRECTION_TEST],
  },
  {
    id: "x0-wrong-step",
    file: DIRECTION,
    from: "xPrev: res.x,",
    to: "xPrev: x0,",
    description: "the next step's x₀ (x_prev) is this step's x₀, from the step before, not this x",
    tests: [DIRECTION_TEST],
  },
  {
    id: "update-sign",
    file: "lib/optim/mlhf/optimizer.ts",
    from: "scale(d.x, -learningRate)",
    to: "scale(d.x, learningRate)",
    description: "the update is +η·x",
    tests: [DIRECTION_TEST],
  },
  {
    id: "lstm-state-not-carried",
    file: DIRECTION,
    from: "const nextRnn = { ...state.rnn, ...rnn };",
    to: "const nextRnn = { ...state.rnn };",
    description: "the LSTM states are not carried to the next step",
    tests: [DIRECTION_TEST],
  },
  {
    id: "eta-ignored",
    file: "lib/optim/mlhf/optimizer.ts",
    from: "scale(d.x, -learningRate)",
    to: "scale(d.x, -1)",
    description: "the update is −x (η ignored)",
    tests: [DIRECTION_TEST],
  },
  {
    id: "hessian-loss-no-sqrt",
    file: "lib/meta/meta_train.ts",
    from: "tf.sqrt(vdot(d.x, sub(g, d.r)))",
    to: "vdot(d.x, sub(g, d.r))",
    description: "h = −⟨g, x⟩ / ⟨x, g − r⟩ (the √ dropped)",
    tests: [INNER_STEP_TEST],
    quick: true,
  },
  {
    id: "lambda-squared",
    file: "lib/solvers/cg.ts",
    from: "add(g(v), mul(lambda, v))",
    to: "add(g(v), mul(mul(lambda, lambda), v))",
    description: "A v = G v + λ² ⊙ v (per-coordinate λ applied squared)",
    tests: [DIRECTION_TEST],
  },
  {
    id: "cg-rho-not-updated",
    file: "lib/solvers/cg.ts",
    from: "    rho = rhoNext;\n",
    to: "",
    description: "CG keeps ρ₀ (ρ ← ρ′ dropped)",
    tests: [DIRECTION_TEST],
  },
  {
    id: "clip-fraction-ignored",
    file: "lib/meta/meta_train.ts",
    from: "tf.mul(o.clipFraction, thetaNorm)",
    to: "thetaNorm",
    description: "meta-training clips ‖ηx‖ to ‖θ‖ instead of 0.25‖θ‖",
    tests: [INNER_STEP_TEST],
  },
  {
    id: "noise-dropped",
    file: "lib/meta/meta_train.ts",
    from: "tf.mul(tf.mul(x, u), factor)",
    to: "tf.mul(x, factor)",
    description: "meta-training's update without the multiplicative noise u",
    tests: [INNER_STEP_TEST],
  },
];

/** What running one mutant's tests gave. */
export type Outcome = "killed" | "survived" | "error";

/** A test run's outcome: killed when tests ran and some failed; error when none ran. */
export const outcomeOf = (code: number, output: string): Outcome => {
  // deno's closing line (run with NO_COLOR): "FAILED | 3 passed | 2 failed (1s)".
  if (code === 0) return "survived";
  return /^FAILED \| \d+ passed.* \| [1-9]\d* failed/m.test(output) ? "killed" : "error";
};

/** How often `needle` occurs in `text`. */
export const occurrences = (text: string, needle: string): number => {
  let n = 0;
  for (let i = text.indexOf(needle); i >= 0; i = text.indexOf(needle, i + 1)) n++;
  return n;
};

const run = async (cmd: string[], cwd: string) => {
  const out = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    cwd,
    env: { MLHF_TEST_BACKEND: "cpu", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, output: dec.decode(out.stdout) + dec.decode(out.stderr) };
};

const testCommand = (files: readonly string[]) => [
  Deno.execPath(),
  "test",
  "-A",
  "--frozen",
  "--no-check",
  ...files,
];

/** Top-level entries a copy without git leaves out (dependencies, outputs, VCS data). */
const SKIP_WITHOUT_GIT = new Set(["node_modules", ".git", ".tools", "runs"]);

/** The repository's files: `git ls-files` (tracked and untracked-but-not-ignored), else a walk. */
const repoFiles = async (root: string): Promise<string[]> => {
  const ls = await run(
    ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
    root,
  )
    .catch(() => ({ code: -1, output: "" }));
  if (ls.code === 0) return [...new Set(ls.output.split("\0").filter((f) => f))];
  console.error(
    `tools/mutants.ts: no git checkout at ${root}; copying every file but ${
      [...SKIP_WITHOUT_GIT].join(", ")
    }`,
  );
  const out: string[] = [];
  const walk = async (rel: string) => {
    for await (const e of Deno.readDir(rel ? `${root}/${rel}` : root)) {
      const path = rel ? `${rel}/${e.name}` : e.name;
      if (!rel && SKIP_WITHOUT_GIT.has(e.name)) continue;
      if (e.isDirectory) await walk(path);
      else if (e.isFile) out.push(path);
    }
  };
  await walk("");
  return out;
};

/** Copies the repository's files to a fresh temp dir and links its node_modules there. */
const copyRepo = async (root: string): Promise<string> => {
  const files = await repoFiles(root);
  const dir = await Deno.makeTempDir({ prefix: "mlhf-mutants-" });
  for (const rel of files) {
    const src = `${root}/${rel}`;
    try {
      if (!(await Deno.lstat(src)).isFile) continue;
    } catch {
      continue; // deleted in the working tree
    }
    const slash = rel.lastIndexOf("/");
    if (slash > 0) await Deno.mkdir(`${dir}/${rel.slice(0, slash)}`, { recursive: true });
    await Deno.copyFile(src, `${dir}/${rel}`);
  }
  await Deno.symlink(`${root}/node_modules`, `${dir}/node_modules`);
  return dir;
};

const main = async (args: string[]): Promise<number> => {
  const known = ["--quick", "--keep"];
  const only = args.find((a) => a.startsWith("--only="))?.slice("--only=".length).split(",");
  const bad = args.filter((a) => !known.includes(a) && !a.startsWith("--only="));
  if (bad.length) {
    console.error(
      `tools/mutants.ts: unknown argument ${bad.join(" ")} (expected --quick, --only=id,…, --keep)`,
    );
    return 2;
  }
  const unknownIds = (only ?? []).filter((id) => !MUTANTS.some((m) => m.id === id));
  if (unknownIds.length) {
    console.error(
      `tools/mutants.ts: --only names unknown mutants ${unknownIds.join(", ")} (known: ${
        MUTANTS.map((m) => m.id).join(", ")
      })`,
    );
    return 2;
  }
  const chosen = MUTANTS.filter((
    m,
  ) => (only ? only.includes(m.id) : !args.includes("--quick") || m.quick));
  const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
  const dir = await copyRepo(root);
  let failed = false;
  try {
    // Every snippet exactly once in its (unmutated) file.
    for (const m of chosen) {
      const n = occurrences(await Deno.readTextFile(`${dir}/${m.file}`), m.from);
      if (n !== 1) {
        console.error(
          `tools/mutants.ts: mutant '${m.id}': its snippet occurs ${n} times in ${m.file}, expected exactly once: ${
            JSON.stringify(m.from)
          }`,
        );
        failed = true;
      }
    }
    if (failed) return 1;
    // The unmutated copy passes every test the chosen mutants use.
    const allTests = [...new Set(chosen.flatMap((m) => m.tests))];
    const t0 = performance.now();
    const base = await run(testCommand(allTests), dir);
    console.log(
      `unmutated copy: ${allTests.join(" ")}: ${base.code === 0 ? "pass" : "FAIL"} (${
        ((performance.now() - t0) / 1000).toFixed(1)
      } s)`,
    );
    if (base.code !== 0) {
      console.error(base.output.slice(-4000));
      console.error("tools/mutants.ts: the unmutated copy fails its tests; fix that first");
      return 1;
    }
    const rows: string[] = [];
    for (const m of chosen) {
      const path = `${dir}/${m.file}`;
      const original = await Deno.readTextFile(path);
      await Deno.writeTextFile(path, original.replace(m.from, m.to));
      const start = performance.now();
      let r;
      try {
        r = await run(testCommand(m.tests), dir);
      } finally {
        await Deno.writeTextFile(path, original);
      }
      const seconds = (performance.now() - start) / 1000;
      const outcome = outcomeOf(r.code, r.output);
      if (outcome !== "killed") {
        failed = true;
        if (outcome === "error") {
          console.error(`mutant '${m.id}': no test ran:\n${r.output.slice(-2000)}`);
        }
      }
      const killed = outcome === "killed" ? "yes" : outcome === "survived" ? "**no**" : "error";
      rows.push(
        `| \`${m.id}\`: ${m.description} (${m.file}) | ${m.tests.join(", ")} | ${killed} | ${
          seconds.toFixed(1)
        } |`,
      );
      console.error(`${m.id}: ${outcome} (${seconds.toFixed(1)} s)`);
    }
    console.log(
      "\n| mutant | tests run | killed | seconds |\n|---|---|---|---|\n" + rows.join("\n"),
    );
    const survivors = rows.length - rows.filter((r) => r.includes("| yes |")).length;
    console.log(`\n${rows.length - survivors} of ${rows.length} mutants killed`);
    return failed ? 1 : 0;
  } finally {
    if (args.includes("--keep")) console.error(`copy kept at ${dir}`);
    else await Deno.remove(dir, { recursive: true });
  }
};

if (import.meta.main) Deno.exit(await main(Deno.args));
