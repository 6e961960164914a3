/** Test-only third-party specifiers, pinned (library code never imports this file). */
export { default as fc } from "npm:fast-check@4.11.0";
export { default as assert } from "node:assert/strict";
export { default as puppeteer } from "npm:puppeteer-core@25.16.0";
