import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { JsonValue } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { CacheService, EntityService, EventService, MutexService, PeerService } from "@stategate/api";
import type { StategateClient } from "@stategate/sdk-node";
import { Code, ConnectError, expiresIn } from "@stategate/sdk-node";
import { hasRules, validate } from "../src/services/rules.js";
import type { TestGateway } from "./helpers.js";
import { protocols, startTestGateway, take, unique } from "./helpers.js";

let tg: TestGateway;
before(async () => {
  tg = await startTestGateway();
});
after(async () => {
  await tg.close();
});

const past = timestampFromMs(Date.now() - 60_000);

/** Each bad request, and the field the error must name. */
/** Cases a JSON client cannot even encode: only binary clients can send them. */
const binaryOnly = new Set(["cache expiry past year 9999", "lock expiry past year 9999"]);

function badCalls(c: StategateClient, domain: string): [string, string, () => Promise<unknown>][] {
  const ref = { domain, type: "user", key: "k" };
  return [
    ["empty domain", "domain", () => c.entity.set({ ...ref, domain: "", values: { a: 1 } })],
    ["type with a space", "type", () => c.entity.set({ ...ref, type: "a b", values: { a: 1 } })],
    ["key with a tab", "key", () => c.entity.set({ ...ref, key: "a\tb", values: { a: 1 } })],
    ["key with a control character", "key", () => c.entity.set({ ...ref, key: "a\u0001b", values: { a: 1 } })],
    ["key over 255 characters", "key", () => c.entity.set({ ...ref, key: "k".repeat(256), values: { a: 1 } })],
    ["domain over 128 characters", "domain", () => c.entity.set({ ...ref, domain: "d".repeat(129), values: { a: 1 } })],
    ["Set without values", "values", () => c.entity.set({ ...ref })],
    ["Edit without values", "values", () => c.entity.edit({ ...ref })],
    ["negative expected version", "expected_version", () => c.entity.set({ ...ref, values: {}, expectedVersion: -1n })],
    ["Revert with a non-UUID id", "id", () => c.entity.revert({ ...ref, id: "not-a-uuid" })],
    ["Event Get with a non-UUID id", "id", () => c.event.get({ ...ref, id: "123" })],
    ["limit 0", "limit", () => c.entity.search({ domain, type: "user", limit: 0 })],
    ["negative limit", "limit", () => c.entity.search({ domain, type: "user", limit: -5 })],
    ["limit over the maximum", "limit", () => c.event.search({ domain, type: "user", limit: 1001 })],
    ["negative offset", "offset", () => c.entity.search({ domain, type: "user", offset: -1 })],
    ["unparsable filter", "filter", () => c.entity.search({ domain, type: "user", filter: "{nope" })],
    ["filter that is not an object", "filter", () => c.entity.search({ domain, type: "user", filter: "[1,2]" })],
    ["filter with an object value", "filter", () => c.event.search({ domain, type: "user", filter: '{"a":{"b":1}}' })],
    [
      "filter with an empty path segment",
      "filter",
      () => c.entity.search({ domain, type: "user", filter: '{"a..b":1}' }),
    ],
    [
      "filter path segment starting with a dash (MariaDB cannot address it)",
      "filter",
      () => c.entity.search({ domain, type: "user", filter: '{"a.-b":1}' }),
    ],
    [
      "sort field starting with a dash",
      "sort",
      () => c.event.search({ domain, type: "user", sort: { field: "-n", desc: false } }),
    ],
    [
      "sort field with a quote",
      "sort",
      () => c.entity.search({ domain, type: "user", sort: { field: 'a"b', desc: false } }),
    ],
    ["Search without a type", "type", () => c.entity.search({ domain, type: "" })],
    ["Broadcast without a body", "body", () => c.peer.broadcast({ domain, channel: "c", type: "t" })],
    [
      "Broadcast with an empty channel",
      "channel",
      () => c.peer.broadcast({ domain, channel: "", type: "t", body: {} }),
    ],
    [
      "cache Set without a value",
      "value",
      () => c.cache.set({ domain, key: "k", value: undefined as unknown as JsonValue }),
    ],
    ["cache Set with a past expiry", "exp", () => c.cache.set({ domain, key: "k", value: 1, exp: past })],
    ["Lock without an expiry", "exp", () => c.mutex.lock({ domain, key: "k" })],
    ["Lock with a past expiry", "exp", () => c.mutex.lock({ domain, key: "k", exp: past })],
    ["Unlock without a token", "token", () => c.mutex.unlock({ domain, key: "k", token: "" })],
    [
      "filter with a number JSON cannot hold",
      "filter",
      () => c.entity.search({ domain, type: "user", filter: '{"n":1e400}' }),
    ],
    [
      "filter with too many terms",
      "filter",
      () =>
        c.entity.search({
          domain,
          type: "user",
          filter: JSON.stringify(Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`k${i}`, i]))),
        }),
    ],
    [
      "sort direction without a field",
      "sort",
      () => c.entity.search({ domain, type: "user", sort: { field: "", desc: true } }),
    ],
    ["domain with a glob wildcard", "domain", () => c.entity.set({ ...ref, domain: "a*", values: {} })],
    ["channel with a glob wildcard", "channel", () => c.peer.broadcast({ domain, channel: "c?", type: "t", body: {} })],
    [
      "cache expiry past year 9999",
      "exp",
      () => c.cache.set({ domain, key: "k", value: 1, exp: { seconds: 253_402_300_800n, nanos: 0 } as never }),
    ],
    [
      "lock expiry past year 9999",
      "exp",
      () => c.mutex.lock({ domain, key: "k", exp: { seconds: 9_223_372_036_854_775_807n, nanos: 0 } as never }),
    ],
    ["Event Stream with an empty domain", "domain", () => take(c.event.stream({ domain: "", type: "*" }), 1)],
    [
      "Event Stream resuming inside a group",
      "after_position",
      () => take(c.event.stream({ domain, type: "*", consumerGroup: "g", afterPosition: 0n }), 1),
    ],
    [
      "Peer Stream with a space in the type",
      "type",
      () => take(c.peer.stream({ domain, channel: "*", type: "a b" }), 1),
    ],
  ];
}

