import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";
import type { JsonObject } from "@bufbuild/protobuf";
import type { ExecutionResult } from "graphql";
import { createClient as createSseClient } from "graphql-sse";
import { createClient as createWsClient } from "graphql-ws";
import { WebSocket } from "ws";
import type { TestGateway } from "./helpers.js";
import { startTestGateway, unique, until } from "./helpers.js";

/** A subscription as a test sees it: what arrived, how it ended, and ways to leave. */
interface Subscription {
  results: ExecutionResult<Record<string, any>>[];
  ended: Promise<"complete" | "error">;
  /** Ends this subscription only (graphql-ws keeps its socket open). */
  unsubscribe(): void;
  /** Closes the client. */
  close(): void;
}
interface Operation {
  query: string;
  variables?: Record<string, unknown>;
}

/** The two ways to subscribe: graphql-ws over WebSocket, graphql-sse's distinct connections over SSE. */
const transports: { name: string; open(baseUrl: string, op: Operation, token?: string): Subscription }[] = [
  {
    name: "WebSocket",
    open(baseUrl, op, token) {
      const client = createWsClient({
        url: `${baseUrl.replace(/^http/, "ws")}/api/graphql`,
        webSocketImpl: WebSocket,
        retryAttempts: 0,
        // Connected until closed, so an unsubscribe is only that, not a socket closing.
        lazy: false,
        // The subscription's own sink reports a closed socket; no second report on the console.
        onNonLazyError: () => {},
        connectionParams: token ? { authorization: `Bearer ${token}` } : undefined,
      });
      return sink(
        (s) => client.subscribe(op, s),
        () => void client.dispose(),
      );
    },
  },
  {
    name: "SSE",
    open(baseUrl, op, token) {
      const client = createSseClient({
        url: `${baseUrl}/api/graphql`,
        retryAttempts: 0,
        headers: token ? { authorization: `Bearer ${token}` } : {},
      });
      return sink(
        (s) => client.subscribe(op, s),
        () => client.dispose(),
      );
    },
  },
];

function sink(
  subscribe: (s: { next(r: ExecutionResult): void; error(e: unknown): void; complete(): void }) => () => void,
  dispose: () => void,
): Subscription {
  const results: ExecutionResult<Record<string, any>>[] = [];
  let unsubscribe = () => {};
  const ended = new Promise<"complete" | "error">((resolve) => {
    unsubscribe = subscribe({
      next: (r) => results.push(r as ExecutionResult<Record<string, any>>),
      error: () => resolve("error"),
      complete: () => resolve("complete"),
    });
  });
  return { results, ended, unsubscribe: () => unsubscribe(), close: dispose };
}

const streamQuery = `subscription Events($domain: String, $group: String, $after: Int64) {
  eventStream(domain: $domain, type: "*", consumerGroup: $group, afterPosition: $after) {
    event { operation version method entity { domain type key values } }
  }
}`;

let tg: TestGateway;
before(async () => {
  tg = await startTestGateway();
});
after(async () => {
  await tg.close();
});
// Whatever a test subscribed to, its RPC stream is gone once the test has left.
afterEach(async () => {
  await until(() => tg.gateway.openStreams() === 0);
});

