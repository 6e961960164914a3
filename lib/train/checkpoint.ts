/**
 * A training run's checkpoint: parameters, optimizer state, batch-norm moving statistics, the data
 * stream's position, the step, the training-time clock and the evaluation window (the logs are cut
 * back to the step on resume), plus the run's identity so that a resume under other settings is an
 * error. Saved atomically as `<dir>/checkpoint/train.bin`; non-finite values are never saved.
 * @module
 */
import { join } from "node:path";
import { parsePosition, type Position } from "../data/pipeline.ts";
import { allFiniteTensors } from "../optim/base.ts";
import { FlagError } from "../cli/flags.ts";
import { disposeTensorsIn, loadCheckpoint, saveCheckpoint } from "../run/checkpoint.ts";
import { differences } from "../run/differences.ts";
import type { TreeValue } from "../run/tensor_file.ts";
import type { Params } from "../tree.ts";

export const CHECKPOINT_NAME = "train";

/** The directory of a run's checkpoint. */
export const checkpointDir = (runDir: string): string => join(runDir, "checkpoint");

/** Running sums of the training batches since the last evaluation. */
export interface Window {
  readonly lossSum: number;
  readonly accuracySum: number;
  readonly count: number;
}

/** Everything a run continues from. The tensors belong to whoever holds the value. */
export interface RunState {
  readonly step: number;
  readonly params: Params;
  readonly optimizer: unknown;
  readonly batchNorm: Params;
  /** Position after the last trained batch (null before the first). */
  readonly position: Position | null;
  readonly timeS: number;
  readonly window: Window;
  /** True once the run's last step, evaluation and checkpoint are done. */
  readonly finished: boolean;
}

/** Saves the run state atomically; refuses to save non-finite tensors. */
export const saveRunState = async (
  runDir: string,
  identity: string,
  s: RunState,
): Promise<string> => {
  if (!(await allFiniteTensors(s.params, s.optimizer, s.batchNorm))) {
    throw new Error(`step ${s.step}: not saving non-finite parameters or optimizer state`);
  }
  const payload = {
    version: 1,
    identity,
    step: s.step,
    params: s.params,
    optimizer: s.optimizer,
    batchNorm: s.batchNorm,
    position: s.position,
    timeS: s.timeS,
    window: s.window,
    finished: s.finished,
  } as unknown as TreeValue;
  return await saveCheckpoint(checkpointDir(runDir), CHECKPOINT_NAME, payload, { step: s.step });
};

/** What a run's checkpoint says about the run, without its tensors. */
export interface RunRecord {
  /** The run's identity (model, data, batch size, seed, optimizer, settings, …). */
  readonly identity: Readonly<Record<string, unknown>>;
  readonly step: number;
  readonly finished: boolean;
}

/** The identity, step and finished flag of a run's checkpoint, or null when it has none. */
export const readRunRecord = async (runDir: string): Promise<RunRecord | null> => {
  const ck = await loadCheckpoint(checkpointDir(runDir), CHECKPOINT_NAME);
  if (!ck) return null;
  const p = ck.payload as Record<string, TreeValue>;
  disposeTensorsIn(ck.payload);
  return {
    identity: JSON.parse(String(p.identity)) as Record<string, unknown>,
    step: p.step as number,
    finished: p.finished === true,
  };
};

/**
 * Loads a run's checkpoint, or null when there is none. Throws a `FlagError` (`--resume` under
 * other settings, exit code 2) when it belongs to a run with another identity, naming each field
 * that differs with both values.
 */
export const loadRunState = async (runDir: string, identity: string): Promise<RunState | null> => {
  const ck = await loadCheckpoint(checkpointDir(runDir), CHECKPOINT_NAME);
  if (!ck) return null;
  const p = ck.payload as Record<string, TreeValue>;
  try {
    if (p.identity !== identity) {
      throw new FlagError(
        `--resume: ${ck.file} is from a run with other settings: ${
          differences(JSON.parse(String(p.identity)), JSON.parse(identity)).join("; ")
        }`,
      );
    }
    return {
      step: p.step as number,
      params: p.params as unknown as Params,
      optimizer: p.optimizer,
      batchNorm: p.batchNorm as unknown as Params,
      position: p.position === null ? null : parsePosition(p.position),
      timeS: p.timeS as number,
      window: p.window as unknown as Window,
      finished: p.finished === true,
    };
  } catch (e) {
    disposeTensorsIn(ck.payload);
    throw e;
  }
};
