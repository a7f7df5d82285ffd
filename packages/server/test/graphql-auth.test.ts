import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { ExecutionResult } from "graphql";
import { createClient as createSseClient } from "graphql-sse";
import { createClient as createWsClient } from "graphql-ws";
import { WebSocket } from "ws";
import type { GraphqlResult } from "./graphql-helpers.js";
import { postGraphql } from "./graphql-helpers.js";
import type { TestGateway } from "./helpers.js";
import { startTestGateway, unique, until } from "./helpers.js";
import type { TestIssuer } from "./test-issuer.js";
import { ISSUER, startTestIssuer } from "./test-issuer.js";

// The GraphQL door passes credentials on to the RPCs it makes: the HTTP
// Authorization header, and over WebSocket the connection_init payload.

let issuer: TestIssuer;
let tg: TestGateway;
let token: string;
let expired: string;

before(async () => {
  issuer = await startTestIssuer();
  token = await issuer.sign({ sub: "graphql-user" });
  const now = Math.floor(Date.now() / 1000);
  expired = await issuer.sign({ sub: "graphql-user", iat: now - 600 }, now - 300);
  tg = await startTestGateway(issuer.env);
});
after(async () => {
  await tg?.close();
  await issuer?.close();
});

async function post(query: string, authorization?: string): Promise<GraphqlResult> {
  return (await postGraphql(tg.baseUrl, query, { headers: authorization ? { authorization } : {} })).body;
}

/** Subscribes to one domain's events; resolves with the first result. */
function firstEvent(
  client: {
    subscribe(
      op: { query: string },
      sink: { next(r: unknown): void; error(e: unknown): void; complete(): void },
    ): () => void;
  },
  domain: string,
): { first: Promise<ExecutionResult<Record<string, any>>>; stop(): void } {
  let stop = () => {};
  const first = new Promise<ExecutionResult<Record<string, any>>>((resolve, reject) => {
    stop = client.subscribe(
      { query: `subscription { eventStream(domain: "${domain}", type: "*") { event { entity { key } } } }` },
      { next: (r) => resolve(r as ExecutionResult<Record<string, any>>), error: reject, complete: () => {} },
    );
  });
  return { first, stop: () => stop() };
}

describe("GraphQL credentials", () => {
  it("the Authorization header reaches the RPC: its claims are recorded, its absence refused", async () => {
    const domain = unique("gql-auth");
    const set = `mutation { entitySet(domain: "${domain}", type: "user", key: "ada", values: {}) { event { claims } } }`;
    const refused = await post(set);
    assert.equal(refused.errors?.[0]?.extensions?.code, "UNAUTHENTICATED");
    const done = await post(set, `Bearer ${token}`);
    assert.equal(done.errors, undefined);
    assert.equal(done.data?.entitySet.event.claims.sub, "graphql-user");
  });

  it("a WebSocket takes the token from connection_init, an SSE stream from its header", async () => {
    const domain = unique("gql-auth");
    const url = `${tg.baseUrl}/api/graphql`;
    const ws = createWsClient({
      url: url.replace(/^http/, "ws"),
      webSocketImpl: WebSocket,
      retryAttempts: 0,
      connectionParams: { authorization: `Bearer ${token}` },
    });
    const anonymous = createWsClient({ url: url.replace(/^http/, "ws"), webSocketImpl: WebSocket, retryAttempts: 0 });
    const sse = createSseClient({ url, retryAttempts: 0, headers: { authorization: `Bearer ${token}` } });
    try {
      const denied = firstEvent(anonymous, domain);
      assert.equal((await denied.first).errors?.[0]?.extensions?.code, "UNAUTHENTICATED");
      const subs = [firstEvent(ws, domain), firstEvent(sse, domain)];
      await until(() => tg.gateway.openStreams() === 2);
      await post(
        `mutation { entitySet(domain: "${domain}", type: "u", key: "k", values: {}) { event { id } } }`,
        `Bearer ${token}`,
      );
      for (const sub of subs)
        assert.deepEqual(await sub.first, { data: { eventStream: { event: { entity: { key: "k" } } } } });
      for (const sub of subs) sub.stop();
      await until(() => tg.gateway.openStreams() === 0);
    } finally {
      await Promise.all([ws.dispose(), anonymous.dispose()]);
      sse.dispose();
    }
  });
});