/** The ways a test causes an event: a REST call with plain fetch, and a Connect call. */
const causes: { name: string; set(domain: string, key: string, values: JsonObject): Promise<void> }[] = [
  {
    name: "REST",
    async set(domain, key, values) {
      const res = await fetch(`${tg.baseUrl}/api/entity/ref/${domain}/user/${key}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ values }),
      });
      assert.equal(res.status, 200, `REST Set: ${res.status} ${await res.text()}`);
    },
  },
  {
    name: "Connect",
    async set(domain, key, values) {
      const client = tg.client({ protocol: "connect", binary: false, httpVersion: "1.1" });
      await client.entity.set({ domain, type: "user", key, values });
      client.close();
    },
  },
];

describe("GraphQL subscriptions", () => {
  for (const transport of transports) {
    for (const cause of causes) {
      it(`over ${transport.name}, receive the event of a ${cause.name} Set; leaving cancels the stream`, async () => {
        const domain = unique("gql-sub");
        const sub = transport.open(tg.baseUrl, { query: streamQuery, variables: { domain } });
        await until(() => tg.gateway.openStreams() === 1);
        await cause.set(domain, "ada", { name: "Ada", langs: ["en"] });
        await until(() => sub.results.length === 1);
        assert.deepEqual(sub.results[0], {
          data: {
            eventStream: {
              event: {
                operation: "EVENT_OPERATION_SET",
                version: "1",
                method: "/stategate.v1.EntityService/Set",
                entity: { domain, type: "user", key: "ada", values: { name: "Ada", langs: ["en"] } },
              },
            },
          },
        });
        sub.unsubscribe();
        await until(() => tg.gateway.openStreams() === 0);
        sub.close();
      });
    }

    it(`over ${transport.name}, a refused stream ends with the error's gRPC code`, async () => {
      const variables = { domain: unique("gql-sub"), group: "workers", after: "0" };
      const sub = transport.open(tg.baseUrl, { query: streamQuery, variables });
      assert.equal(await sub.ended, "complete");
      assert.equal(sub.results.length, 1);
      const [error] = sub.results[0]?.errors ?? [];
      assert.equal(error?.extensions?.code, "INVALID_ARGUMENT");
      assert.match(error?.message ?? "", /consumer/i);
      sub.close();
    });
  }

  it("a WebSocket also carries queries and mutations", async () => {
    const domain = unique("gql-sub");
    const client = createWsClient({
      url: `${tg.baseUrl.replace(/^http/, "ws")}/api/graphql`,
      webSocketImpl: WebSocket,
    });
    try {
      const set = `mutation { entitySet(domain: "${domain}", type: "user", key: "ada", values: { n: 1 }) { event { version } } }`;
      const get = `{ entityGet(domain: "${domain}", type: "user", key: "ada") { entity { values version } } }`;
      const [setResult] = await collect(client.iterate({ query: set }));
      assert.deepEqual(setResult, { data: { entitySet: { event: { version: "1" } } } });
      const [getResult] = await collect(client.iterate({ query: get }));
      assert.deepEqual(getResult, { data: { entityGet: { entity: { values: { n: 1 }, version: "1" } } } });
      await assert.rejects(collect(client.iterate({ query: "{ entityGot { key } }" })), (errors: unknown) => {
        assert.equal((errors as { extensions?: { code?: string } }[])[0]?.extensions?.code, "INVALID_ARGUMENT");
        return true;
      });
    } finally {
      await client.dispose();
    }
  });
});

describe("GraphQL subscriptions at shutdown", () => {
  it("end over WebSocket and SSE with an UNAVAILABLE error when the gateway stops, without waiting for the grace period", async () => {
    const own = await startTestGateway({ STATEGATE_SHUTDOWN_GRACE_MS: "10000" });
    const subs = transports.map((t) =>
      t.open(own.baseUrl, { query: streamQuery, variables: { domain: unique("gql-down") } }),
    );
    await until(() => own.gateway.openStreams() === 2);
    const started = Date.now();
    await own.close();
    assert.ok(Date.now() - started < 5000, `closed in ${Date.now() - started} ms`);
    const ends = await Promise.all(subs.map((s) => s.ended));
    // Each hears why, as its last payload, and completes; the WebSocket then closes with 1001 (going away).
    assert.deepEqual(ends, ["complete", "complete"]);
    for (const s of subs) {
      assert.equal(s.results.length, 1, JSON.stringify(s.results));
      const [error] = s.results[0]?.errors ?? [];
      assert.equal(error?.message, "the gateway is shutting down");
      assert.equal(error?.extensions?.code, "UNAVAILABLE");
      s.close();
    }
  });
});

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}
