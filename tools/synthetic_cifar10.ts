/**
 * Writes random images in the exact CIFAR-10 binary format (data_batch_1..5.bin, test_batch.bin)
 * for measurements that do not depend on the pixels, such as the memory of convnet meta-training:
 *
 *   deno run -A --frozen tools/synthetic_cifar10.ts /tmp/cifar-synth 400
 *
 * The records per file default to 400. Not a data set: the labels cycle and the pixels are noise.
 * @module
 */
import { writeCifar10 } from "../tests/data_fixtures.ts";

const [dir, perFileText = "400"] = Deno.args;
const perFile = Number(perFileText);
if (!dir || !(Number.isInteger(perFile) && perFile > 0)) {
  console.error("usage: tools/synthetic_cifar10.ts DIR [RECORDS_PER_FILE (a positive integer)]");
  Deno.exit(2);
}
await Deno.mkdir(dir, { recursive: true });
await writeCifar10(dir, perFile);
console.log(`wrote 6 CIFAR-10 binary files of ${perFile} random records to ${dir}`);
