/**
 * Command-line flags of the data layer, for tasks to spread into their own flag specs.
 * @module
 */
import { BooleanFlag, flag, oneOf, PositiveIntFlag, StringFlag } from "../cli/flags.ts";
import { DATASET_NAMES } from "./dataset.ts";

/** `--dataset`, `--data-dir`, `--shuffle-buffer`, `--skip-corrupt`. */
export const dataFlags = {
  dataset: flag(oneOf(DATASET_NAMES), "mnist" as typeof DATASET_NAMES[number], "data set"),
  "data-dir": flag(
    StringFlag,
    "",
    "directory holding the data set's files (empty: the embedded MNIST)",
    "a path",
  ),
  "shuffle-buffer": flag(
    PositiveIntFlag,
    5000,
    "shuffle buffer size in examples (1: storage order)",
  ),
  "skip-corrupt": flag(
    BooleanFlag,
    false,
    "skip corrupt ImageNet records with a counted warning instead of failing",
  ),
};
