import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { DescMessage } from "@bufbuild/protobuf";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  createBinaryDecoder,
  EntityServiceGetResponseSchema,
  EntityServiceSetRequestSchema,
  EventSchema,
  EventServiceSearchResponseSchema,
  keepByteOrderMarks,
} from "@stategate/api";
import type { Rng } from "./random-messages.js";
import { randomInit, rng, schemas } from "./random-messages.js";

/**
 * createBinaryDecoder must give what protobuf-es's fromBinary gives, or
 * throw what it throws, for any input: random messages of every API type,
 * the same bytes mutated (flipped, cut, grown, shuffled), and hand-made
 * inputs it leaves to fromBinary. On the messages the gateway and the SDKs
 * really exchange it must decode by itself, not fall back.
 */

/** What decoding `bytes` gives: the message, or the error's message. */
function outcome(decode: (bytes: Uint8Array) => unknown, bytes: Uint8Array): { ok: unknown } | { error: string } {
  try {
    return { ok: decode(bytes) };
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) };
  }
}

function mutate(r: Rng, bytes: Uint8Array): Uint8Array {
  const out = [...bytes];
  const edits = 1 + r.int(3);
  for (let e = 0; e < edits; e++) {
    const at = out.length === 0 ? 0 : r.int(out.length);
    switch (r.int(5)) {
      case 0:
        if (out.length) out[at] = (out[at] as number) ^ (1 << r.int(8));
        break;
      case 1:
        out.splice(at, 0, r.int(256));
        break;
      case 2:
        out.splice(at, 1 + r.int(4));
        break;
      case 3:
        out.length = at;
        break;
      default:
        out.splice(at, 0, ...out.slice(r.int(out.length + 1)).slice(0, 1 + r.int(8)));
    }
  }
  return new Uint8Array(out);
}

// As the gateway runs protobuf-es: a leading U+FEFF stays part of its string.
keepByteOrderMarks();

describe("createBinaryDecoder", () => {
  it("keeps a leading U+FEFF in strings and map keys, as fromBinary does in the gateway", () => {
    const bytes = toBinary(
      EntityServiceSetRequestSchema,
      create(EntityServiceSetRequestSchema, {
        domain: "d",
        type: "t",
        key: "\ufeffk",
        values: { "\ufeffa": "\ufeffx" },
      }),
    );
    const decoded = createBinaryDecoder(EntityServiceSetRequestSchema)(bytes);
    assert.deepEqual([decoded.key, decoded.values], ["\ufeffk", { "\ufeffa": "\ufeffx" }]);
    assert.deepStrictEqual(decoded, fromBinary(EntityServiceSetRequestSchema, bytes));
  });

  it("gives what fromBinary gives for 300 random messages of every type, and for each of them mutated", () => {
    let compared = 0;
    for (const schema of schemas) {
      const decode = createBinaryDecoder(schema);
      for (let i = 0; i < 300; i++) {
        const seed = (compared + 7) * 2246822519;
        const r = rng(seed);
        const bytes = toBinary(schema, create(schema, randomInit(r, schema, 0) as never));
        assert.deepStrictEqual(decode(bytes), fromBinary(schema, bytes), `${schema.typeName}, seed ${seed}`);
        const mutated = mutate(r, bytes);
        assert.deepStrictEqual(
          outcome(decode, mutated),
          outcome((b) => fromBinary(schema, b), mutated),
          `${schema.typeName}, seed ${seed}, mutated`,
        );
        compared++;
      }
    }
    assert.equal(compared, schemas.length * 300);
  });

  it("decodes the messages of real calls by itself", () => {
    const values = {
      name: "Ada Lovelace",
      email: "ada@example.com",
      age: 36,
      active: true,
      score: -1.5,
      tags: ["a", "b", "é"],
      address: { city: "Lyon", zip: "69001", geo: [45.76, 4.84] },
      note: null,
      empty: {},
    };
    const entity = { domain: "d", type: "user", key: "ada", values, version: 3n };
    const event = create(EventSchema, {
      id: "6f1c7a3e-2b5d-4c8e-9a1f-0123456789ab",
      entity,
      method: "/stategate.v1.EntityService/Set",
      claims: { sub: "user-1", roles: ["admin"] },
      time: 1796379204204000000n,
      version: 3n,
      position: 12345n,
      operation: 1,
    });
    const cases: [DescMessage, unknown][] = [
      [
        EntityServiceSetRequestSchema,
        create(EntityServiceSetRequestSchema, { domain: "d", type: "user", key: "ada", values }),
      ],
      [EntityServiceGetResponseSchema, create(EntityServiceGetResponseSchema, { entity })],
      [EventSchema, event],
      [EventServiceSearchResponseSchema, create(EventServiceSearchResponseSchema, { events: [event, event] })],
    ];
    for (const [schema, message] of cases) {
      let fellBack = 0;
      const decode = createBinaryDecoder(schema, { onFallback: () => fellBack++ });
      const bytes = toBinary(schema, message as never);
      assert.deepStrictEqual(decode(bytes), fromBinary(schema, bytes), schema.typeName);
      assert.equal(fellBack, 0, `${schema.typeName} decoded without protobuf-es`);
    }
  });

  it("leaves to fromBinary what only it should judge, and ends up with its answer", () => {
    const decode = createBinaryDecoder(EventSchema);
    const inputs: [string, number[]][] = [
      ["an unknown field", [0xf8, 0x01, 0x05, 0x0a, 0x01, 0x78]],
      ["a wire type that does not match", [0x0d, 0, 0, 0, 0]],
      ["a message field twice (merged)", [0x12, 0x02, 0x0a, 0x00, 0x12, 0x02, 0x12, 0x00]],
      ["invalid UTF-8", [0x0a, 0x02, 0xc3, 0x28]],
      ["a length past the end", [0x0a, 0x05, 0x61]],
      ["a negative version", [0x30, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]],
      ["a Struct key __proto__", [0x22, 0x0f, 0x0a, 0x0d, 0x0a, 0x09, ...Buffer.from("__proto__"), 0x12, 0x00]],
      ["a group", [0x0b, 0x0c]],
      ["field number 0", [0x02, 0x00]],
    ];
    for (const [name, bytes] of inputs) {
      const input = new Uint8Array(bytes);
      assert.deepStrictEqual(
        outcome(decode, input),
        outcome((b) => fromBinary(EventSchema, b), input),
        name,
      );
    }
  });
});
