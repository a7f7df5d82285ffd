import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import http from "node:http";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createClient as createWsClient } from "graphql-ws";
import { WebSocket } from "ws";
import type { GraphqlResult } from "./graphql-helpers.js";
import { postGraphql } from "./graphql-helpers.js";
import type { TestGateway } from "./helpers.js";
import { repoRoot, startTestGateway, unique, until } from "./helpers.js";

let tg: TestGateway;
before(async () => {
  tg = await startTestGateway();
});
after(async () => {
  await tg.close();
});

/** POSTs one operation to /api/graphql, as any GraphQL client would, and expects `status`. */
async function graphql(query: string, variables?: Record<string, unknown>, status = 200): Promise<GraphqlResult> {
  const answer = await postGraphql(tg.baseUrl, query, {
    variables,
    headers: { accept: "application/graphql-response+json, application/json" },
  });
  assert.equal(answer.status, status, `POST /api/graphql answered ${answer.status}`);
  return answer.body;
}

describe("GraphQL at /api/graphql", () => {
  it("a mutation sets an entity from JSON values and returns its int64 version as a string", async () => {
    const domain = unique("gql");
    const { data, errors } = await graphql(
      `mutation Set($values: JSON) {
        entitySet(domain: "${domain}", type: "user", key: "ada", values: $values) {
          event { version operation method entity { key values version } }
        }
      }`,
      { values: { name: "Ada", langs: ["en", "fr"], born: 1815, nested: { ok: true } } },
    );
    assert.equal(errors, undefined);
    assert.deepEqual(data?.entitySet.event, {
      version: "1",
      operation: "EVENT_OPERATION_SET",
      method: "/stategate.v1.EntityService/Set",
      entity: {
        key: "ada",
        values: { name: "Ada", langs: ["en", "fr"], born: 1815, nested: { ok: true } },
        version: "1",
      },
    });
  });

  it("a query reads the entity back after a set, over POST and over GET", async () => {
    const domain = unique("gql");
    await graphql(
      `mutation { entitySet(domain: "${domain}", type: "user", key: "ada", values: { name: "Ada" }) { event { id } } }`,
    );
    const query = `{ entityGet(domain: "${domain}", type: "user", key: "ada") { entity { domain type key values version } } }`;
    const expected = {
      entityGet: { entity: { domain, type: "user", key: "ada", values: { name: "Ada" }, version: "1" } },
    };
    assert.deepEqual(await graphql(query), { data: expected });

    const res = await fetch(`${tg.baseUrl}/api/graphql?query=${encodeURIComponent(query)}`, {
      headers: { accept: "application/json" },
    });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { data: expected });
    // A GET must not write: a mutation over GET is refused.
    const mutation = `mutation { entityDel(domain: "${domain}", type: "user", key: "ada") { event { id } } }`;
    const refused = await fetch(`${tg.baseUrl}/api/graphql?query=${encodeURIComponent(mutation)}`, {
      headers: { accept: "application/json" },
    });
    assert.equal(refused.status, 405);
    assert.equal(((await refused.json()) as GraphqlResult).errors?.[0]?.extensions?.code, "INVALID_ARGUMENT");
    assert.equal((await graphql(query)).data?.entityGet.entity.version, "1");
  });

  it("errors carry the gRPC code in extensions.code, with the call's message and no internals", async () => {
    const invalid = await graphql(
      `mutation { entitySet(domain: "has space", type: "user", key: "k", values: {}) { event { id } } }`,
    );
    assert.equal(invalid.errors?.length, 1);
    const [error] = invalid.errors ?? [];
    assert.equal(error?.extensions?.code, "INVALID_ARGUMENT");
    assert.match(error?.message ?? "", /^domain: /);
    assert.deepEqual(error?.path, ["entitySet"]);
    assert.deepEqual(Object.keys(error?.extensions ?? {}).sort(), ["code", "requestId"]);
    assert.doesNotMatch(JSON.stringify(invalid), /stack|at .*\.ts:\d+|node_modules/);

    const missing = await graphql(
      `{ entityGet(domain: "${unique("gql")}", type: "user", key: "nobody") { entity { key } } }`,
    );
    assert.equal(missing.errors?.[0]?.extensions?.code, "NOT_FOUND");
    assert.deepEqual(missing.data, { entityGet: null });

    // Refused before any call: a syntax error, an unknown field, a body over STATEGATE_MAX_REQUEST_BYTES.
    const syntax = await graphql("{ entityGet(", undefined, 400);
    assert.equal(syntax.errors?.[0]?.extensions?.code, "INVALID_ARGUMENT");
    const unknown = await graphql("{ entityGot { entity { key } } }", undefined, 400);
    assert.equal(unknown.errors?.[0]?.extensions?.code, "INVALID_ARGUMENT");
    assert.match(unknown.errors?.[0]?.message ?? "", /entityGot/);
    const big = await graphql(`{ __typename }\n#${"x".repeat(4 * 1024 * 1024)}`, undefined, 429);
    assert.equal(big.errors?.[0]?.extensions?.code, "RESOURCE_EXHAUSTED");
  });

  it("a document that does not parse or validate: 400 as graphql-response+json, 200 as application/json", async () => {
    // [Accept, status, media type], as README's "Error codes and HTTP statuses" says.
    const cases: [string | undefined, number, string | undefined][] = [
      [undefined, 200, "application/json"],
      ["*/*", 200, "application/json"],
      ["application/*", 200, "application/json"],
      ["application/json", 200, "application/json"],
      ["application/json, application/graphql-response+json", 200, "application/json"],
      ["*/*, application/graphql-response+json", 200, "application/json"],
      ["application/graphql-response+json", 400, "application/graphql-response+json"],
      ["application/graphql-response+json, application/json", 400, "application/graphql-response+json"],
      // The first listed decides, whatever the q-values say.
      ["application/graphql-response+json;q=0.5, application/json", 400, "application/graphql-response+json"],
      ["text/html, application/graphql-response+json", 400, "application/graphql-response+json"],
      ["text/plain", 406, undefined],
    ];
    for (const query of ["{ entityGet(", "{ entityGot { entity { key } } }"]) {
      for (const [accept, status, type] of cases) {
        // node:http, since fetch always sends an Accept (*/* unless told otherwise).
        const res = await new Promise<http.IncomingMessage>((resolve, reject) =>
          http
            .request(`${tg.baseUrl}/api/graphql`, {
              method: "POST",
              headers: { "content-type": "application/json", ...(accept === undefined ? {} : { accept }) },
            })
            .on("response", resolve)
            .on("error", reject)
            .end(JSON.stringify({ query })),
        );
        let text = "";
        for await (const chunk of res) text += String(chunk);
        assert.equal(res.statusCode, status, `${query} with Accept ${accept}: ${text}`);
        if (type === undefined) continue;
        assert.equal(res.headers["content-type"]?.split(";")[0], type, `Accept ${accept}`);
        assert.equal((JSON.parse(text) as GraphqlResult).errors?.[0]?.extensions?.code, "INVALID_ARGUMENT");
      }
    }
  });

  it("int64 is an Int64 scalar carried as a string, never GraphQL's 32-bit Int", async () => {
    const types = await graphql(`{
      entity: __type(name: "Entity") { fields { name type { kind name ofType { name } } } }
      event: __type(name: "Event") { fields { name type { kind name ofType { name } } } }
      int64: __type(name: "Int64") { kind }
    }`);
    const typeOf = (type: string, field: string) => {
      const f = types.data?.[type].fields.find((x: { name: string }) => x.name === field);
      return f?.type.name ?? f?.type.ofType?.name;
    };
    assert.equal(types.data?.int64.kind, "SCALAR");
    for (const [type, field] of [
      ["entity", "version"],
      ["event", "time"],
      ["event", "version"],
      ["event", "position"],
    ] as const) {
      assert.equal(typeOf(type, field), "Int64", `${type}.${field}`);
    }

    // Beyond 2^53, an expected version reaches the service exactly (its ABORTED message quotes it).
    const domain = unique("gql");
    const set = `mutation($v: Int64) { entitySet(domain: "${domain}", type: "t", key: "k", values: {}, expectedVersion: $v) { event { version time } } }`;
    const conflict = await graphql(set, { v: "9007199254740993" });
    assert.equal(conflict.errors?.[0]?.extensions?.code, "ABORTED");
    assert.match(conflict.errors?.[0]?.message ?? "", /expected version 9007199254740993\b/);
    const written = await graphql(set, { v: 0 });
    // Times are nanoseconds since 1970: far past 2^53, yet exact, as over gRPC.
    const { time } = written.data?.entitySet.event ?? {};
    assert.match(time, /^\d{19}$/);
    const client = tg.client();
    const events = await client.event.search({ domain, type: "t" });
    client.close();
    assert.equal(String(events.events[0]?.time), time);

    const tooBig = await graphql(set, { v: "9223372036854775808" });
    assert.equal(tooBig.errors?.[0]?.extensions?.code, "INVALID_ARGUMENT");
    // A variable that is no integer at all fails before execution: a bad request.
    const notInteger = await graphql(set, { v: "1.5" }, 400);
    assert.match(notInteger.errors?.[0]?.message ?? "", /Int64/);
  });

  it("well-known types: Value as JSON, Timestamp as RFC 3339, an empty response as true", async () => {
    const domain = unique("gql");
    const set = await graphql(
      `mutation { cacheSet(domain: "${domain}", key: "k", value: [1, "two", null], exp: "2099-01-02T03:04:05Z") }`,
    );
    assert.deepEqual(set, { data: { cacheSet: true } });
    const got = await graphql(`{ cacheGet(domain: "${domain}", key: "k") { cache { value exp } } }`);
    assert.deepEqual(got.data?.cacheGet.cache, { value: [1, "two", null], exp: "2099-01-02T03:04:05Z" });
    const badTime = await graphql(`mutation { cacheSet(domain: "${domain}", key: "k", value: 1, exp: "tomorrow") }`);
    assert.equal(badTime.errors?.[0]?.extensions?.code, "INVALID_ARGUMENT");
  });

  it("a failing call in a mutation lands in errors, the other fields' results kept, in either order", async () => {
    for (const cacheFirst of [false, true]) {
      const domain = unique("gql");
      const set = `entitySet(domain: "${domain}", type: "user", key: "ada", values: { name: "Ada" }) { event { version } }`;
      // An exp in the past is refused: the call fails, whatever comes before or after it.
      const cache = `cacheSet(domain: "${domain}", key: "k", value: 1, exp: "2000-01-01T00:00:00Z")`;
      const { data, errors } = await graphql(`mutation { ${cacheFirst ? `${cache} ${set}` : `${set} ${cache}`} }`);
      assert.deepEqual(data, { entitySet: { event: { version: "1" } }, cacheSet: null }, `cache first: ${cacheFirst}`);
      assert.equal(errors?.length, 1);
      assert.deepEqual(errors?.[0]?.path, ["cacheSet"]);
      assert.equal(errors?.[0]?.extensions?.code, "INVALID_ARGUMENT");
      const got = await graphql(`{ entityGet(domain: "${domain}", type: "user", key: "ada") { entity { version } } }`);
      assert.equal(got.data?.entityGet.entity.version, "1");
    }
    // The same for the other methods whose result is `true`: a foreign token's unlock fails alone.
    const domain = unique("gql");
    const unlock = await graphql(
      `mutation { mutexUnlock(domain: "${domain}", key: "k", token: "nope") cacheDel(domain: "${domain}", key: "k") }`,
    );
    assert.deepEqual(unlock.data, { mutexUnlock: null, cacheDel: true });
    assert.deepEqual(
      unlock.errors?.map((e) => e.path?.[0]),
      ["mutexUnlock"],
    );
  });

  it("types, fields, arguments and enum values are described by the proto comments", async () => {
    const { data } = await graphql(`{
      entity: __type(name: "Entity") { description fields { name description } }
      op: __type(name: "EventOperation") { enumValues { name description } }
      schema: __schema {
        queryType { fields { name description args { name description } } }
        mutationType { fields { name description } }
        subscriptionType { fields { name description } }
      }
    }`);
    assert.match(data?.entity.description, /^Entity is one record of key\/value pairs/);
    const field = (list: { name: string; description: string }[], name: string) =>
      list.find((f) => f.name === name)?.description;
    assert.match(field(data?.entity.fields, "version") ?? "", /^The entity's version: 1 after its first write/);
    assert.match(field(data?.op.enumValues, "EVENT_OPERATION_DELETE") ?? "", /^EntityService\.Del deleted the entity/);
    const entityGet = data?.schema.queryType.fields.find((f: { name: string }) => f.name === "entityGet");
    assert.equal(entityGet.description, "Get returns the entity's current state, or NOT_FOUND.");
    assert.equal(field(entityGet.args, "domain"), "The entity's domain.");
    assert.match(field(data?.schema.mutationType.fields, "mutexLock") ?? "", /^Lock takes the lock/);
    assert.match(field(data?.schema.subscriptionType.fields, "eventStream") ?? "", /^Stream sends every new event/);
    // Every operation of every service is there, named service + method.
    const names = (list: { name: string }[]) => list.map((f) => f.name).sort();
    assert.deepEqual(names(data?.schema.queryType.fields), [
      "cacheGet",
      "entityGet",
      "entitySearch",
      "eventGet",
      "eventSearch",
    ]);
    assert.deepEqual(names(data?.schema.mutationType.fields), [
      "cacheDel",
      "cacheSet",
      "entityDel",
      "entityEdit",
      "entityRevert",
      "entitySet",
      "mutexLock",
      "mutexUnlock",
      "peerBroadcast",
    ]);
    assert.deepEqual(names(data?.schema.subscriptionType.fields), ["eventStream", "peerStream"]);
  });

  it("a browser GET serves GraphiQL, whose every file comes from the gateway itself", async () => {
    const res = await fetch(`${tg.baseUrl}/api/graphql`, { headers: { accept: "text/html,application/xhtml+xml" } });
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/html/);
    const html = await res.text();
    assert.doesNotMatch(html, /https?:\/\//i, "no CDN: the page names no other host");
    assert.match(html, /renderYogaGraphiQL/);
    const files = [...html.matchAll(/(?:src=|href=|: )"(\/api\/graphql\/assets\/[^"]+)"/g)].map((m) => m[1] ?? "");
    assert.deepEqual(files.sort(), [
      "/api/graphql/assets/editor.worker.js",
      "/api/graphql/assets/favicon.ico",
      "/api/graphql/assets/graphiql.css",
      "/api/graphql/assets/graphiql.js",
      "/api/graphql/assets/graphql.worker.js",
      "/api/graphql/assets/json.worker.js",
    ]);
    for (const file of files) {
      const asset = await fetch(`${tg.baseUrl}${file}`);
      assert.equal(asset.status, 200, file);
      const type = asset.headers.get("content-type") ?? "";
      assert.match(type, file.endsWith(".js") ? /javascript/ : file.endsWith(".css") ? /text\/css/ : /image/, file);
      assert.ok((await asset.arrayBuffer()).byteLength > 1000, `${file} has content`);
    }
    const script = await (await fetch(`${tg.baseUrl}/api/graphql/assets/graphiql.js`)).text();
    assert.match(script, /YogaGraphiQL/);
    assert.equal((await fetch(`${tg.baseUrl}/api/graphql/assets/nothing.js`)).status, 404);
  });

  it("runs the README's GraphQL examples: the subscription sees the mutation, the query reads it", async () => {
    const readme = readFileSync(join(repoRoot, "README.md"), "utf8");
    const section = readme.slice(
      readme.indexOf("## GraphQL\n"),
      readme.indexOf("\n## ", readme.indexOf("## GraphQL\n")),
    );
    const [mutation, query, subscription] = [...section.matchAll(/```graphql\n([\s\S]*?)```/g)].map((m) => m[1] ?? "");
    assert.match(mutation ?? "", /^mutation/);
    assert.match(query ?? "", /^query/);
    assert.match(subscription ?? "", /^subscription/);

    const ws = createWsClient({ url: `${tg.baseUrl.replace(/^http/, "ws")}/api/graphql`, webSocketImpl: WebSocket });
    const events: unknown[] = [];
    const unsubscribe = ws.subscribe(
      { query: subscription ?? "" },
      { next: (r) => events.push(r), error: (e) => events.push(e), complete: () => {} },
    );
    try {
      await until(() => tg.gateway.openStreams() === 1);
      const set = await graphql(mutation ?? "");
      assert.equal(set.errors, undefined);
      const version = set.data?.entitySet.event.version;
      await until(() => events.length === 1);
      assert.deepEqual(events[0], {
        data: {
          eventStream: {
            event: { operation: "EVENT_OPERATION_SET", version, entity: { key: "ada", values: { name: "Ada" } } },
          },
        },
      });
      assert.deepEqual(await graphql(query ?? ""), {
        data: { entityGet: { entity: { values: { name: "Ada" }, version } } },
      });
    } finally {
      unsubscribe();
      await ws.dispose();
    }
    await until(() => tg.gateway.openStreams() === 0);
  });
});
