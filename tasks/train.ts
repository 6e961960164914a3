/**
 * `deno task train`: meta-trains the MLHF meta-networks.
 * The flags are placeholders until issue 7 lands; --help and flag errors already work.
 * @module
 */
import { backendFlag, runCli } from "./_cli.ts";
import { flag, PositiveIntFlag } from "../lib/cli/flags.ts";

export const SPECS = {
  backend: backendFlag,
  seed: flag(PositiveIntFlag, 1, "seed of every random choice (init, data order, noise)"),
};

if (import.meta.main) {
  await runCli("train", "Meta-trains MLHF's damping and preconditioner LSTMs.", SPECS, () => {
    console.log("not yet implemented: see issue 7");
    return Promise.resolve();
  });
}
