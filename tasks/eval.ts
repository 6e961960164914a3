/**
 * `deno task eval`: trains a model with any optimizer and compares optimizers.
 * The flags are placeholders until issue 8 lands; --help and flag errors already work.
 * @module
 */
import { backendFlag, runCli } from "./_cli.ts";
import { flag, PositiveIntFlag } from "../lib/cli/flags.ts";

export const SPECS = {
  backend: backendFlag,
  seed: flag(PositiveIntFlag, 1, "seed of every random choice (init, data order, noise)"),
};

if (import.meta.main) {
  await runCli(
    "eval",
    "Trains a model with a chosen optimizer and writes logs and a report.",
    SPECS,
    () => {
      console.log("not yet implemented: see issue 8");
      return Promise.resolve();
    },
  );
}
