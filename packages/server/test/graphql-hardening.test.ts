import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, beforeEach, describe, it } from "node:test";
import type { NodeClient } from "@stategate/sdk-node";
import { Code, ConnectError, createClient } from "@stategate/sdk-node";
import pino from "pino";
import { WebSocket } from "ws";
import { loadConfig } from "../src/config.js";
import type { Gateway } from "../src/gateway.js";
import { startGateway } from "../src/gateway.js";
import type { GraphqlError, GraphqlResult } from "./graphql-helpers.js";
import { graphqlSse } from "./graphql-helpers.js";
import { jsonLineSink, unique, until } from "./helpers.js";
import type { TestIssuer } from "./test-issuer.js";
import { startTestIssuer } from "./test-issuer.js";

// What a hostile client can send to the GraphQL door, over each of its
// transports: each is refused as a bad request, with a clear message, and the
// gateway neither logs an internal error nor prints a stack trace.

/** What one transport answered: the HTTP status (101 for a WebSocket), the results, and the raw text. */
interface Answer {
  status: number;
  results: GraphqlResult[];
  text: string;
}

/** Every JSON line the gateway logged. */
const lines: Record<string, any>[] = [];
const sink = jsonLineSink(lines);
/** What went to console.error (graphql-ws prints its internal errors there, with their stacks). */
const printed: string[] = [];
const consoleError = console.error;

const dataDir = mkdtempSync(join(tmpdir(), "stategate-gql-hardening-"));
let gateway: Gateway;
let baseUrl: string;
let client: NodeClient;

before(async () => {
  console.error = (...args: unknown[]) => {
    printed.push(args.map(String).join(" "));
    consoleError(...args);
  };
  const config = loadConfig({ STATEGATE_PORT: "0", STATEGATE_METRICS_PORT: "off", STATEGATE_DATA_DIR: dataDir });
  gateway = await startGateway(config, pino({ level: "warn" }, sink));
  baseUrl = `http://127.0.0.1:${gateway.port}`;
  client = createClient({ baseUrl, protocol: "connect", binary: false, httpVersion: "1.1" });
});
after(async () => {
  console.error = consoleError;
  client.close();
  await gateway.close();
  rmSync(dataDir, { recursive: true, force: true });
});
beforeEach(() => {
  lines.length = 0;
  printed.length = 0;
});

/** Nothing was logged as an internal error, and nothing printed a stack trace. */
function assertQuiet(): void {
  const errors = lines.filter((l) => l.level >= 50);
  assert.deepEqual(errors, [], "no error-level log line");
  assert.deepEqual(printed, [], "nothing on console.error");
}

const json = { "content-type": "application/json", accept: "application/graphql-response+json, application/json" };

/** Sends one operation over each transport. */
const transports: { name: string; send(query: string, variables?: Record<string, unknown>): Promise<Answer> }[] = [
  {
    name: "POST",
    async send(query, variables) {
      const res = await fetch(`${baseUrl}/api/graphql`, {
        method: "POST",
        headers: json,
        body: JSON.stringify({ query, variables }),
      });
      const text = await res.text();
      return { status: res.status, results: [JSON.parse(text) as GraphqlResult], text };
    },
  },
  {
    name: "GET",
    async send(query, variables) {
      const params = new URLSearchParams({ query });
      if (variables) params.set("variables", JSON.stringify(variables));
      const res = await fetch(`${baseUrl}/api/graphql?${params}`, { headers: { accept: json.accept } });
      const text = await res.text();
      return { status: res.status, results: [JSON.parse(text) as GraphqlResult], text };
    },
  },
  {
    name: "SSE",
    send: (query, variables) => graphqlSse(baseUrl, query, { variables }),
  },
  {
    name: "WebSocket",
    async send(query, variables) {
      const socket = await openSocket();
      try {
        const answer = await socket.operation({ query, variables });
        // The socket outlives a refused operation: it still runs the next one.
        const next = await socket.operation({ query: "{ __typename }" });
        assert.deepEqual(next.results, [{ data: { __typename: "Query" } }], "the socket still serves");
        return answer;
      } finally {
        socket.close();
      }
    },
  },
];

