/**
 * wabt (the WebAssembly binary toolkit, compiled to JS), pinned: only the tool that assembles the
 * native LSTM kernel (`tools/build_lstm_wasm.ts`) and its test load it, so it is kept out of
 * `deps.ts`, which every test imports.
 */
export { default as wabt } from "npm:wabt@1.0.37";
