import { tf } from "../_deps.ts";
import { useTestBackend } from "../../tests/_util/backend.ts";
import { assertAllClose, withNoLeaks } from "../../tests/_util/numeric.ts";
import { keyFromSeed } from "../prng.ts";
import { leaves, type Params } from "../tree.ts";
import { initMetaWeights } from "../optim/mlhf/meta_weights.ts";
import {
  decodeMetaWeights,
  encodeMetaWeights,
  loadMetaWeights,
  saveMetaWeights,
} from "./meta_weights_file.ts";
import { encodeTree } from "../run/tensor_file.ts";

await useTestBackend();

const opts = { dampingMode: "rnn", preconditioner: "rnn", xInit: "previous" } as const;

const expectError = (f: () => unknown, re: RegExp) => {
  try {
    f();
  } catch (e) {
    if (!re.test((e as Error).message)) throw new Error(`message ${(e as Error).message} !~ ${re}`);
    return;
  }
  throw new Error(`no error (wanted ${re})`);
};

Deno.test("meta-weights file: round trip through disk keeps weights, options and provenance", async () => {
  const w = initMetaWeights(keyFromSeed(1), opts, ["dense/kernel", "conv2d/bias"]);
  const dir = await Deno.makeTempDir();
  try {
    await withNoLeaks(async () => {
      const path = `${dir}/w.mlhf`;
      await saveMetaWeights(path, w, {
        options: { cgIterations: 4, lambda0: 2e-5 },
        provenance: { seed: 7, command: "deno task train" },
      });
      const f = await loadMetaWeights(path);
      for (const k of ["dense/kernel", "conv2d/bias"] as const) {
        assertAllClose(
          leaves(f.weights[k] as unknown as Params),
          leaves(w[k] as unknown as Params),
          { rtol: 0, atol: 0 },
          k,
        );
      }
      if (f.header.options.cgIterations !== 4) throw new Error("options lost");
      if ((f.header.provenance as { seed: number }).seed !== 7) throw new Error("provenance lost");
      if (f.header.kinds.join() !== "conv2d/bias,dense/kernel") {
        throw new Error(`kinds ${f.header.kinds}`);
      }
      tf.dispose(leaves(f.weights as Params));
    });
  } finally {
    tf.dispose(leaves(w as Params));
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("meta-weights file: wrong version, kind, role and shape are errors that name them", async () => {
  const w = initMetaWeights(keyFromSeed(2), opts, ["dense/bias"]);
  try {
    await withNoLeaks(() => {
      const good = encodeMetaWeights(w, { options: {} });
      tf.dispose(leaves(decodeMetaWeights(good, "ok.mlhf").weights as Params));
      const header = (over: Record<string, unknown>) => ({
        format: "mlhf-meta-weights",
        version: 1,
        kinds: ["dense/bias"],
        roles: ["damping", "precond"],
        options: {},
        ...over,
      });
      expectError(
        () =>
          decodeMetaWeights(
            encodeTree(
              "mlhf-meta-weights",
              { "dense/bias": w["dense/bias"] } as never,
              header({ version: 2 }),
            ),
            "v2.mlhf",
          ),
        /v2\.mlhf: meta\.version: expected 1, found 2/,
      );
      expectError(
        () =>
          decodeMetaWeights(
            encodeTree(
              "mlhf-meta-weights",
              { "lstm/kernel": w["dense/bias"] } as never,
              header({}),
            ),
            "kind.mlhf",
          ),
        /kind\.mlhf: kind 'lstm\/kernel': expected one of conv2d\/kernel/,
      );
      expectError(
        () =>
          decodeMetaWeights(
            encodeTree(
              "mlhf-meta-weights",
              { "dense/bias": { lr: w["dense/bias"]!.lambda } } as never,
              header({}),
            ),
            "role.mlhf",
          ),
        /role\.mlhf: dense\/bias\/lr: expected a role damping, precond or x0/,
      );
      const bad = tf.zeros([6, 16]);
      const net = w["dense/bias"]!.lambda!;
      expectError(
        () =>
          decodeMetaWeights(
            encodeTree("mlhf-meta-weights", {
              "dense/bias": {
                damping: {
                  layers: [{ kernel: bad, bias: net.layers[0].bias }, net.layers[1]],
                  head: net.head,
                },
              },
            } as never, header({})),
            "shape.mlhf",
          ),
        /shape\.mlhf: dense\/bias\/damping\/layers\/0\/kernel: expected shape \[7,16\], found \[6,16\]/,
      );
      bad.dispose();
      expectError(
        () => decodeMetaWeights(encodeTree("mlhf-checkpoint", {} as never, {}), "other.mlhf"),
        /other\.mlhf/,
      );
    });
  } finally {
    tf.dispose(leaves(w as Params));
  }
  try {
    await loadMetaWeights("/nonexistent/x.mlhf");
    throw new Error("no error");
  } catch (e) {
    if (!/\/nonexistent\/x\.mlhf: cannot read the meta-weights file/.test((e as Error).message)) {
      throw e;
    }
  }
});
