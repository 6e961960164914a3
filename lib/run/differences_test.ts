import { assert } from "../../tests/_util/deps.ts";
import { differences } from "./differences.ts";

Deno.test("differences: each differing leaf field by its dotted path, with both values", () => {
  const old = { seed: 1, model: "mlp", settings: { lr: 0.01, beta1: 0.9 }, kinds: ["a"] };
  const now = { seed: 2, model: "mlp", settings: { lr: 0.5, beta1: 0.9, eps: 1 }, kinds: ["b"] };
  assert.deepEqual(differences(old, now), [
    "seed: checkpoint 1, now 2",
    "settings.lr: checkpoint 0.01, now 0.5",
    "settings.eps: checkpoint (absent), now 1",
    'kinds: checkpoint ["a"], now ["b"]',
  ]);
  assert.deepEqual(differences(old, structuredClone(old)), []);
  assert.deepEqual(differences({ a: { b: 1 } }, { a: null }), [
    'a: checkpoint {"b":1}, now null',
  ]);
});