for (const { name, options } of protocols.slice(0, 4)) {
  describe(`bad input over ${name}`, () => {
    for (const [label, field] of badCalls(undefined as unknown as StategateClient, "x")) {
      if (options.binary === false && binaryOnly.has(label)) continue;
      it(`${label} is INVALID_ARGUMENT naming ${field}, and writes nothing`, async () => {
        const client = tg.client(options);
        const domain = unique("bad");
        const call = badCalls(client, domain).find(([l]) => l === label);
        assert.ok(call);
        await assert.rejects(call[2](), (err) => {
          const e = ConnectError.from(err);
          assert.equal(Code[e.code], "InvalidArgument", e.message);
          assert.match(e.rawMessage, new RegExp(`^${field}: `), e.rawMessage);
          return true;
        });
        const entities = await client.entity.search({ domain, type: "user" });
        assert.equal(entities.entities.length, 0);
        const events = await client.event.search({ domain, type: "user" });
        assert.equal(events.events.length, 0);
        await assert.rejects(
          client.cache.get({ domain, key: "k" }),
          (e) => ConnectError.from(e).code === Code.NotFound,
        );
        const { token } = await client.mutex.lock({ domain, key: "k", exp: expiresIn(1_000) });
        await client.mutex.unlock({ domain, key: "k", token });
      });
    }
  });
}

describe("malformed requests on the wire", () => {
  const post = (path: string, body: string, contentType = "application/json") =>
    fetch(`${tg.baseUrl}${path}`, { method: "POST", headers: { "content-type": contentType }, body });

  it("broken JSON is invalid_argument, not internal", async () => {
    const res = await post("/stategate.v1.EntityService/Set", "{not json");
    const body = (await res.json()) as { code: string };
    assert.equal(body.code, "invalid_argument");
  });

  it("a wrongly typed field is invalid_argument", async () => {
    const res = await post(
      "/stategate.v1.EntityService/Set",
      JSON.stringify({ domain: 5, type: "t", key: "k", values: {} }),
    );
    const body = (await res.json()) as { code: string };
    assert.equal(body.code, "invalid_argument");
  });

  it("an int64 that is not a number is invalid_argument", async () => {
    const res = await post(
      "/stategate.v1.EntityService/Set",
      '{"domain":"d","type":"t","key":"k","values":{},"expectedVersion":"x"}',
    );
    const body = (await res.json()) as { code: string };
    assert.equal(body.code, "invalid_argument");
  });

  it("garbage protobuf bytes are invalid_argument", async () => {
    const res = await post("/stategate.v1.EntityService/Get", "\xff\xff\xff\xff\xff", "application/proto");
    const body = (await res.json()) as { code: string };
    assert.equal(body.code, "invalid_argument");
  });

  it("an unknown method is unimplemented or not found, and the gateway keeps serving", async () => {
    const res = await post("/stategate.v1.EntityService/Nope", "{}");
    assert.ok([404, 501].includes(res.status), String(res.status));
    const client = tg.client();
    const ref = { domain: unique("alive"), type: "t", key: "k" };
    await client.entity.set({ ...ref, values: { ok: true } });
    assert.deepEqual((await client.entity.get(ref)).entity?.values, { ok: true });
  });

  it("a lone surrogate in values is invalid_argument, not stored", async () => {
    const domain = unique("sur");
    const res = await post(
      "/stategate.v1.EntityService/Set",
      `{"domain":"${domain}","type":"t","key":"k","values":{"a":"\\udc00"}}`,
    );
    const body = (await res.json()) as { code: string; message: string };
    assert.equal(body.code, "invalid_argument");
    assert.match(body.message, /^values: /);
    const client = tg.client();
    await assert.rejects(
      client.entity.get({ domain, type: "t", key: "k" }),
      (e) => ConnectError.from(e).code === Code.NotFound,
    );
  });

  it("event ids are matched whatever their case", async () => {
    const client = tg.client();
    const ref = { domain: unique("case"), type: "t", key: "k" };
    const { event } = await client.entity.set({ ...ref, values: { v: 1 } });
    const upper = (event?.id ?? "").toUpperCase();
    assert.equal((await client.event.get({ ...ref, id: upper })).event?.id, event?.id);
    const reverted = await client.entity.revert({ ...ref, id: upper });
    assert.equal(reverted.event?.version, 2n);
  });

  it("errors carry a request id and no internals", async () => {
    const res = await post(
      "/stategate.v1.EntityService/Get",
      JSON.stringify({ domain: "d", type: "t", key: "missing" }),
    );
    assert.equal(res.status, 404);
    assert.match(res.headers.get("x-request-id") ?? "", /^[0-9a-f-]{36}$/);
    const mine = await fetch(`${tg.baseUrl}/stategate.v1.EntityService/Get`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-request-id": "trace-123" },
      body: JSON.stringify({ domain: "d", type: "t", key: "missing" }),
    });
    assert.equal(mine.headers.get("x-request-id"), "trace-123");
    const text = await mine.text();
    assert.doesNotMatch(text, /SELECT|sqlite|at .*\.js/i);
  });
});

