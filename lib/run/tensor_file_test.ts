import { tf } from "../_deps.ts";
import { assert } from "../../tests/_util/deps.ts";
import { withNoLeaks } from "../../tests/_util/numeric.ts";
import { useTestBackend } from "../../tests/_util/backend.ts";
import {
  decodeTensors,
  decodeTree,
  encodeTensors,
  encodeTree,
  escapePathSegment,
  flattenTree,
  TENSOR_FILE_MAGIC,
  TensorFileError,
  type TreeValue,
  unescapePathSegment,
  unflattenTree,
} from "./tensor_file.ts";

await useTestBackend();

/** A plain copy of a tree with tensors replaced by { dtype, shape, values } (for deepEqual). */
const snapshot = (v: TreeValue): unknown => {
  if (v instanceof tf.Tensor) return { dtype: v.dtype, shape: v.shape, values: [...v.dataSync()] };
  if (Array.isArray(v)) return v.map(snapshot);
  if (v !== null && typeof v === "object") {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, snapshot(x)]));
  }
  return v;
};
const disposeAll = (m: Map<string, tf.Tensor>) => m.forEach((x) => x.dispose());

/** Header JSON of an encoded file, and a function to re-encode it with a changed header. */
const headerOf = (bytes: Uint8Array) => {
  const n = new DataView(bytes.buffer, bytes.byteOffset).getUint32(12, true);
  return JSON.parse(new TextDecoder().decode(bytes.subarray(16, 16 + n)));
};
const withHeader = (bytes: Uint8Array, edit: (h: Record<string, unknown>) => unknown) => {
  const old = new DataView(bytes.buffer, bytes.byteOffset).getUint32(12, true);
  const oldStart = Math.ceil((16 + old) / 8) * 8;
  const h = new TextEncoder().encode(JSON.stringify(edit(headerOf(bytes))));
  const start = Math.ceil((16 + h.length) / 8) * 8;
  const out = new Uint8Array(start + bytes.length - oldStart);
  out.set(bytes.subarray(0, 16));
  new DataView(out.buffer).setUint32(12, h.length, true);
  out.set(h, 16);
  out.set(bytes.subarray(oldStart), start);
  return out;
};

Deno.test("tensor file: layout (magic, version, header length, 8-byte aligned data)", async () => {
  await withNoLeaks(() => {
    const a = tf.tensor([1.5, -2], [2]), b = tf.tensor([7], [1], "int32");
    const bytes = encodeTensors("demo", { note: "x" }, [{ path: "a", tensor: a }, {
      path: "b",
      tensor: b,
    }]);
    tf.dispose([a, b]);
    assert.equal(new TextDecoder().decode(bytes.subarray(0, 8)), TENSOR_FILE_MAGIC);
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    assert.equal(view.getUint32(8, true), 1);
    const h = headerOf(bytes);
    assert.deepEqual(h.tensors, [
      { path: "a", shape: [2], dtype: "float32", offset: 0, length: 8 },
      { path: "b", shape: [1], dtype: "int32", offset: 8, length: 4 },
    ]);
    const start = Math.ceil((16 + view.getUint32(12, true)) / 8) * 8;
    assert.equal(bytes.length, start + 12);
    assert.equal(view.getFloat32(start, true), 1.5);
    assert.equal(view.getFloat32(start + 4, true), -2);
    assert.equal(view.getInt32(start + 8, true), 7);
  });
});

Deno.test("tensor file: round trip of float32, int32, scalars, empty and odd shapes", async () => {
  await withNoLeaks(() => {
    const made = [
      tf.tensor([[1, 2, 3], [4, 5, 6]]),
      tf.tensor([-3, 2 ** 31 - 1, -(2 ** 31)], [3], "int32"),
      tf.scalar(Math.PI),
      tf.tensor([], [0]),
      tf.tensor([], [2, 0, 3], "int32"),
      tf.tensor([0.1, NaN, Infinity], [1, 3, 1]),
    ];
    const entries = made.map((tensor, i) => ({ path: `t${i}/x`, tensor }));
    const bytes = encodeTensors("demo", { step: 3, tags: ["a"] }, entries);
    const d = decodeTensors(bytes, "mem.bin", { kind: "demo" });
    assert.equal(d.kind, "demo");
    assert.deepEqual(d.meta, { step: 3, tags: ["a"] });
    assert.deepEqual([...d.tensors.keys()], entries.map((e) => e.path));
    made.forEach((x, i) => assert.deepEqual(snapshot(d.tensors.get(`t${i}/x`)!), snapshot(x)));
    disposeAll(d.tensors);
    tf.dispose(made);
  });
});

