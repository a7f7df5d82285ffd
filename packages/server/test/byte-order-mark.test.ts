import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { TestGateway } from "./helpers.js";
import { startTestGateway, unique } from "./helpers.js";

/**
 * A string that starts with U+FEFF (a byte order mark, or a zero-width
 * no-break space) is data: it comes back as it was sent, through every door.
 * The TextDecoder protobuf-es reads binary with drops it by default.
 */

let tg: TestGateway;
before(async () => {
  tg = await startTestGateway();
});
after(async () => {
  await tg.close();
});

describe("a leading U+FEFF in a value", () => {
  const values = { text: "\ufeffX", "\ufeffkey": "y", list: ["\ufeff"] };
  for (const [door, options] of [
    ["gRPC", { protocol: "grpc" }],
    ["Connect binary", { protocol: "connect", binary: true }],
    ["Connect JSON", { protocol: "connect", binary: false }],
    ["gRPC-Web", { protocol: "grpc-web", binary: true }],
  ] as const) {
    it(`is kept, written over ${door} and read over gRPC`, async () => {
      const ref = { domain: unique("bom"), type: "t", key: "k" };
      await tg.client(options).entity.set({ ...ref, values });
      const read = await tg.client({ protocol: "grpc" }).entity.get(ref);
      assert.deepEqual(read.entity?.values, values);
    });
  }
});
