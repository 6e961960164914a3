/**
 * MLHF's meta-weights as eval resolves them: a missing file is null when optional and the given
 * message when required; a file holding a NaN is refused at load, naming the meta-weight; a
 * preset's missing file is explained (not shipped, the command that makes it).
 */
import { assert } from "../../tests/_util/deps.ts";
import { useTestBackend } from "../../tests/_util/backend.ts";
import { withNoLeaks } from "../../tests/_util/numeric.ts";
import { join } from "node:path";
import { tf } from "../_deps.ts";
import { saveMetaWeights } from "../meta/meta_weights_file.ts";
import { initMetaWeights, metaWeightTensors } from "../optim/mlhf/meta_weights.ts";
import { MLHF_DEFAULTS } from "../optim/mlhf/direction.ts";
import { keyFromSeed } from "../prng.ts";
import { mapTree, type Params } from "../tree.ts";
import { missingMetaWeightsMessage } from "./presets.ts";
import { resolveMetaWeights } from "./problem.ts";
import { tempDir } from "./_testing.ts";
import {
  DATASET_INPUT_SHAPE,
  DEFAULT_DATASET,
  makeModel,
  MODEL_NAMES,
  modelKinds,
  type ModelName,
} from "./models.ts";
import { describeKindMap, parseKindMap } from "../optim/mlhf/kind_map.ts";
import { checkMetaWeights } from "../optim/mlhf/direction.ts";

await useTestBackend();