Deno.test("tensor file: a float32 cast of a bool tensor (bytes on cpu) is written as float32", async () => {
  await withNoLeaks(() => {
    const made = tf.tidy(() => tf.cast(tf.greater(tf.tensor([1, -2, 3]), 0), "float32"));
    const bytes = encodeTensors("demo", {}, [{ path: "m", tensor: made }]);
    const d = decodeTensors(bytes, "mem.bin", { kind: "demo" });
    assert.deepEqual(Array.from(d.tensors.get("m")!.dataSync()), [1, 0, 1]);
    disposeAll(d.tensors);
    made.dispose();
  });
});

Deno.test("tensor tree: nested objects and arrays, numbers, strings, key order round trip", async () => {
  await withNoLeaks(() => {
    const tree: TreeValue = {
      params: { w: tf.tensor([[1, 2], [3, 4]]), b: tf.zeros([2]) },
      slots: [tf.ones([3]), { mu: tf.tensor([5], [1], "int32") }, []],
      step: 12,
      key: [0xdeadbeef, 7],
      lr: 1e-300,
      odd: [NaN, Infinity, -Infinity, -0, null, undefined, true, false],
      name: "adam",
      "a/b~c": { "": tf.scalar(2) },
      "10": "integer-like keys come first in JS, as they will after the round trip",
      empty: {},
    };
    const bytes = encodeTree("state", tree, { savedBy: "test" });
    const d = decodeTree(bytes, "state.bin", { kind: "state" });
    assert.equal(d.kind, "state");
    assert.deepEqual(d.meta, { savedBy: "test" });
    assert.deepEqual(snapshot(d.value), snapshot(tree));
    assert.deepEqual(Object.keys(d.value as object), Object.keys(tree));
    const odd = (d.value as { odd: unknown[] }).odd;
    assert.ok(Object.is(odd[3], -0) && Number.isNaN(odd[0]));
    assert.ok(Array.isArray((d.value as { slots: unknown }).slots));
    assert.deepEqual((d.value as { empty: object }).empty, {});
    const paths = flattenTree(tree).entries.map((e) => e.path);
    assert.deepEqual(paths, [
      "params/w",
      "params/b",
      "slots/0",
      "slots/1/mu",
      "a~1b~0c/",
    ]);
    const disposeTree = (v: TreeValue): void => {
      if (v instanceof tf.Tensor) v.dispose();
      else if (v && typeof v === "object") Object.values(v).forEach(disposeTree);
    };
    disposeTree(d.value);
    disposeTree(tree);
  });
});

Deno.test("tensor tree: a tensor at the root, and a tree of no tensors", async () => {
  await withNoLeaks(() => {
    const x = tf.tensor([1, 2]);
    const d = decodeTree(encodeTree("k", x), "f");
    assert.deepEqual(snapshot(d.value), snapshot(x));
    (d.value as tf.Tensor).dispose();
    x.dispose();
    assert.deepEqual(decodeTree(encodeTree("k", { a: [1, "b"] }), "f").value, { a: [1, "b"] });
    assert.equal(decodeTree(encodeTree("k", 3), "f").value, 3);
  });
});

Deno.test("tensor tree: path segments escape '/' and '~' reversibly", () => {
  for (const k of ["a/b", "~1", "~/~0/", "", "plain"]) {
    assert.equal(unescapePathSegment(escapePathSegment(k)), k);
    assert.ok(!escapePathSegment(k).includes("/"));
  }
});

Deno.test("tensor tree: unstorable values and cycles are TypeErrors naming the path", () => {
  assert.throws(
    () => flattenTree({ a: { b: new Float32Array(2) } } as never),
    /"a\/b" is a Float32Array/,
  );
  assert.throws(() => flattenTree({ m: new Map() } as never), /"m" is a Map/);
  assert.throws(() => flattenTree([() => 1] as never), /"0" is a function/);
  const cyclic: Record<string, unknown> = { x: 1 };
  cyclic.self = { back: cyclic };
  assert.throws(() => flattenTree(cyclic as never), /cycle at "self\/back"/);
  const b = tf.tensor([true], [1], "bool");
  assert.throws(
    () => encodeTree("k", { flag: b }),
    /"flag" has dtype bool; expected float32 or int32/,
  );
  b.dispose();
  assert.throws(() => encodeTensors("k", { x: NaN }, []), /meta.x: NaN is not valid JSON/);
  const t1 = tf.scalar(1);
  assert.throws(
    () => encodeTensors("k", null, [{ path: "p", tensor: t1 }, { path: "p", tensor: t1 }]),
    /duplicate path "p"/,
  );
  t1.dispose();
});

