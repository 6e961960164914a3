/**
 * A row worker of the native LSTM kernels (`lstm_threads.ts`): runs the row shares it is sent
 * (`lstm_rows.ts` `runRows`, its own instance of the WebAssembly kernel) straight into the shared
 * output and reports each message's end on its flag: 1 done, 2 failed (the error's text written
 * next to the flag).
 * @module
 */
import { parentPort } from "node:worker_threads";
import { runRows } from "./lstm_rows.ts";
import { rowJob, type RowMessage, writeErrorText } from "./lstm_threads.ts";

type Message =
  | { readonly kind: "ping"; readonly flag: Int32Array }
  | { readonly kind: "rows"; readonly msg: RowMessage; readonly flag: Int32Array };

parentPort!.on("message", (m: Message) => {
  let status = 1;
  try {
    if (m.kind === "rows") runRows(rowJob(m.msg));
  } catch (e) {
    status = 2;
    writeErrorText(m.flag, String((e as Error)?.message ?? e));
  }
  Atomics.store(m.flag, 0, status);
  Atomics.notify(m.flag, 0);
});