describe("limits", () => {
  it("values nested deeper than 31 levels are INVALID_ARGUMENT, and 31 levels read back over binary", async () => {
    // JSON reaches our rule; binary already stops at protobuf-es's decoding depth.
    const client = tg.client({ protocol: "connect", binary: false });
    const binary = tg.client({ protocol: "grpc" });
    let deep: Record<string, unknown> = { leaf: 1 };
    for (let i = 0; i < 70; i++) deep = { d: deep };
    await assert.rejects(
      client.entity.set({ domain: unique("deep"), type: "t", key: "k", values: deep as never }),
      (e) =>
        ConnectError.from(e).code === Code.InvalidArgument &&
        /^values: must not nest deeper/.test(ConnectError.from(e).rawMessage),
    );
    await assert.rejects(
      client.cache.set({ domain: unique("deep"), key: "k", value: deep as never }),
      (e) =>
        ConnectError.from(e).code === Code.InvalidArgument &&
        /^value: must not nest deeper/.test(ConnectError.from(e).rawMessage),
    );
    await assert.rejects(
      binary.entity.set({ domain: unique("deep"), type: "t", key: "k", values: deep as never }),
      (e) => ConnectError.from(e).code === Code.InvalidArgument,
    );
    let ok: Record<string, unknown> = { leaf: 1 };
    for (let i = 0; i < 30; i++) ok = { d: ok };
    // One level more is refused, as MariaDB would refuse it (its JSON stops at 31 levels).
    await assert.rejects(
      client.entity.set({ domain: unique("deep"), type: "t", key: "k", values: { d: ok } as never }),
      (e) => /^values: must not nest deeper than 31 levels/.test(ConnectError.from(e).rawMessage),
    );
    await assert.rejects(
      client.entity.set({ domain: unique("deep"), type: "t", key: "k", values: { d: [ok.d] } as never }),
      (e) => /^values: must not nest deeper than 31 levels/.test(ConnectError.from(e).rawMessage),
    );
    const ref = { domain: unique("deep"), type: "t", key: "ok" };
    await client.entity.set({ ...ref, values: ok as never });
    assert.deepEqual((await binary.entity.get(ref)).entity?.values, ok, "whatever is accepted can be read over binary");
    const { events } = await binary.event.search({ ...ref });
    assert.equal(events.length, 1);
  });

  it("a request over the size limit is RESOURCE_EXHAUSTED and the gateway keeps serving", async () => {
    const client = tg.client({ protocol: "connect" });
    const ref = { domain: unique("big"), type: "t", key: "k" };
    await assert.rejects(
      client.entity.set({ ...ref, values: { blob: "x".repeat(5 * 1024 * 1024) } }),
      (e) => ConnectError.from(e).code === Code.ResourceExhausted,
    );
    await client.entity.set({ ...ref, values: { blob: "x".repeat(1024 * 1024) } });
    assert.equal((await client.entity.get(ref)).entity?.version, 1n);
  });
});

describe("the one rule table", () => {
  it("has rules for the request of every method of the five services", () => {
    const methods = [EntityService, EventService, PeerService, CacheService, MutexService].flatMap((s) => s.methods);
    // Entity: Set, Edit, Revert, Get, Del, Search; Event: Stream, Search, Get; Peer: Broadcast, Stream;
    // Cache: Set, Get, Del; Mutex: Lock, Unlock. The count keeps the loop below from passing over nothing.
    assert.equal(methods.length, 16);
    const missing = methods.filter((m) => !hasRules(m.input.typeName)).map((m) => `${m.parent.name}.${m.name}`);
    assert.deepEqual(missing, [], "every request is checked before its handler runs");
  });

  it("fails closed on a request type it has no rules for", () => {
    for (const typeName of ["stategate.v1.EntityServiceFutureRequest", "toString", "__proto__"]) {
      assert.equal(hasRules(typeName), false, typeName);
      assert.throws(
        () => validate(typeName, {}),
        (e) => ConnectError.from(e).code === Code.Internal && /no input rules/.test(ConnectError.from(e).rawMessage),
        typeName,
      );
    }
  });
});