/** A graphql-transport-ws socket, acknowledged, that runs one operation at a time. */
async function openSocket(headers: Record<string, string> = {}, connectionParams?: Record<string, unknown>) {
  const ws = new WebSocket(`${baseUrl.replace(/^http/, "ws")}/api/graphql`, "graphql-transport-ws", { headers });
  const messages: { id?: string; type: string; payload?: unknown }[] = [];
  let closed: { code: number; reason: string } | undefined;
  ws.on("message", (data) => messages.push(JSON.parse(String(data))));
  ws.on("close", (code, reason) => {
    closed = { code, reason: String(reason) };
  });
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  ws.send(JSON.stringify({ type: "connection_init", payload: connectionParams }));
  await until(() => messages.some((m) => m.type === "connection_ack") || closed !== undefined);
  let n = 0;
  return {
    /** Runs one operation; resolves once it completed or erred, or the socket closed. */
    async operation(payload: { query: string; variables?: Record<string, unknown> }, ms = 10_000): Promise<Answer> {
      const id = String(++n);
      ws.send(JSON.stringify({ id, type: "subscribe", payload }));
      await until(() => closed !== undefined || messages.some((m) => m.id === id && m.type !== "next"), ms);
      assert.equal(closed, undefined, `the socket closed: ${JSON.stringify(closed)}`);
      const mine = messages.filter((m) => m.id === id);
      const results = mine.flatMap((m) =>
        m.type === "next"
          ? [m.payload as GraphqlResult]
          : m.type === "error"
            ? [{ errors: m.payload as GraphqlError[] }]
            : [],
      );
      return { status: 101, results, text: JSON.stringify(mine) };
    },
    close: () => ws.close(),
  };
}

/** The answer refuses the operation as a bad request, with a message matching `message`. */
function assertRefused(transport: string, answer: Answer, message: RegExp, label = transport): void {
  // SSE answers 200 and streams the error; the others answer 400 (a socket stays open).
  const expected = transport === "SSE" ? 200 : transport === "WebSocket" ? 101 : 400;
  assert.equal(answer.status, expected, `${label}: ${answer.text.slice(0, 300)}`);
  assert.equal(answer.results.length, 1, `${label}: one result: ${answer.text.slice(0, 300)}`);
  const [result] = answer.results;
  assert.equal(result?.data ?? null, null, `${label}: nothing ran`);
  assert.equal(result?.errors?.length, 1, `${label}: ${answer.text.slice(0, 300)}`);
  const [error] = result?.errors ?? [];
  assert.equal(error?.extensions?.code, "INVALID_ARGUMENT", `${label}: ${answer.text.slice(0, 300)}`);
  assert.match(error?.message ?? "", message, label);
  assert.doesNotMatch(answer.text, /stack|RangeError|SyntaxError|node_modules|at .*\.[jt]s:\d+/, label);
}

/** Selects `n` aliased fields, `{ a0: __typename … }`. */
function aliases(n: number): string {
  return `{ ${Array.from({ length: n }, (_, i) => `a${i}: __typename`).join(" ")} }`;
}

