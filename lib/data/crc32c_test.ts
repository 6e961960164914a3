import { assert, fc } from "../../tests/_util/deps.ts";
import { crc32c, maskCrc, maskedCrc32c, unmaskCrc } from "./crc32c.ts";

const ascii = (s: string) => new TextEncoder().encode(s);

Deno.test("crc32c: known vectors (check value, RFC 3720 B.4)", () => {
  assert.equal(crc32c(ascii("123456789")), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(0)), 0);
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
  assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e);
  assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i)), 0x113fdb5c);
  assert.equal(crc32c(ascii("a")), 0xc1d04330);
});

Deno.test("crc32c: chunked continuation equals one pass; mask is TFRecord's and invertible", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), fc.nat(64), (bytes, cut) => {
      const at = Math.min(cut, bytes.length);
      assert.equal(crc32c(bytes.subarray(at), crc32c(bytes.subarray(0, at))), crc32c(bytes));
      const crc = crc32c(bytes);
      assert.equal(unmaskCrc(maskCrc(crc)), crc);
      assert.equal(maskedCrc32c(bytes), (((crc >>> 15) | (crc << 17)) + 0xa282ead8) >>> 0);
    }),
    { numRuns: 200 },
  );
  // The mask of 0 is the delta itself; a rotation by 17 moves bit 0 to bit 17.
  assert.equal(maskCrc(0), 0xa282ead8);
  assert.equal(maskCrc(1), (0x20000 + 0xa282ead8) >>> 0);
});

Deno.test("crc32c: the table-driven CRC equals a bit-by-bit reference", () => {
  const reference = (bytes: Uint8Array) => {
    let c = 0xffffffff;
    for (const b of bytes) {
      c ^= b;
      for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    }
    return (c ^ 0xffffffff) >>> 0;
  };
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
      assert.equal(crc32c(bytes), reference(bytes));
    }),
    { numRuns: 200 },
  );
});
