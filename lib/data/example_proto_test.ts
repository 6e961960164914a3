import { assert, fc } from "../../tests/_util/deps.ts";
import {
  bytesFeature,
  decodeExample,
  encodeExample,
  type Feature,
  floatFeature,
  int64Feature,
  ProtoError,
} from "./example_proto.ts";

// A tf.Example written byte by byte from the protobuf wire format (independent of the encoder):
// "a": int64 [1, 300] unpacked; "b": float [1.5] packed; "c": bytes ["hi"]; "d": int64 [-1]
// packed; and an unknown field 2 on the Example.
const HAND_WRITTEN = Uint8Array.from([
  0x0a,
  0x3f,
  0x0a,
  0x0c,
  0x0a,
  0x01,
  0x61,
  0x12,
  0x07,
  0x1a,
  0x05,
  0x08,
  0x01,
  0x08,
  0xac,
  0x02,
  0x0a,
  0x0d,
  0x0a,
  0x01,
  0x62,
  0x12,
  0x08,
  0x12,
  0x06,
  0x0a,
  0x04,
  0x00,
  0x00,
  0xc0,
  0x3f,
  0x0a,
  0x0b,
  0x0a,
  0x01,
  0x63,
  0x12,
  0x06,
  0x0a,
  0x04,
  0x0a,
  0x02,
  0x68,
  0x69,
  0x0a,
  0x13,
  0x0a,
  0x01,
  0x64,
  0x12,
  0x0e,
  0x1a,
  0x0c,
  0x0a,
  0x0a,
  0xff,
  0xff,
  0xff,
  0xff,
  0xff,
  0xff,
  0xff,
  0xff,
  0xff,
  0x01,
  0x10,
  0x05,
]);

Deno.test("example proto: decodes a hand-written tf.Example (packed, unpacked, unknown fields)", () => {
  const f = decodeExample(HAND_WRITTEN);
  assert.deepEqual([...f.keys()], ["a", "b", "c", "d"]);
  assert.deepEqual(f.get("a"), { kind: "int64", value: BigInt64Array.of(1n, 300n) });
  assert.deepEqual(f.get("b"), { kind: "float", value: Float32Array.of(1.5) });
  const c = f.get("c")!;
  assert.equal(c.kind, "bytes");
  assert.deepEqual(c.kind === "bytes" && new TextDecoder().decode(c.value[0]), "hi");
  assert.deepEqual(f.get("d"), { kind: "int64", value: BigInt64Array.of(-1n) });
  // Unpacked floats (wire type 5) and an empty Feature.
  const unpacked = Uint8Array.from([
    0x0a,
    0x15,
    0x0a,
    0x0c,
    0x0a,
    0x01,
    0x66,
    0x12,
    0x07,
    0x12,
    0x05,
    0x0d,
    0x00,
    0x00,
    0x20,
    0xc0,
    0x0a,
    0x05,
    0x0a,
    0x01,
    0x65,
    0x12,
    0x00,
  ]);
  const g = decodeExample(unpacked);
  assert.deepEqual(g.get("f"), { kind: "float", value: Float32Array.of(-2.5) });
  assert.deepEqual(g.get("e"), { kind: "none" });
  assert.equal(decodeExample(new Uint8Array(0)).size, 0);
});

Deno.test("example proto: encode then decode is the identity", () => {
  const feature: fc.Arbitrary<Feature> = fc.oneof(
    fc.array(fc.uint8Array({ maxLength: 20 }), { maxLength: 3 }).map((v) => bytesFeature(...v)),
    fc.array(fc.float({ noNaN: true }), { maxLength: 4 }).map((v) => floatFeature(...v)),
    fc.array(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), { maxLength: 4 })
      .map((v) => int64Feature(...v)),
  );
  fc.assert(
    fc.property(
      fc.uniqueArray(fc.tuple(fc.string(), feature), { selector: ([k]) => k, maxLength: 5 }),
      (entries) => {
        const decoded = decodeExample(encodeExample(entries));
        assert.equal(decoded.size, entries.length);
        for (const [k, v] of entries) {
          const got = decoded.get(k)!;
          assert.equal(got.kind, v.kind);
          if (v.kind === "bytes" && got.kind === "bytes") {
            assert.deepEqual(got.value.map((b) => [...b]), v.value.map((b) => [...b]));
          } else assert.deepEqual(got, v);
        }
      },
    ),
    { numRuns: 100 },
  );
});

Deno.test("example proto: malformed bytes are a ProtoError with the offset", () => {
  const err = (bytes: Uint8Array, re: RegExp) =>
    assert.throws(() => decodeExample(bytes), (e: unknown) => {
      assert.ok(e instanceof ProtoError, `expected a ProtoError, got ${e}`);
      assert.match(e.message, re);
      return true;
    });
  err(HAND_WRITTEN.subarray(0, 30), /length 63 runs past the end of the message \(at byte 1 /);
  err(Uint8Array.of(0x13), /unsupported wire type 3 \(at byte 0 /);
  err(Uint8Array.of(0x0b), /Example field 1 with wire type 3/);
  err(Uint8Array.of(0x10, 0x80), /truncated varint \(at byte 1 /);
  err(Uint8Array.of(0x11, 1, 2), /truncated fixed-width field/);
  err(Uint8Array.of(0x10, ...new Array(10).fill(0x80), 0x01), /varint longer than 10 bytes/);
  err(Uint8Array.of(0x00), /field number 0/);
  err(Uint8Array.of(0x0d, 0, 0, 0, 0), /Example field 1 with wire type 5/);
});
