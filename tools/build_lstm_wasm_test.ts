/**
 * The committed WebAssembly bytes of the native LSTM kernel (`lib/backend/native/lstm_cell_wasm.ts`)
 * are the assembly of the committed source (`lstm_cell.wat`) by `tools/build_lstm_wasm.ts`.
 * @module
 */
import { assert } from "../tests/_util/deps.ts";
import { LSTM_WASM_BASE64 } from "../lib/backend/native/lstm_cell_wasm.ts";
import { assembleLstmWasm, wasmModuleText } from "./build_lstm_wasm.ts";

Deno.test("lstm_cell_wasm.ts holds the assembly of lstm_cell.wat", async () => {
  const bytes = await assembleLstmWasm();
  const committed = Uint8Array.from(atob(LSTM_WASM_BASE64.join("")), (ch) => ch.charCodeAt(0));
  assert.ok(
    committed.length === bytes.length && committed.every((b, i) => b === bytes[i]),
    "lib/backend/native/lstm_cell_wasm.ts is not the assembly of lstm_cell.wat: run " +
      "`deno run -A --frozen tools/build_lstm_wasm.ts`",
  );
  const text = await Deno.readTextFile(
    new URL("../lib/backend/native/lstm_cell_wasm.ts", import.meta.url),
  );
  assert.equal(text, wasmModuleText(bytes), "lstm_cell_wasm.ts's text is not the tool's output");
});
