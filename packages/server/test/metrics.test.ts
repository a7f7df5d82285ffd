import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError, expiresIn } from "@stategate/sdk-node";
import type { TestGateway } from "./helpers.js";
import { startTestGateway, take, unique, until } from "./helpers.js";
import type { Sample } from "./prometheus.js";
import { metric, scrape } from "./prometheus.js";

// One gateway of this file's own: its counters start at zero, so they must equal the calls below.
let tg: TestGateway;
let metricsPort: number;
// The outbox sweep would publish nothing twice here, but a slow machine must not make it try.
before(async () => {
  tg = await startTestGateway({}, { relay: { graceMs: 600_000 } });
  metricsPort = tg.gateway.metricsPort!;
});
after(async () => {
  await tg.close();
});

const domain = unique("metrics");
const requests = (s: Sample[], service: string, method: string, door: string, code: string) =>
  metric(s, "stategate_requests_total", { service: `stategate.v1.${service}`, method, door, code });

async function graphql(query: string): Promise<Record<string, any>> {
  const res = await fetch(`${tg.baseUrl}/api/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ query }),
  });
  return (await res.json()) as Record<string, any>;
}

describe("metrics after a mixed workload over every door", () => {
  let samples: Sample[];
  let whileStreaming: Sample[];

  before(async () => {
    const grpc = tg.client({ protocol: "grpc" });
    const connect = tg.client({ protocol: "connect", binary: false, httpVersion: "1.1" });
    const grpcWeb = tg.client({ protocol: "grpc-web", httpVersion: "1.1" });
    try {
      // gRPC: 3 Sets, 2 cache misses.
      for (const key of ["a", "b", "c"]) await grpc.entity.set({ domain, type: "t", key, values: { key } });
      for (let i = 0; i < 2; i++) {
        await assert.rejects(
          grpc.cache.get({ domain, key: "missing" }),
          (e) => ConnectError.from(e).code === Code.NotFound,
        );
      }
      // Connect: 2 Gets.
      for (const key of ["a", "b"]) await connect.entity.get({ domain, type: "t", key });
      // gRPC-Web: a lock, then the same lock held.
      await grpcWeb.mutex.lock({ domain, key: "job", exp: expiresIn(60_000) });
      await assert.rejects(
        grpcWeb.mutex.lock({ domain, key: "job", exp: expiresIn(60_000) }),
        (e) => ConnectError.from(e).code === Code.AlreadyExists,
      );
      // REST: 2 Gets and one that is not found.
      for (const key of ["a", "c"])
        assert.equal((await fetch(`${tg.baseUrl}/api/entity/ref/${domain}/t/${key}`)).status, 200);
      assert.equal((await fetch(`${tg.baseUrl}/api/entity/ref/${domain}/t/nobody`)).status, 404);
      // GraphQL: one mutation, one query.
      const set = await graphql(`mutation { cacheSet(domain: "${domain}", key: "g", value: "x") }`);
      assert.equal(set.errors, undefined, JSON.stringify(set));
      const get = await graphql(`{ entityGet(domain: "${domain}", type: "t", key: "b") { entity { version } } }`);
      assert.equal(get.data?.entityGet?.entity?.version, "1");

      // A peer stream that gets 2 broadcasts, and an event stream that replays the 3 events.
      const peers = grpc.peer.stream({ domain, channel: "*", type: "*" });
      const peerGot = take(peers, 2);
      await until(() => tg.gateway.openStreams() === 1);
      for (let i = 0; i < 2; i++) await grpc.peer.broadcast({ domain, channel: "c", type: "n", body: { i } });
      assert.equal((await peerGot).length, 2);
      const events = grpc.event.stream({ domain, type: "*", afterPosition: 0n })[Symbol.asyncIterator]();
      for (let i = 0; i < 3; i++) assert.ok((await events.next()).value?.event);
      whileStreaming = await scrape(metricsPort);
      await events.return?.();
      await until(() => tg.gateway.openStreams() === 0);
      // The streams count when they end; wait until both have.
      await until(
        async () => metric(await scrape(metricsPort), "stategate_requests_total", { code: "Canceled" }) === 2,
      );
      samples = await scrape(metricsPort);
    } finally {
      grpc.close();
      connect.close();
      grpcWeb.close();
    }
  });

  it("count each call by service, method, door and code", () => {
    assert.equal(requests(samples, "EntityService", "Set", "grpc", "OK"), 3);
    assert.equal(requests(samples, "CacheService", "Get", "grpc", "NotFound"), 2);
    assert.equal(requests(samples, "EntityService", "Get", "connect", "OK"), 2);
    assert.equal(requests(samples, "MutexService", "Lock", "grpc-web", "OK"), 1);
    assert.equal(requests(samples, "MutexService", "Lock", "grpc-web", "AlreadyExists"), 1);
    assert.equal(requests(samples, "EntityService", "Get", "rest", "OK"), 2);
    assert.equal(requests(samples, "EntityService", "Get", "rest", "NotFound"), 1);
    assert.equal(requests(samples, "CacheService", "Set", "graphql", "OK"), 1);
    assert.equal(requests(samples, "EntityService", "Get", "graphql", "OK"), 1);
    assert.equal(requests(samples, "PeerService", "Broadcast", "grpc", "OK"), 2);
    assert.equal(requests(samples, "PeerService", "Stream", "grpc", "Canceled"), 1, "a stream the client left");
    assert.equal(requests(samples, "EventService", "Stream", "grpc", "Canceled"), 1);
    const stategate = samples.filter(
      (s) => s.name === "stategate_requests_total" && s.labels.service?.startsWith("stategate.v1."),
    );
    assert.equal(
      stategate.reduce((n, s) => n + s.value, 0),
      3 + 2 + 2 + 2 + 3 + 2 + 2 + 2,
      "nothing else was counted",
    );
  });

  it("time unary calls per method, and only unary calls", () => {
    const count = (service: string, method: string) =>
      metric(samples, "stategate_request_duration_seconds_count", { service: `stategate.v1.${service}`, method });
    assert.equal(count("EntityService", "Get"), 2 + 2 + 1 + 1, "connect, rest (2 + not found) and graphql");
    assert.equal(count("EntityService", "Set"), 3);
    assert.equal(count("EventService", "Stream"), 0);
    assert.ok(metric(samples, "stategate_request_duration_seconds_sum", { method: "Set" }) > 0);
  });

  it("gauge open streams by kind, and count what was published and delivered", () => {
    assert.equal(metric(whileStreaming, "stategate_open_streams", { kind: "event" }), 1);
    assert.equal(metric(samples, "stategate_open_streams", { kind: "event" }), 0);
    assert.equal(metric(samples, "stategate_open_streams", { kind: "peer" }), 0);
    assert.equal(metric(samples, "stategate_events_published_total"), 3);
    assert.equal(metric(samples, "stategate_events_delivered_total"), 3);
    assert.equal(metric(samples, "stategate_peer_messages_published_total"), 2);
    assert.equal(metric(samples, "stategate_peer_messages_delivered_total"), 2);
    assert.equal(metric(samples, "stategate_stream_buffered_items"), 0, "nothing left waiting");
  });

  it("time provider operations by provider", () => {
    const ops = (kind: string, provider: string, operation: string) =>
      metric(samples, "stategate_provider_operation_duration_seconds_count", { kind, provider, operation });
    assert.equal(ops("storage", "sqlite", "commit"), 3);
    assert.equal(ops("cache", "memory", "get"), 2);
    assert.equal(ops("cache", "memory", "set"), 1);
    assert.equal(ops("cache", "memory", "lock"), 2);
    assert.equal(ops("channel", "memory", "publish"), 3 + 2);
    assert.equal(metric(samples, "stategate_provider_errors_total"), 0);
  });

  it("include process metrics and the build", () => {
    assert.ok(metric(samples, "process_cpu_user_seconds_total") > 0);
    assert.ok(metric(samples, "nodejs_heap_size_used_bytes") > 0);
    assert.equal(metric(samples, "stategate_build_info", { version: "0.1.0" }), 1);
  });

  it("never use a domain, key or caller as a label", () => {
    for (const s of samples) {
      for (const value of Object.values(s.labels)) {
        assert.ok(!value.includes(domain) && !["a", "b", "c", "job", "g"].includes(value), `${s.name} ${value}`);
      }
    }
    const allowed = new Set(["service", "method", "door", "code", "kind", "group", "provider", "operation", "le"]);
    for (const s of samples.filter((x) => x.name.startsWith("stategate_") && x.name !== "stategate_build_info")) {
      for (const label of Object.keys(s.labels)) assert.ok(allowed.has(label), `${s.name} has label ${label}`);
    }
  });
});

describe("the operations port", () => {
  it("answers /healthz and /readyz, and 404 or 405 for anything else", async () => {
    const get = (path: string, method = "GET") => fetch(`http://127.0.0.1:${metricsPort}${path}`, { method });
    assert.deepEqual(await (await get("/healthz")).json(), { status: "ok" });
    const ready = await get("/readyz");
    assert.equal(ready.status, 200);
    const body = (await ready.json()) as { status: string; providers: Record<string, { name: string; ok: boolean }> };
    assert.equal(body.status, "ready");
    assert.deepEqual(
      Object.entries(body.providers).map(([kind, p]) => [kind, p.name, p.ok]),
      [
        ["storage", "sqlite", true],
        ["cache", "memory", true],
        ["channel", "memory", true],
      ],
    );
    assert.equal((await get("/nope")).status, 404);
    assert.equal((await get("/metrics", "POST")).status, 405);
    assert.match((await get("/metrics")).headers.get("content-type") ?? "", /^text\/plain; version=0.0.4/);
  });

  it("is not served with STATEGATE_METRICS_PORT=off", async () => {
    const off = await startTestGateway({ STATEGATE_METRICS_PORT: "off" });
    try {
      assert.equal(off.gateway.metricsPort, null);
    } finally {
      await off.close();
    }
  });
});
