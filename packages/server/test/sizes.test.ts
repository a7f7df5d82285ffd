import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { JsonObject } from "@bufbuild/protobuf";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient as createConnectClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import {
  EntitySchema,
  EntityService,
  EntityServiceGetResponseSchema,
  EventOperation,
  EventSchema,
} from "@stategate/api";
import type { Storage } from "@stategate/providers";
import { createStorage } from "@stategate/providers";
import pino from "pino";
import { loadConfig } from "../src/config.js";
import type { Gateway } from "../src/gateway.js";
import { startGateway } from "../src/gateway.js";
import { entitySize, eventSize } from "../src/services/size.js";
import type { TestGateway } from "./helpers.js";
import { jsonLineSink, startTestGateway, unique } from "./helpers.js";
import { rest } from "./rest-helpers.js";

// Small limits, so a test needs kilobytes, not the megabytes a user would hit.
const MAX_REQUEST = 4096;
const MAX_RESPONSE = 16384;

/** A rejection that is RESOURCE_EXHAUSTED with a message naming `variable` and its value. */
const exhausted = (variable: string, bytes: number) => (err: unknown) => {
  assert.ok(err instanceof ConnectError, String(err));
  assert.equal(err.code, Code.ResourceExhausted, err.message);
  assert.ok(err.rawMessage.includes(`${variable} (${bytes} bytes)`), err.rawMessage);
  return true;
};

