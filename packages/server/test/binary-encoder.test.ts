import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { createBinaryEncoder, EventSchema } from "@stategate/api";
import { randomInit, rng, schemas } from "./random-messages.js";

/**
 * createBinaryEncoder must write exactly what protobuf-es's toBinary writes,
 * for every message of the API: random messages of every type, with the
 * values that trip encoders up (empty and long strings, non-ASCII text and
 * unpaired surrogates, negative and extreme integers, -0, NaN and infinities,
 * Structs holding every JSON kind, deep nesting, lengths past one varint
 * byte), compared byte for byte.
 */

const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

describe("createBinaryEncoder", () => {
  it("covers every message type of the API", () => {
    assert.ok(schemas.length > 40, `${schemas.length} message types`);
    assert.ok(schemas.some((s) => s.typeName === "stategate.v1.Event"));
  });

  it("writes the bytes toBinary writes for 300 random messages of every type", () => {
    let checked = 0;
    for (const schema of schemas) {
      const encode = createBinaryEncoder(schema);
      for (let i = 0; i < 300; i++) {
        const seed = (checked + 1) * 2654435761;
        const message = create(schema, randomInit(rng(seed), schema, 0) as never);
        const expected = toBinary(schema, message);
        const actual = encode(message);
        assert.ok(same(actual, expected), `${schema.typeName}, seed ${seed}: ${expected.length} bytes expected`);
        checked++;
      }
    }
    assert.equal(checked, schemas.length * 300);
  });

  it("writes large messages (lengths of several varint bytes, a buffer that grows)", () => {
    const encode = createBinaryEncoder(EventSchema);
    for (const n of [100, 5_000, 50_000]) {
      const values = {
        items: Array.from({ length: n }, (_, i) => ({ i, text: "é".repeat(i % 9), ok: i % 2 === 0, none: null })),
      };
      const event = create(EventSchema, { id: "e", entity: { domain: "d", type: "t", key: "k", values }, version: 1n });
      const bytes = encode(event);
      assert.ok(same(bytes, toBinary(EventSchema, event)), `${n} items`);
      assert.deepEqual(fromBinary(EventSchema, bytes).entity?.values, values);
    }
  });

  it("hands values of the wrong type to toBinary, which encodes or refuses them as it always has", () => {
    const encode = createBinaryEncoder(EventSchema);
    // toBinary coerces some mistakes and refuses others; the encoder does the same by delegating.
    const coerced = { ...create(EventSchema, { id: "x" }), method: 42 as unknown as string };
    assert.ok(same(encode(coerced), toBinary(EventSchema, coerced)));
    const outOfRange = { ...create(EventSchema, { id: "x" }), version: 2n ** 64n };
    assert.throws(() => toBinary(EventSchema, outOfRange));
    assert.throws(() => encode(outOfRange));
    // A message that failed leaves nothing behind for the next one.
    const ok = create(EventSchema, { id: "after", version: 7n });
    assert.ok(same(encode(ok), toBinary(EventSchema, ok)));
  });
});
