/**
 * A row worker that starts but fails every share (tests of `lstm_threads.ts`: the calling thread
 * must redo the share, stop the workers and say why).
 * @module
 */
import { parentPort } from "node:worker_threads";
import { writeErrorText } from "../lstm_threads.ts";

parentPort!.on("message", (m: { kind: string; flag: Int32Array }) => {
  const ok = m.kind === "ping";
  if (!ok) writeErrorText(m.flag, "planted failure");
  Atomics.store(m.flag, 0, ok ? 1 : 2);
  Atomics.notify(m.flag, 0);
});