/** A Connect JSON call with plain fetch: status and body. */
async function connectJson(baseUrl: string, path: string, body: unknown) {
  const res = await fetch(`${baseUrl}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, headers: res.headers, json: (await res.json()) as Record<string, any> };
}

describe("entity size: every mutation keeps the entity within STATEGATE_MAX_REQUEST_BYTES", () => {
  let tg: TestGateway;
  before(async () => {
    tg = await startTestGateway({
      STATEGATE_MAX_REQUEST_BYTES: String(MAX_REQUEST),
      STATEGATE_MAX_RESPONSE_BYTES: String(MAX_RESPONSE),
    });
  });
  after(async () => {
    await tg.close();
  });

  it("Edits that each fit cannot merge into an entity past the limit: RESOURCE_EXHAUSTED, nothing written", async () => {
    const client = tg.client();
    const domain = unique("grow");
    const ref = { domain, type: "doc", key: "k" };
    await client.entity.set({ ...ref, values: { a: "x".repeat(1500) } });
    await client.entity.edit({ ...ref, values: { b: "x".repeat(1500) } });
    // Each PATCH is 1.5 KB, well under the request limit; the merged entity would be 4.5 KB.
    await assert.rejects(
      client.entity.edit({ ...ref, values: { c: "x".repeat(1500) } }),
      exhausted("STATEGATE_MAX_REQUEST_BYTES", MAX_REQUEST),
    );
    const patch = await rest(tg.baseUrl, "PATCH", `/api/entity/ref/${domain}/doc/k`, {
      values: { c: "x".repeat(1500) },
    });
    assert.equal(patch.status, 429, JSON.stringify(patch.json));
    assert.equal(patch.json.code, "resource_exhausted");
    assert.match(patch.json.message, /STATEGATE_MAX_REQUEST_BYTES \(4096 bytes\)/);
    const { entity } = await client.entity.get(ref);
    assert.equal(entity?.version, 2n, "no version was added");
    assert.deepEqual(Object.keys(entity?.values ?? {}).sort(), ["a", "b"]);
    const { events } = await client.event.search({ domain, type: "doc", key: "k" });
    assert.equal(events.length, 2, "no event was recorded");
    client.close();
  });

  it("measures the binary encoding on every door: a JSON body small as text but large as protobuf is refused", async () => {
    const domain = unique("dense");
    // 600 zeros are 1.2 KB of JSON but 6.6 KB as a google.protobuf.ListValue.
    const values = { zeros: Array.from({ length: 600 }, () => 0) };
    assert.ok(JSON.stringify(values).length < MAX_REQUEST);
    const res = await connectJson(tg.baseUrl, "/stategate.v1.EntityService/Set", {
      domain,
      type: "doc",
      key: "k",
      values,
    });
    assert.equal(res.status, 429, JSON.stringify(res.json));
    assert.equal(res.json.code, "resource_exhausted");
    assert.match(res.json.message, /STATEGATE_MAX_REQUEST_BYTES/);
    const get = await rest(tg.baseUrl, "GET", `/api/entity/ref/${domain}/doc/k`);
    assert.equal(get.status, 404, "nothing was written");
  });

  it("an entity exactly at the limit is written, and a gRPC client receiving at most that many bytes reads it back", async () => {
    const domain = unique("edge");
    const ref = { domain, type: "doc", key: "k" };
    /** Bytes of the Get response for a `pad` of n characters, by protobuf-es itself. */
    const getResponseBytes = (n: number) =>
      toBinary(
        EntityServiceGetResponseSchema,
        create(EntityServiceGetResponseSchema, {
          entity: { ...ref, values: { pad: "x".repeat(n) }, version: 1n },
        }),
      ).length;
    let n = MAX_REQUEST - 100;
    while (getResponseBytes(n + 1) <= MAX_REQUEST) n++;
    assert.equal(getResponseBytes(n), MAX_REQUEST);
    const client = tg.client();
    await assert.rejects(
      client.entity.set({ ...ref, values: { pad: "x".repeat(n + 1) } }),
      exhausted("STATEGATE_MAX_REQUEST_BYTES", MAX_REQUEST),
      "one byte more is refused",
    );
    await client.entity.set({ ...ref, values: { pad: "x".repeat(n) } });
    const strict = createConnectClient(
      EntityService,
      createGrpcTransport({ baseUrl: tg.baseUrl, readMaxBytes: MAX_REQUEST }),
    );
    const { entity } = await strict.get(ref);
    assert.equal((entity?.values?.pad as string).length, n);
    client.close();
  });

  describe("Revert", () => {
    let storage: Storage;
    before(async () => {
      // A second handle on the gateway's own SQLite file: it writes what a gateway with a larger limit once wrote.
      storage = await createStorage({ name: "sqlite" }, { dataDir: tg.dataDir });
    });
    after(async () => {
      await storage.close();
    });

    it("cannot restore a state larger than the limit (written when the limit was higher)", async () => {
      const domain = unique("revert");
      const ref = { domain, type: "doc", key: "k" };
      const big = await storage.commit({
        expectedVersion: 0,
        state: { big: "x".repeat(6000) },
        event: {
          ...ref,
          id: randomUUID(),
          values: { big: "x".repeat(6000) },
          version: 1,
          operation: "set",
          method: "/stategate.v1.EntityService/Set",
          claims: {},
          time: BigInt(Date.now()) * 1_000_000n,
        },
      });
      await storage.markPublished([big.position]);
      const client = tg.client();
      await client.entity.set({ ...ref, values: { small: true } });
      await assert.rejects(
        client.entity.revert({ ...ref, id: big.id }),
        exhausted("STATEGATE_MAX_REQUEST_BYTES", MAX_REQUEST),
      );
      const { entity } = await client.entity.get(ref);
      assert.equal(entity?.version, 2n);
      assert.deepEqual(entity?.values, { small: true });
      client.close();
    });
  });
});

describe("response size: a search page stays within STATEGATE_MAX_RESPONSE_BYTES", () => {
  let tg: TestGateway;
  const domain = unique("page");
  before(async () => {
    tg = await startTestGateway({
      STATEGATE_MAX_REQUEST_BYTES: String(MAX_REQUEST),
      STATEGATE_MAX_RESPONSE_BYTES: String(MAX_RESPONSE),
    });
    const client = tg.client();
    // Ten entities of about 3 KB: each fits a request, all ten do not fit one response of 16 KB.
    for (let i = 0; i < 10; i++) {
      await client.entity.set({ domain, type: "doc", key: `k${i}`, values: { body: "x".repeat(3000) } });
    }
    client.close();
  });
  after(async () => {
    await tg.close();
  });

  it("entity Search refuses a page past the cap with RESOURCE_EXHAUSTED saying how many fit", async () => {
    const client = tg.client();
    await assert.rejects(client.entity.search({ domain, type: "doc", limit: 10 }), (err: unknown) => {
      exhausted("STATEGATE_MAX_RESPONSE_BYTES", MAX_RESPONSE)(err);
      assert.match((err as ConnectError).rawMessage, /at most 5\b/);
      return true;
    });
    const { entities } = await client.entity.search({ domain, type: "doc", limit: 5 });
    assert.equal(entities.length, 5, "the page it suggests is served");
    client.close();
  });

  it("event Search does the same", async () => {
    const client = tg.client();
    await assert.rejects(
      client.event.search({ domain, type: "doc", limit: 10 }),
      exhausted("STATEGATE_MAX_RESPONSE_BYTES", MAX_RESPONSE),
    );
    const { events } = await client.event.search({ domain, type: "doc", limit: 4 });
    assert.equal(events.length, 4);
    client.close();
  });

  it("REST answers 429, Connect JSON resource_exhausted, GraphQL RESOURCE_EXHAUSTED: never a 500", async () => {
    const r = await rest(tg.baseUrl, "GET", `/api/entity/search?domain=${domain}&type=doc&limit=1000`);
    assert.equal(r.status, 429, JSON.stringify(r.json));
    assert.match(r.json.message, /smaller|at most/);
    const e = await rest(tg.baseUrl, "GET", `/api/events/search?domain=${domain}&type=doc&limit=1000`);
    assert.equal(e.status, 429, JSON.stringify(e.json));
    const c = await connectJson(tg.baseUrl, "/stategate.v1.EntityService/Search", { domain, type: "doc", limit: 1000 });
    assert.equal(c.json.code, "resource_exhausted", JSON.stringify(c.json));
    const g = await fetch(`${tg.baseUrl}/api/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        query: `{ entitySearch(domain: "${domain}", type: "doc", limit: 1000) { entities { key } } }`,
      }),
    });
    const gql = (await g.json()) as { errors?: { extensions?: { code?: string } }[] };
    assert.equal(gql.errors?.[0]?.extensions?.code, "RESOURCE_EXHAUSTED", JSON.stringify(gql));
  });

  it("refuses a response limit below the request limit at start-up", () => {
    assert.throws(
      () => loadConfig({ STATEGATE_MAX_REQUEST_BYTES: "8192", STATEGATE_MAX_RESPONSE_BYTES: "4096" }),
      /STATEGATE_MAX_RESPONSE_BYTES: expected a whole number from 8192/,
    );
  });
});

