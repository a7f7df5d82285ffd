import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { JsonObject, JsonValue } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@stategate/sdk-node";
import type { TestGateway } from "./helpers.js";
import { protocols, startTestGateway, unique } from "./helpers.js";

/**
 * The SDK turns plain JS values into JSON the same way whatever the protocol
 * and encoding: as JSON.stringify does for undefined (an object member is left
 * out, an array element becomes null), and anything JSON cannot hold (a lone
 * surrogate, NaN, Infinity, a function, a symbol, a bigint) is refused with
 * INVALID_ARGUMENT naming where it is, before anything is sent.
 */

let tg: TestGateway;
before(async () => {
  tg = await startTestGateway();
});
after(async () => {
  await tg.close();
});

/** Values JSON cannot hold, the path the error must name, and what it must say. */
const unsendable: [label: string, values: Record<string, unknown>, path: string, reason: RegExp][] = [
  ["a lone high surrogate", { name: "a\ud800" }, "values.name", /unpaired UTF-16 surrogate/],
  ["a lone low surrogate in an array", { tags: ["ok", "\udc00"] }, "values.tags[1]", /unpaired UTF-16 surrogate/],
  ["a lone surrogate in a key", { nested: { "k\ud800": 1 } }, "values.nested", /unpaired UTF-16 surrogate/],
  ["NaN", { n: Number.NaN }, "values.n", /NaN/],
  ["Infinity", { deep: { list: [{ n: Number.POSITIVE_INFINITY }] } }, "values.deep.list[0].n", /Infinity/],
  ["a function", { f: () => 1 }, "values.f", /function/],
  ["a symbol", { s: Symbol("s") }, "values.s", /symbol/],
  ["a bigint", { b: 1n }, "values.b", /bigint/],
  ["a key that is not an identifier", { "a b": [Number.NaN] }, 'values["a b"][0]', /NaN/],
];

for (const { name, options } of protocols) {
  describe(`plain JS values over ${name}`, () => {
    it("undefined follows JSON.stringify: an object member is left out, an array element becomes null", async () => {
      const client = tg.client(options);
      const ref = { domain: unique("sdkjson"), type: "t", key: "k" };
      const values = { keep: 1, gone: undefined, list: [1, undefined, 2], nested: { gone: undefined } };
      await client.entity.set({ ...ref, values: values as unknown as JsonObject });
      assert.deepEqual((await client.entity.get(ref)).entity?.values, { keep: 1, list: [1, null, 2], nested: {} });

      await client.cache.set({ domain: ref.domain, key: "c", value: [undefined, { gone: undefined }] as never });
      assert.deepEqual((await client.cache.get({ domain: ref.domain, key: "c" })).value, [null, {}]);
    });

    it("a value with toJSON is sent as JSON.stringify would send it", async () => {
      const client = tg.client(options);
      const ref = { domain: unique("sdkjson"), type: "t", key: "k" };
      await client.entity.set({ ...ref, values: { at: new Date(0) } as unknown as JsonObject });
      assert.deepEqual((await client.entity.get(ref)).entity?.values, { at: "1970-01-01T00:00:00.000Z" });
    });

    for (const [label, values, path, reason] of unsendable) {
      it(`${label} is INVALID_ARGUMENT naming ${path}, and nothing is written`, async () => {
        const client = tg.client(options);
        const ref = { domain: unique("sdkjson"), type: "t", key: "k" };
        const refused = (field: string) => (err: unknown) => {
          const e = ConnectError.from(err);
          assert.equal(Code[e.code], "InvalidArgument", e.rawMessage);
          assert.ok(e.rawMessage.startsWith(`${field}: `), e.rawMessage);
          assert.match(e.rawMessage, reason);
          return true;
        };
        await assert.rejects(client.entity.set({ ...ref, values: values as JsonObject }), refused(path));
        await assert.rejects(client.entity.edit({ ...ref, values: values as JsonObject }), refused(path));
        const body = path.replace(/^values/, "body");
        await assert.rejects(
          client.peer.broadcast({ domain: ref.domain, channel: "c", type: "t", body: values as JsonObject }),
          refused(body),
        );
        const value = path.replace(/^values/, "value");
        await assert.rejects(
          client.cache.set({ domain: ref.domain, key: "c", value: values as JsonValue }),
          refused(value),
        );
        await assert.rejects(client.entity.get(ref), (e) => ConnectError.from(e).code === Code.NotFound);
        await assert.rejects(
          client.cache.get({ domain: ref.domain, key: "c" }),
          (e) => ConnectError.from(e).code === Code.NotFound,
        );
      });
    }
  });
}