/** A graphql-ws client on the gateway whose connection_init carries `authorization`; `closed` records a close. */
function wsClient(authorization: string) {
  const closes: number[] = [];
  const client = createWsClient({
    url: `${tg.baseUrl.replace(/^http/, "ws")}/api/graphql`,
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    lazy: false,
    connectionParams: { authorization },
    on: { closed: (event) => closes.push((event as { code: number }).code) },
  });
  return { client, closes };
}

/** Runs one operation over a graphql-ws client: its results, or the error the socket closed with. */
function run(
  client: ReturnType<typeof createWsClient>,
  query: string,
): Promise<{ results: ExecutionResult<Record<string, any>>[]; error?: unknown }> {
  const results: ExecutionResult<Record<string, any>>[] = [];
  return new Promise((resolve) => {
    client.subscribe(
      { query },
      {
        next: (r) => results.push(r as ExecutionResult<Record<string, any>>),
        error: (error) => resolve({ results, error }),
        complete: () => resolve({ results }),
      },
    );
  });
}

describe("GraphQL over WebSocket: the token of connection_init", () => {
  // The socket is accepted whatever connection_init carries; its token is checked by each
  // operation, as a header is over HTTP, so each one says why it was refused.
  for (const [name, authorization, reason] of [
    ["an invalid token", "Bearer not.a.jwt", /token invalid/],
    ["an expired token", () => `Bearer ${expired}`, /token expired/],
    ["no Bearer prefix", () => token, /authorization must be "Bearer <token>"/],
  ] as const) {
    it(`${name}: each operation is refused with UNAUTHENTICATED and the reason; the socket stays open`, async () => {
      const { client, closes } = wsClient(typeof authorization === "string" ? authorization : authorization());
      try {
        const domain = unique("gql-ws-auth");
        for (const query of [
          `mutation { entitySet(domain: "${domain}", type: "u", key: "k", values: {}) { event { id } } }`,
          `subscription { eventStream(domain: "${domain}", type: "*") { event { id } } }`,
          `{ entityGet(domain: "${domain}", type: "u", key: "k") { entity { key } } }`,
        ]) {
          const { results, error } = await run(client, query);
          assert.equal(error, undefined, `no socket error for ${query}`);
          assert.equal(results.length, 1, query);
          const [err] = results[0]?.errors ?? [];
          assert.equal(err?.extensions?.code, "UNAUTHENTICATED", query);
          assert.match(err?.message ?? "", reason, query);
        }
        assert.deepEqual(closes, [], "the socket was not closed");
        assert.equal(tg.gateway.openStreams(), 0);
        // Nothing was written.
        const read = await post(
          `{ entityGet(domain: "${domain}", type: "u", key: "k") { entity { key } } }`,
          `Bearer ${token}`,
        );
        assert.equal(read.errors?.[0]?.extensions?.code, "NOT_FOUND");
      } finally {
        await client.dispose();
      }
    });
  }

  it("a mutation over WebSocket records the token's claims on its event", async () => {
    const { client } = wsClient(`Bearer ${token}`);
    try {
      const domain = unique("gql-ws-claims");
      const { results, error } = await run(
        client,
        `mutation { entitySet(domain: "${domain}", type: "u", key: "k", values: { a: 1 }) { event { id claims } } }`,
      );
      assert.equal(error, undefined);
      assert.equal(results[0]?.errors, undefined, JSON.stringify(results[0]?.errors));
      const event = results[0]?.data?.entitySet.event;
      assert.equal(event.claims.sub, "graphql-user");
      assert.equal(event.claims.iss, ISSUER);
      // As stored, read back over HTTP.
      const stored = await post(
        `{ eventGet(domain: "${domain}", type: "u", key: "k", id: "${event.id}") { event { claims } } }`,
        `Bearer ${token}`,
      );
      assert.equal(stored.errors, undefined, JSON.stringify(stored.errors));
      assert.deepEqual(stored.data?.eventGet.event.claims, event.claims);
    } finally {
      await client.dispose();
    }
  });
});