Deno.test("meta-weights: missing (optional or with a message) and non-finite files", async () => {
  const dir = await tempDir();
  try {
    const none = join(dir, "none.mlhf");
    assert.equal(await resolveMetaWeights(none, { seed: 1, required: false }), null);
    await assert.rejects(
      () => resolveMetaWeights(none, { seed: 1, required: true, missing: "why and how" }),
      Error,
      "why and how",
    );
    const w = initMetaWeights(keyFromSeed(1), MLHF_DEFAULTS, ["dense/kernel", "dense/bias"]);
    const target = w["dense/bias"]!.precond!.head.bias;
    const bad = mapTree(w as Params, (t) => t === target ? tf.fill(t.shape, Infinity) : t);
    target.dispose();
    const file = join(dir, "bad.mlhf");
    await saveMetaWeights(file, bad as typeof w, { options: {} });
    tf.dispose(metaWeightTensors(bad as typeof w));
    await withNoLeaks(() =>
      assert.rejects(
        () => resolveMetaWeights(file, { seed: 1, required: true }),
        Error,
        `${file}: meta-weight dense/bias/precond/head/bias is not finite (NaN or ±∞): ` +
          "unusable by MLHF",
      )
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("meta-weights: a preset's missing file names the meta-training that makes it", () => {
  assert.equal(
    missingMetaWeightsMessage("cifar-b512"),
    "weights/mlhf-convnet.mlhf: MLHF's meta-weights for preset cifar-b512 do not exist: they " +
      "are not shipped with the repository. Make them by meta-training, `deno task train " +
      "--problem convnet --dataset cifar10 --data-dir DATA_DIR --batch-size 64 --keep-prob 0.3 " +
      "--meta-roll-back 3 --out runs/mt-convnet` (DATA_DIR: the CIFAR-10 binary directory), then " +
      "copy runs/mt-convnet/meta-weights.mlhf to weights/mlhf-convnet.mlhf; or pass " +
      "--meta-weights FILE (or untrained), or leave mlhf out with --compare.",
  );
  // ImageNet's --data-dir is not the CIFAR-10 directory the meta-training needs.
  assert.match(
    missingMetaWeightsMessage("imagenet-resnet18", "/data/imagenet"),
    /`deno task train --problem resnet --dataset cifar10 --data-dir DATA_DIR --out runs\/mt-resnet`/,
  );
});

/**
 * For every shipped `--model`: resolves the meta-weights file for the model's parameter kinds,
 * checks that MLHF accepts them, and runs `check` on them (then frees them).
 */
const eachShippedModel = async (
  file: string,
  check: (
    name: ModelName,
    meta: NonNullable<Awaited<ReturnType<typeof resolveMetaWeights>>>,
    kinds: ReturnType<typeof modelKinds>,
  ) => void | Promise<void>,
): Promise<void> => {
  for (const name of MODEL_NAMES) {
    const kinds = modelKinds(makeModel(name, 10), DATASET_INPUT_SHAPE[DEFAULT_DATASET[name]]);
    const meta = (await resolveMetaWeights(file, { seed: 1, required: true, kinds }))!;
    try {
      checkMetaWeights(meta.weights, kinds, { ...MLHF_DEFAULTS, ...meta.options });
      await check(name, meta, kinds);
    } finally {
      tf.dispose(metaWeightTensors(meta.weights));
    }
  }
};

Deno.test("meta-weights: every shipped --model runs MLHF with the shipped MNIST weights (default transfer), and an explicit kind map wins", async () => {
  const shipped = "weights/mlhf-mnist.mlhf";
  const expected: Record<ModelName, string> = {
    mlp: "",
    convnet: "conv2d/kernel←dense/kernel, conv2d/bias←dense/bias",
    "convnet-small": "conv2d/kernel←dense/kernel, conv2d/bias←dense/bias",
    resnet20: "conv2d/kernel←dense/kernel, batch/gamma←dense/bias, batch/beta←dense/bias",
    resnet32: "conv2d/kernel←dense/kernel, batch/gamma←dense/bias, batch/beta←dense/bias",
    resnet56: "conv2d/kernel←dense/kernel, batch/gamma←dense/bias, batch/beta←dense/bias",
    resnet18: "conv2d/kernel←dense/kernel, batch/gamma←dense/bias, batch/beta←dense/bias",
  };
  await withNoLeaks(() =>
    eachShippedModel(shipped, async (name, meta, kinds) => {
      assert.equal(describeKindMap(meta.defaultTransfer ?? []), expected[name], name);
      if (name === "convnet") {
        // Without the model's kinds nothing is transferred, and MLHF refuses the convnet.
        const plain = (await resolveMetaWeights(shipped, { seed: 1, required: true }))!;
        try {
          assert.throws(
            () => checkMetaWeights(plain.weights, kinds, { ...MLHF_DEFAULTS, ...plain.options }),
            /no λ \(damping\) meta-network for parameter kind 'conv2d\/kernel'/,
          );
        } finally {
          tf.dispose(metaWeightTensors(plain.weights));
        }
      }
    })
  );
  const kinds = modelKinds(makeModel("convnet-small", 10), [28, 28, 1]);
  const meta = (await resolveMetaWeights(shipped, {
    seed: 1,
    required: true,
    kinds,
    kindMap: parseKindMap("conv2d/kernel=dense/bias"),
  }))!;
  try {
    assert.equal(describeKindMap(meta.defaultTransfer ?? []), "conv2d/bias←dense/bias");
    assert.equal(meta.weights["conv2d/kernel"], meta.weights["dense/bias"]);
    assert.notEqual(meta.weights["conv2d/kernel"], meta.weights["dense/kernel"]);
    assert.equal(meta.weights["conv2d/bias"], meta.weights["dense/bias"]);
  } finally {
    tf.dispose(metaWeightTensors(meta.weights));
  }
});

Deno.test("meta-weights: the task-mix weights (weights/mlhf-mix.mlhf) have their own conv networks and scale-free features, and every shipped --model runs MLHF with them", async () => {
  const mix = "weights/mlhf-mix.mlhf";
  const bn = "batch/gamma←dense/bias, batch/beta←dense/bias";
  const expected: Record<ModelName, string> = {
    mlp: "",
    convnet: "",
    "convnet-small": "",
    resnet20: bn,
    resnet32: bn,
    resnet56: bn,
    resnet18: bn,
  };
  await withNoLeaks(() =>
    eachShippedModel(mix, (name, meta) => {
      assert.equal(describeKindMap(meta.defaultTransfer ?? []), expected[name], name);
      assert.equal(meta.options.featureNorm, "rms", name);
    })
  );
});