/** An introspection query selecting `depth` levels: __schema, types, fields, type, then ofType. */
function deepIntrospection(depth: number): string {
  const names = ["__schema", "types", "fields", "type", ...Array.from({ length: depth - 5 }, () => "ofType")];
  return `{ ${names.map((n) => `${n} { `).join("")}name${" }".repeat(names.length)} }`;
}

describe("GraphQL limits over every transport", () => {
  for (const transport of transports) {
    it(`over ${transport.name}, 200 fields and 12 levels run; 201 aliases and 13 levels are refused`, async () => {
      const ok = await transport.send(aliases(200));
      assert.equal(ok.results[0]?.errors, undefined, ok.text.slice(0, 300));
      assert.equal(Object.keys(ok.results[0]?.data ?? {}).length, 200);
      const deepOk = await transport.send(deepIntrospection(12));
      assert.equal(deepOk.results[0]?.errors, undefined, deepOk.text.slice(0, 300));

      assertRefused(transport.name, await transport.send(aliases(201)), /at most 200 fields/);
      assertRefused(transport.name, await transport.send(deepIntrospection(13)), /at most 12 levels/);
      assertRefused(transport.name, await transport.send(deepIntrospection(14)), /at most 12 levels/);
      // Aliases in a fragment count too.
      const fragment = `{ ...F } fragment F on Query ${aliases(201)}`;
      assertRefused(transport.name, await transport.send(fragment), /at most 200 fields/);
      assertQuiet();
    });
  }

  for (const transport of transports.filter((t) => t.name !== "GET")) {
    it(`over ${transport.name}, 1,000 mutations in one operation write nothing`, async () => {
      const domain = unique("gql-many");
      const sets = Array.from(
        { length: 1000 },
        (_, i) => `s${i}: cacheSet(domain: "${domain}", key: "k${i}", value: ${i})`,
      ).join(" ");
      assertRefused(transport.name, await transport.send(`mutation { ${sets} }`), /at most 200 fields/);
      for (const key of ["k0", "k999"]) {
        await assert.rejects(client.cache.get({ domain, key }), (e: unknown) => {
          assert.equal(ConnectError.from(e).code, Code.NotFound);
          return true;
        });
      }
      assertQuiet();
    });
  }
});

describe("GraphQL documents nested too deep for the parser", () => {
  const deep = [
    ["selections", "{ __typename ".repeat(5000)],
    ["list literals", `{ entityGet(domain: ${"[".repeat(3000)}) { entity { key } } }`],
    ["object literals", `{ entityGet(domain: ${"{a:".repeat(3000)}) { entity { key } } }`],
  ] as const;
  for (const transport of transports) {
    it(`over ${transport.name}, deep selections, lists and objects are a bad request, not a stack overflow`, async () => {
      for (const [what, query] of deep) {
        // A GET's URL would be too long for Node (431) before it reached GraphQL.
        if (transport.name === "GET" && query.length > 4000) continue;
        assertRefused(transport.name, await transport.send(query), /nest .* at most 64 levels/, what);
      }
      assertQuiet();
    });
  }

  it("brackets inside strings and comments are not nesting; values nested under 64 levels meet the gateway's own rules", async () => {
    const inString = `{ entityGet(domain: "${"{".repeat(3000)}", type: """${"[".repeat(3000)}""", key: "k") { entity { key } } } # ${"(".repeat(3000)}`;
    const [result] = (await transports[0]?.send(inString))?.results ?? [];
    // The call is made, and refused by the gateway's own rules.
    assert.equal(result?.errors?.[0]?.extensions?.code, "INVALID_ARGUMENT");
    assert.match(result?.errors?.[0]?.message ?? "", /^domain: must be at most 128 characters/);
    const nested = `mutation { cacheSet(domain: "d", key: "k", value: ${"[".repeat(60)}1${"]".repeat(60)}) }`;
    const [tooDeep] = (await transports[0]?.send(nested))?.results ?? [];
    assert.match(tooDeep?.errors?.[0]?.message ?? "", /^value: must not nest deeper than 31 levels/);
  });

  it("a document of too many tokens is refused before it is validated", async () => {
    const answer = await transports[0]?.send(`{ __typename ${"@skip(if: false) ".repeat(10_000)} }`);
    assert.ok(answer);
    assertRefused("POST", answer, /at most 50000 tokens/);
  });
});

describe("GraphQL requests that are not JSON", () => {
  it("a GET with variables or extensions that are not JSON is 400 naming the parameter", async () => {
    for (const name of ["variables", "extensions"]) {
      for (const accept of [json.accept, "application/json"]) {
        const res = await fetch(`${baseUrl}/api/graphql?query=%7B__typename%7D&${name}=notjson`, {
          headers: { accept },
        });
        const text = await res.text();
        assert.equal(res.status, 400, `${name}, ${accept}: ${text}`);
        const body = JSON.parse(text) as GraphqlResult;
        assert.equal(body.errors?.[0]?.message, `the ${name} parameter is not valid JSON`);
        assert.deepEqual(body.errors?.[0]?.extensions, { code: "INVALID_ARGUMENT" });
      }
    }
    // Sound parameters still work.
    const ok = await fetch(`${baseUrl}/api/graphql?query=%7B__typename%7D&variables=%7B%7D&extensions=%7B%7D`, {
      headers: { accept: json.accept },
    });
    assert.deepEqual(await ok.json(), { data: { __typename: "Query" } });
    assertQuiet();
  });

  it("a POST body that is not JSON gets a short message, without the parser's or the body's text", async () => {
    for (const accept of [json.accept, "application/json"]) {
      const res = await fetch(`${baseUrl}/api/graphql`, {
        method: "POST",
        headers: { ...json, accept },
        body: '{"query": secret-bytes-xyz',
      });
      const text = await res.text();
      assert.equal(res.status, 400, text);
      assert.deepEqual(JSON.parse(text), {
        errors: [{ message: "the request body is not valid JSON", extensions: { code: "INVALID_ARGUMENT" } }],
      });
      assert.doesNotMatch(text, /secret-bytes-xyz|originalError|SyntaxError/);
    }
    assertQuiet();
  });
});

describe("GraphQL strings with unpaired surrogates", () => {
  // JSON.stringify writes a lone surrogate as the escape \ud800, which JSON.parse turns back into one.
  const lone = "\ud800";

  /**
   * The message a Connect JSON call gets for the same input, sent by hand: the
   * SDK refuses a lone surrogate itself, before anything is sent.
   */
  async function connectMessage([method, body]: [string, unknown]): Promise<string> {
    const res = await fetch(`${baseUrl}/stategate.v1.${method}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    const answer = (await res.json()) as { code?: string; message?: string };
    assert.equal(answer.code, "invalid_argument", JSON.stringify(answer));
    return answer.message ?? "";
  }

  it("are refused in variables and string arguments, with Connect's message, and nothing is stored", async () => {
    const domain = unique("gql-lone");
    const cases = [
      {
        query: `mutation($v: JSON) { entitySet(domain: "${domain}", type: "t", key: "k1", values: $v) { event { version } } }`,
        variables: { v: { [lone]: 1 } },
        connect: ["EntityService/Set", { domain, type: "t", key: "k1", values: { [lone]: 1 } }] as [string, unknown],
      },
      {
        query: `mutation($v: JSON) { entitySet(domain: "${domain}", type: "t", key: "k2", values: $v) { event { version } } }`,
        variables: { v: { name: `a${lone}b` } },
        connect: ["EntityService/Set", { domain, type: "t", key: "k2", values: { name: `a${lone}b` } }] as [
          string,
          unknown,
        ],
      },
      {
        query: `mutation($v: JSON) { cacheSet(domain: "${domain}", key: "c", value: $v) }`,
        variables: { v: [lone] },
        connect: ["CacheService/Set", { domain, key: "c", value: [lone] }] as [string, unknown],
      },
      {
        query: `mutation($v: JSON) { peerBroadcast(domain: "${domain}", channel: "c", type: "t", body: $v) { message { id } } }`,
        variables: { v: { [lone]: true } },
        connect: ["PeerService/Broadcast", { domain, channel: "c", type: "t", body: { [lone]: true } }] as [
          string,
          unknown,
        ],
      },
      {
        query: `mutation($k: String) { entitySet(domain: "${domain}", type: "t", key: $k, values: {}) { event { version } } }`,
        variables: { k: `k${lone}` },
        connect: undefined,
      },
    ];
    for (const transport of [transports[0], transports[3]]) {
      assert.ok(transport);
      for (const c of cases) {
        const answer = await transport.send(c.query, c.variables);
        const [error] = answer.results[0]?.errors ?? [];
        assert.equal(error?.extensions?.code, "INVALID_ARGUMENT", `${transport.name}: ${answer.text.slice(0, 300)}`);
        assert.match(error?.message ?? "", /: must not contain unpaired UTF-16 surrogates$/, transport.name);
        if (c.connect) assert.equal(error?.message, await connectMessage(c.connect), "the same message as Connect's");
      }
    }
    // Nothing stored, not even with U+FFFD in the surrogate's place.
    for (const key of ["k1", "k2", "k\ufffd"]) {
      await assert.rejects(client.entity.get({ domain, type: "t", key }), (e: unknown) => {
        assert.equal(ConnectError.from(e).code, Code.NotFound, key);
        return true;
      });
    }
    await assert.rejects(client.cache.get({ domain, key: "c" }));
    assertQuiet();
  });

  it("well-formed pairs and U+FFFD itself are stored as sent", async () => {
    const domain = unique("gql-pair");
    const values = { "\ud83d\ude00": "\ufffd ok \ud83d\ude00" };
    const answer = await transports[0]?.send(
      `mutation($v: JSON) { entitySet(domain: "${domain}", type: "t", key: "k", values: $v) { event { entity { values } } } }`,
      { v: values },
    );
    assert.deepEqual(answer?.results[0], { data: { entitySet: { event: { entity: { values } } } } });
  });
});

describe("GraphQL stream errors", () => {
  const refusedStream = `subscription { eventStream(domain: "d", type: "*", consumerGroup: "g", afterPosition: "0") { event { version } } }`;

  it("carry the request id once, over SSE and WebSocket", async () => {
    const {
      text,
      results: [sse],
    } = await graphqlSse(baseUrl, refusedStream, { headers: { "x-request-id": "sse-id-1" } });
    assert.equal(sse?.errors?.[0]?.extensions?.code, "INVALID_ARGUMENT", text);
    assert.equal(sse?.errors?.[0]?.extensions?.requestId, "sse-id-1");

    const socket = await openSocket({ "x-request-id": "ws-id-1" });
    try {
      const answer = await socket.operation({ query: refusedStream });
      assert.equal(answer.results[0]?.errors?.[0]?.extensions?.requestId, "ws-id-1", answer.text);
    } finally {
      socket.close();
    }
  });
});

describe("GraphQL streams ended by token expiry", () => {
  let issuer: TestIssuer;
  let own: Gateway;
  let ownUrl: string;
  /** A token that expires `seconds` from now. */
  let sign: (seconds: number) => Promise<string>;
  const ownDir = mkdtempSync(join(tmpdir(), "stategate-gql-expiry-"));

  before(async () => {
    issuer = await startTestIssuer();
    sign = (seconds) => issuer.sign({ sub: "expiring" }, Math.floor(Date.now() / 1000) + seconds);
    const config = loadConfig({
      STATEGATE_PORT: "0",
      STATEGATE_METRICS_PORT: "off",
      STATEGATE_DATA_DIR: ownDir,
      ...issuer.env,
      // Streams end at the token's exp itself, not 30 s later.
      STATEGATE_JWT_CLOCK_SKEW_SECONDS: "0",
    });
    own = await startGateway(config, pino({ level: "warn" }, sink));
    ownUrl = `http://127.0.0.1:${own.port}`;
  });
  after(async () => {
    await own?.close();
    await issuer?.close();
    rmSync(ownDir, { recursive: true, force: true });
  });

  it("end with UNAUTHENTICATED and one request id, over SSE and WebSocket", async () => {
    const token = await sign(2);
    const query = `subscription { eventStream(domain: "${unique("exp")}", type: "*") { event { version } } }`;
    const sse = graphqlSse(ownUrl, query, {
      headers: { authorization: `Bearer ${token}`, "x-request-id": "sse-expiry" },
    });
    const ws = new WebSocket(`${ownUrl.replace(/^http/, "ws")}/api/graphql`, "graphql-transport-ws", {
      headers: { "x-request-id": "ws-expiry" },
    });
    const messages: { id?: string; type: string; payload?: any }[] = [];
    ws.on("message", (data) => messages.push(JSON.parse(String(data))));
    await new Promise((resolve) => ws.once("open", resolve));
    ws.send(JSON.stringify({ type: "connection_init", payload: { authorization: `Bearer ${token}` } }));
    await until(() => messages.some((m) => m.type === "connection_ack"));
    ws.send(JSON.stringify({ id: "1", type: "subscribe", payload: { query } }));
    try {
      const {
        text,
        results: [result],
      } = await sse;
      assert.equal(result?.errors?.[0]?.extensions?.code, "UNAUTHENTICATED", text);
      assert.match(result?.errors?.[0]?.message ?? "", /token expired/);
      assert.equal(result?.errors?.[0]?.extensions?.requestId, "sse-expiry");
      await until(() => messages.some((m) => m.id === "1" && m.type === "complete"));
      const [next] = messages.filter((m) => m.id === "1" && m.type === "next");
      assert.equal(next?.payload?.errors?.[0]?.extensions?.code, "UNAUTHENTICATED", JSON.stringify(messages));
      assert.equal(next?.payload?.errors?.[0]?.extensions?.requestId, "ws-expiry");
    } finally {
      ws.close();
    }
  });
});
