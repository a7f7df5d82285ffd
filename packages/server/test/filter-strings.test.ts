import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError } from "@stategate/sdk-node";
import type { TestGateway } from "./helpers.js";
import { dropPostgresTables, sharedBackendEnv, startTestGateway, unique } from "./helpers.js";
import { rest } from "./rest-helpers.js";

/**
 * A search filter is bad input when one of its strings is one no backend could
 * store the same (NUL, a lone surrogate): INVALID_ARGUMENT naming `filter`, on
 * every backend and door. PostgreSQL used to answer INTERNAL (its JSON refuses
 * both) where SQLite found nothing.
 */

const tag = `fstr${Math.random().toString(36).slice(2, 10)}`;

/** Filters (as the JSON text a client sends) whose strings no backend stores the same. */
const badFilters: [label: string, filter: string][] = [
  ["a NUL in a value", '{"a":"\\u0000"}'],
  ["a lone high surrogate in a value", '{"a":"\\ud800"}'],
  ["a lone low surrogate in a value", '{"a":"x\\udc00"}'],
  ["a NUL in a path", '{"a\\u0000b":1}'],
  ["a lone surrogate in a path", '{"a.\\ud800":1}'],
];

const gateways: { name: string; tg?: TestGateway }[] = [{ name: "SQLite" }, { name: "PostgreSQL" }];
before(async () => {
  (gateways[0] as { tg?: TestGateway }).tg = await startTestGateway();
  (gateways[1] as { tg?: TestGateway }).tg = await startTestGateway(
    sharedBackendEnv(tag, { storage: "postgres", cache: "memory", channel: "memory" }),
  );
});
after(async () => {
  await Promise.all(gateways.map((g) => g.tg?.close()));
  await dropPostgresTables(tag);
});

for (const backend of gateways) {
  describe(`search filters with strings no backend can store, on ${backend.name}`, () => {
    for (const [label, filter] of badFilters) {
      it(`${label} is INVALID_ARGUMENT naming filter over gRPC, for entities and events`, async () => {
        const client = (backend.tg as TestGateway).client({ protocol: "grpc" });
        const domain = unique("fstr");
        await client.entity.set({ domain, type: "t", key: "k", values: { a: "x" } });
        for (const search of [
          () => client.entity.search({ domain, type: "t", filter }),
          () => client.event.search({ domain, type: "t", filter }),
        ]) {
          await assert.rejects(search(), (err) => {
            const e = ConnectError.from(err);
            assert.equal(Code[e.code], "InvalidArgument", e.rawMessage);
            assert.match(e.rawMessage, /^filter: /);
            return true;
          });
        }
      });

      it(`${label} is 400 invalid_argument naming filter over REST, for entities and events`, async () => {
        const { baseUrl } = backend.tg as TestGateway;
        const domain = unique("fstr");
        for (const route of ["/api/entity/search", "/api/events/search"]) {
          const { status, json } = await rest(
            baseUrl,
            "GET",
            `${route}?domain=${domain}&type=t&filter=${encodeURIComponent(filter)}`,
          );
          assert.equal(status, 400, JSON.stringify(json));
          assert.equal(json.code, "invalid_argument");
          assert.match(json.message, /^filter: /);
        }
      });
    }

    it("a NUL in a sort field is INVALID_ARGUMENT naming sort over gRPC and REST", async () => {
      const tg = backend.tg as TestGateway;
      const domain = unique("fstr");
      await assert.rejects(
        tg.client({ protocol: "grpc" }).entity.search({ domain, type: "t", sort: { field: "a\u0000", desc: false } }),
        (err) =>
          ConnectError.from(err).code === Code.InvalidArgument && /^sort: /.test(ConnectError.from(err).rawMessage),
      );
      const { status, json } = await rest(
        tg.baseUrl,
        "GET",
        `/api/entity/search?domain=${domain}&type=t&sort.field=a%00`,
      );
      assert.equal(status, 400, JSON.stringify(json));
      assert.match(json.message, /^sort: /);
    });

    it("ordinary strings still find what they match", async () => {
      const tg = backend.tg as TestGateway;
      const client = tg.client({ protocol: "grpc" });
      const domain = unique("fstr");
      await client.entity.set({ domain, type: "t", key: "k", values: { a: "\u{1F600}" } });
      const { entities } = await client.entity.search({ domain, type: "t", filter: '{"a":"\\ud83d\\ude00"}' });
      assert.deepEqual(
        entities.map((e) => e.key),
        ["k"],
      );
    });
  });
}

describe("the dot path rule's message", () => {
  it("says which quotes a path may not hold: a single quote is accepted", async () => {
    const tg = gateways[0]?.tg as TestGateway;
    const client = tg.client({ protocol: "grpc" });
    const domain = unique("fstr");
    await client.entity.set({ domain, type: "t", key: "k", values: { "it's": 1 } });
    const { entities } = await client.entity.search({ domain, type: "t", filter: '{"it\'s":1}' });
    assert.equal(entities.length, 1);
    await assert.rejects(client.entity.search({ domain, type: "t", sort: { field: 'a"b', desc: false } }), (err) => {
      const e = ConnectError.from(err);
      assert.equal(e.code, Code.InvalidArgument);
      assert.match(e.rawMessage, /without double quotes, backslashes or control characters/);
      return true;
    });
  });
});