describe("the sizes measured are protobuf-es's own", () => {
  it("entitySize and eventSize equal the encoded length, for every kind of value", () => {
    const samples: JsonObject[] = [
      {},
      { "": "" },
      { a: null, b: false, c: true, d: 0, e: -1.5, f: 1e300, g: "" },
      { nested: { deeper: { list: [1, "two", null, [], {}, [true, { x: "y" }]] } } },
      { unicode: "é漢字🙂", "clé 🙂": "\u0001\u007f" },
      { long: "x".repeat(200), many: Array.from({ length: 300 }, (_, i) => i) },
    ];
    for (const values of samples) {
      for (const version of [0n, 1n, 300n, 2n ** 40n]) {
        const entity = create(EntitySchema, { domain: "d", type: "t", key: "k", values, version });
        assert.equal(entitySize(entity), toBinary(EntitySchema, entity).length, JSON.stringify(values));
      }
      const event = create(EventSchema, {
        id: randomUUID(),
        entity: { domain: "dómain", type: "", key: "k", values, version: 7n },
        method: "/stategate.v1.EntityService/Set",
        claims: { sub: "user-7", roles: ["a", "b"] },
        time: BigInt(Date.now()) * 1_000_000n,
        version: 7n,
        position: 123456789n,
        operation: EventOperation.DELETE,
      });
      assert.equal(eventSize(event), toBinary(EventSchema, event).length, JSON.stringify(values));
    }
  });
});

