/**
 * The oneDNN kernels' primitive cache (`primitive_cache.ts`): a hit returns the entry without
 * creating it again, null is remembered, the least recently used entry (not the oldest created) is
 * destroyed when the cache is full.
 * @module
 */
import { assert } from "../../../../tests/_util/deps.ts";
import { primitiveCache } from "./primitive_cache.ts";

Deno.test("primitive cache: hits, remembered nulls, least recently used evicted and destroyed", () => {
  const destroyed: string[] = [], created: string[] = [];
  const get = primitiveCache<{ name: string }>(2, (e) => destroyed.push(e.name));
  const make = (name: string) => () => {
    created.push(name);
    return name === "none" ? null : { name };
  };
  const a = get("a", make("a"));
  assert.equal(get("a", make("a")), a);
  assert.equal(get("none", make("none")), null);
  assert.equal(get("none", make("none")), null);
  assert.deepEqual(created, ["a", "none"]);
  get("a", make("a")); // "a" is now the most recently used
  get("b", make("b")); // full: evicts "none" (nothing to destroy)
  assert.deepEqual(destroyed, []);
  get("c", make("c")); // evicts "a"
  assert.deepEqual(destroyed, ["a"]);
  get("a", make("a"));
  assert.deepEqual(created, ["a", "none", "b", "c", "a"]);
  assert.deepEqual(destroyed, ["a", "b"]);
});
