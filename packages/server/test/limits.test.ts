import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError } from "@stategate/sdk-node";
import { graphqlSse } from "./graphql-helpers.js";
import type { TestGateway } from "./helpers.js";
import { startTestGateway, unique, until } from "./helpers.js";
import { metric, scrape } from "./prometheus.js";

let tg: TestGateway;
before(async () => {
  tg = await startTestGateway({ STATEGATE_MAX_OPEN_STREAMS: "2", STATEGATE_MAX_REQUEST_BYTES: "2048" });
});
after(async () => {
  await tg.close();
});

const exhausted = (e: unknown) => ConnectError.from(e).code === Code.ResourceExhausted;

describe("STATEGATE_MAX_OPEN_STREAMS", () => {
  it("refuses a stream past the limit with RESOURCE_EXHAUSTED on every door, and takes one again once a slot frees", async () => {
    const client = tg.client({ protocol: "grpc" });
    const domain = unique("limit");
    const opened = [new AbortController(), new AbortController()];
    const running = opened.map((c, i) =>
      (async () => {
        const stream =
          i === 0
            ? client.event.stream({ domain, type: "*" }, { signal: c.signal })
            : client.peer.stream({ domain, channel: "*", type: "*" }, { signal: c.signal });
        for await (const _ of stream) {
          // nothing arrives
        }
      })().catch(() => {}),
    );
    await until(() => tg.gateway.openStreams() === 2);
    try {
      // gRPC, gRPC-Web and Connect
      for (const protocol of ["grpc", "grpc-web", "connect"] as const) {
        const other = tg.client({ protocol, httpVersion: "1.1" });
        await assert.rejects(
          (async () => {
            for await (const _ of other.peer.stream({ domain, channel: "*", type: "*" })) break;
          })(),
          (e) => exhausted(e) && /STATEGATE_MAX_OPEN_STREAMS=2/.test(ConnectError.from(e).message),
        );
        other.close();
      }
      // REST: 429, the status of RESOURCE_EXHAUSTED.
      const rest = await fetch(`${tg.baseUrl}/api/events/stream?domain=${domain}&type=*`);
      assert.equal(rest.status, 429);
      assert.equal(((await rest.json()) as { code: string }).code, "resource_exhausted");
      // GraphQL: the subscription's one payload is the error, then it completes.
      const gql = await graphqlSse(
        tg.baseUrl,
        `subscription { peerStream(domain: "${domain}", channel: "*", type: "*") { message { id } } }`,
      );
      assert.equal(gql.results.length, 1, gql.text);
      const payload = gql.results[0]!;
      assert.equal(payload.errors?.[0]?.extensions?.code, "RESOURCE_EXHAUSTED", JSON.stringify(payload));
      assert.match(payload.errors?.[0]?.message ?? "", /STATEGATE_MAX_OPEN_STREAMS=2/);
      assert.equal(tg.gateway.openStreams(), 2, "a refused stream never subscribed");
      const samples = await scrape(tg.gateway.metricsPort!);
      assert.equal(metric(samples, "stategate_open_streams"), 2);
      const refused = (door: string) =>
        metric(samples, "stategate_requests_total", { code: "ResourceExhausted", method: "Stream", door });
      assert.deepEqual(
        ["grpc", "grpc-web", "connect", "rest", "graphql"].map(refused),
        [1, 1, 1, 1, 1],
        "one refusal counted per door",
      );
    } finally {
      opened[0]!.abort();
    }
    await until(() => tg.gateway.openStreams() === 1);
    await until(async () => metric(await scrape(tg.gateway.metricsPort!), "stategate_open_streams") === 1);
    const again = new AbortController();
    const events = client.event.stream({ domain, type: "*" }, { signal: again.signal })[Symbol.asyncIterator]();
    const first = events.next();
    await until(() => tg.gateway.openStreams() === 2);
    await client.entity.set({ domain, type: "t", key: "k", values: {} });
    assert.equal((await first).value?.event?.entity?.key, "k", "the freed slot serves a new stream");
    again.abort();
    opened[1]!.abort();
    await Promise.all(running);
    client.close();
  });
});

describe("STATEGATE_MAX_REQUEST_BYTES", () => {
  const big = { name: "x".repeat(4096) };
  it("refuses a larger request with RESOURCE_EXHAUSTED over gRPC, gRPC-Web and Connect", async () => {
    for (const options of [
      { protocol: "grpc" },
      { protocol: "grpc-web", httpVersion: "1.1" },
      { protocol: "connect", binary: false, httpVersion: "1.1" },
    ] as const) {
      const client = tg.client(options);
      await assert.rejects(
        client.entity.set({ domain: unique("big"), type: "t", key: "k", values: big }),
        exhausted,
        options.protocol,
      );
      client.close();
    }
  });

  it("refuses a larger REST or GraphQL body with 429, the status of RESOURCE_EXHAUSTED", async () => {
    const res = await fetch(`${tg.baseUrl}/api/entity/ref/${unique("big")}/t/k`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ values: big }),
    });
    assert.equal(res.status, 429);
    const gql = await fetch(`${tg.baseUrl}/api/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: `mutation { cacheSet(domain: "d", key: "k", value: "${"x".repeat(4096)}") }` }),
    });
    assert.equal(gql.status, 429, "GraphQL refuses the body before parsing it, with the status REST uses");
    assert.equal(
      ((await gql.json()) as { errors?: { extensions?: { code?: string } }[] }).errors?.[0]?.extensions?.code,
      "RESOURCE_EXHAUSTED",
    );
  });
});