describe("a response that fails to serialize", () => {
  let gateway: Gateway;
  let baseUrl: string;
  let storage: Storage;
  let dataDir: string;
  const lines: Record<string, any>[] = [];
  const domain = unique("deep");
  const ref = { domain, type: "doc", key: "k" };

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), "stategate-test-"));
    const config = loadConfig({
      STATEGATE_PORT: "0",
      STATEGATE_METRICS_PORT: "off",
      STATEGATE_DATA_DIR: dataDir,
      STATEGATE_LOG_LEVEL: "error",
    });
    gateway = await startGateway(config, pino({ level: "error" }, jsonLineSink(lines)));
    baseUrl = `http://127.0.0.1:${gateway.port}`;
    // Nested 3000 levels: JSON.stringify (storage) copes, protobuf-es's encoders overflow the stack.
    // Validation allows 31 levels, so only a value written behind the gateway's back can be like this.
    let deep: JsonObject = { leaf: true };
    for (let i = 0; i < 3000; i++) deep = { a: deep };
    storage = await createStorage({ name: "sqlite" }, { dataDir });
    const stored = await storage.commit({
      expectedVersion: 0,
      state: deep,
      event: {
        ...ref,
        id: randomUUID(),
        values: deep,
        version: 1,
        operation: "set",
        method: "/stategate.v1.EntityService/Set",
        claims: {},
        time: BigInt(Date.now()) * 1_000_000n,
      },
    });
    await storage.markPublished([stored.position]);
  });
  after(async () => {
    await storage.close();
    await gateway.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("over Connect JSON is INTERNAL with only the request id, and the cause goes to the log", async () => {
    const res = await connectJson(baseUrl, "/stategate.v1.EntityService/Get", ref);
    assert.equal(res.status, 500);
    const requestId = res.headers.get("x-request-id");
    assert.ok(requestId);
    assert.deepEqual(res.json, { code: "internal", message: `internal error (request id ${requestId})` });
    const logged = lines.find((l) => l.requestId === requestId && l.msg === "response failed");
    assert.ok(logged, JSON.stringify(lines.slice(-3)));
    assert.match(logged.message, /Maximum call stack size exceeded/);
  });

  it("over gRPC, gRPC-Web and Connect binary too", async () => {
    const { createClient } = await import("@stategate/sdk-node");
    for (const options of [
      { protocol: "grpc" },
      { protocol: "grpc-web", httpVersion: "1.1" },
      { protocol: "connect", httpVersion: "1.1" },
    ] as const) {
      const client = createClient({ baseUrl, ...options });
      await assert.rejects(client.entity.get(ref), (err: unknown) => {
        assert.ok(err instanceof ConnectError);
        assert.equal(err.code, Code.Internal, `${options.protocol}: ${err.message}`);
        assert.match(err.rawMessage, /^internal error \(request id [\w.:-]+\)$/, options.protocol);
        return true;
      });
      client.close();
    }
  });

  it("in a stream, the event that cannot be sent ends it with INTERNAL and the request id", async () => {
    const { createClient } = await import("@stategate/sdk-node");
    for (const options of [{ protocol: "grpc" }, { protocol: "connect", binary: false, httpVersion: "1.1" }] as const) {
      const client = createClient({ baseUrl, ...options });
      await assert.rejects(
        (async () => {
          for await (const _ of client.event.stream({ domain, type: "*", afterPosition: 0n })) {
            assert.fail("the deep event cannot have been sent");
          }
        })(),
        (err: unknown) => {
          assert.ok(err instanceof ConnectError);
          assert.equal(err.code, Code.Internal, `${options.protocol}: ${err.message}`);
          assert.match(err.rawMessage, /^internal error \(request id [\w.:-]+\)$/, options.protocol);
          return true;
        },
      );
      client.close();
    }
  });

  it("an internal error the handler raised keeps its request id on every protocol", async () => {
    // Measuring the page walks the value too: the handler itself fails, inside the error boundary.
    const { createClient } = await import("@stategate/sdk-node");
    for (const options of [
      { protocol: "grpc" },
      { protocol: "grpc-web", httpVersion: "1.1" },
      { protocol: "connect", httpVersion: "1.1" },
      { protocol: "connect", binary: false, httpVersion: "1.1" },
    ] as const) {
      const client = createClient({ baseUrl, ...options });
      const requestId = `search-${options.protocol}-${"binary" in options ? "json" : "binary"}`;
      await assert.rejects(
        client.entity.search({ domain, type: "doc" }, { headers: { "x-request-id": requestId } }),
        (err: unknown) => {
          assert.ok(err instanceof ConnectError);
          assert.equal(err.code, Code.Internal, `${options.protocol}: ${err.message}`);
          assert.equal(err.rawMessage, `internal error (request id ${requestId})`, options.protocol);
          return true;
        },
      );
      client.close();
    }
    assert.equal(
      lines.filter((l) => l.msg === "response failed" && String(l.requestId).startsWith("search-")).length,
      0,
      "the boundary's own errors are not rewritten",
    );
  });

  it("REST answers 500 without the cause", async () => {
    const r = await rest(baseUrl, "GET", `/api/entity/ref/${domain}/doc/k`);
    assert.equal(r.status, 500, JSON.stringify(r.json));
    assert.doesNotMatch(JSON.stringify(r.json), /stack|Maximum/);
  });
});