Deno.test("tensor file: every corruption is a clear error naming the file and the field", async () => {
  await withNoLeaks(() => {
    const a = tf.tensor([1, 2, 3, 4], [2, 2]), n = tf.tensor([5, 6], [2], "int32");
    const good = encodeTree("checkpoint", { a, n });
    tf.dispose([a, n]);
    const expectError = (bytes: Uint8Array, pattern: RegExp, kind?: string) => {
      const before = tf.memory().numTensors;
      assert.throws(() => decodeTree(bytes, "runs/x/ck.bin", { kind }), (e: unknown) => {
        assert.ok(e instanceof TensorFileError, String(e));
        assert.equal(e.file, "runs/x/ck.bin");
        assert.match(e.message, /^runs\/x\/ck\.bin: /);
        assert.match(e.message, pattern);
        return true;
      });
      assert.equal(tf.memory().numTensors, before, "no tensors left after a failed decode");
    };
    // Not a tensor file at all, or a truncated prefix.
    expectError(
      new TextEncoder().encode("PK\u0003\u0004 zip file"),
      /bad magic: expected "MLHFTNSR"/,
    );
    expectError(new Uint8Array(0), /truncated: 0 bytes, expected at least 16/);
    expectError(good.subarray(0, 12), /truncated: 12 bytes, expected at least 16/);
    // Unsupported version.
    const v2 = good.slice();
    new DataView(v2.buffer).setUint32(8, 2, true);
    expectError(v2, /unsupported version 2 at byte 8: expected 1/);
    // Header cut off, or not JSON.
    expectError(
      good.subarray(0, 40),
      /truncated: the header needs bytes 16-\d+, but the file has 40/,
    );
    const garbled = good.slice();
    garbled[17] = 0x7b; // '{' inside the JSON: no longer parses
    expectError(garbled, /header: not valid UTF-8 JSON/);
    // Data truncated, or extra bytes.
    expectError(
      good.subarray(0, good.length - 2),
      /truncated: tensor "n" needs bytes \d+-\d+, but the file has/,
    );
    const longer = new Uint8Array(good.length + 5);
    longer.set(good);
    expectError(longer, /5 unexpected bytes after the data section/);
    // Header fields.
    expectError(
      withHeader(
        good,
        (h) => ({
          ...h,
          tensors: [{ ...(h.tensors as object[])[0], length: 12 }, (h.tensors as object[])[1]],
        }),
      ),
      /tensors\[0\] \("a"\)\.length: expected 16 bytes \(shape \[2,2\] of float32\), found 12/,
    );
    expectError(
      withHeader(
        good,
        (h) => ({ ...h, tensors: [{ ...(h.tensors as object[])[0], shape: [2, -1] }] }),
      ),
      /header\.tensors\[0\]\.shape\[1\]: expected non-negative integer, found -1/,
    );
    expectError(
      withHeader(
        good,
        (h) => ({ ...h, tensors: [{ ...(h.tensors as object[])[0], dtype: "float64" }] }),
      ),
      /header\.tensors\[0\]\.dtype: expected "float32" \| "int32", found "float64"/,
    );
    expectError(
      withHeader(
        good,
        (h) => ({
          ...h,
          tensors: [{ ...(h.tensors as object[])[0], offset: 4 }, (h.tensors as object[])[1]],
        }),
      ),
      /tensors\[0\] \("a"\)\.offset: expected a multiple of 8, found 4/,
    );
    expectError(
      withHeader(good, (h) => ({ ...h, kind: 7 })),
      /header\.kind: expected string, found 7/,
    );
    expectError(
      withHeader(good, (h) => ({ ...h, version: 3 })),
      /header field version: expected 1/,
    );
    expectError(
      withHeader(good, (h) => ({ ...h, tree: { $object: [["a", { $tensor: 5 }]] } })),
      /header\.tree\.\$object\[0\]\[1\]\.\$tensor: expected string, found 5/,
    );
    expectError(
      withHeader(good, (h) => ({ ...h, tree: { $object: [["a", { $tensor: "a" }]] } })),
      /1 tensor\(s\) not referenced by the tree: "n"/,
    );
    expectError(
      withHeader(good, (h) => ({ ...h, tree: { $object: [["a", { $tensor: "zz" }]] } })),
      /tensor "zz" is not in the file/,
    );
    expectError(withHeader(good, (h) => ({ ...h, tree: undefined })), /expected a tree skeleton/);
    // Wrong kind.
    expectError(
      good,
      /header field kind: expected "optimizer-state", found "checkpoint"/,
      "optimizer-state",
    );
  });
});

Deno.test("tensor tree: unflattenTree rejects a tensor referenced twice", () => {
  const x = tf.scalar(1);
  assert.throws(
    () => unflattenTree([{ $tensor: "p" }, { $tensor: "p" }], new Map([["p", x]]), "f.bin"),
    /f\.bin: tree: tensor "p" is referenced twice/,
  );
  x.dispose();
});
