import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError, expiresIn } from "@stategate/sdk-node";
import { postGraphql } from "./graphql-helpers.js";
import type { TestGateway } from "./helpers.js";
import { dropMysqlTables, mysqlStorage, startTestGateway, take, testBackends, unique, until } from "./helpers.js";
import type { Sample } from "./prometheus.js";
import { metric, scrape } from "./prometheus.js";
import type { TcpCut } from "./tcp-cut.js";
import { createTcpCut } from "./tcp-cut.js";

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

const graphql = async (query: string) => (await postGraphql(tg.baseUrl, query)).body;

describe("metrics after a mixed workload over every door", () => {
  let samples: Sample[];
  let whileStreaming: Sample[];

  before(async () => {
    const grpc = tg.client({ protocol: "grpc" });
    const connect = tg.client({ protocol: "connect", binary: false, httpVersion: "1.1" });
    const grpcWeb = tg.client({ protocol: "grpc-web", httpVersion: "1.1" });
    try {
      // gRPC: 3 Sets, 2 cache misses. The last Set claims to come through REST: a client cannot say so.
      for (const key of ["a", "b", "c"]) {
        const headers = key === "c" ? { "x-stategate-door": "rest" } : undefined;
        await grpc.entity.set({ domain, type: "t", key, values: { key } }, { headers });
      }
      for (let i = 0; i < 2; i++) {
        await assert.rejects(
          grpc.cache.get({ domain, key: "missing" }),
          (e) => ConnectError.from(e).code === Code.NotFound,
        );
      }
      // Connect: 2 Gets, one claiming to be GraphQL's.
      await connect.entity.get({ domain, type: "t", key: "a" });
      await connect.entity.get({ domain, type: "t", key: "b" }, { headers: { "x-stategate-door": "graphql" } });
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
    assert.equal(
      requests(samples, "EntityService", "Set", "grpc", "OK"),
      3,
      "x-stategate-door from a client is ignored",
    );
    assert.equal(requests(samples, "EntityService", "Set", "rest", "OK"), 0);
    assert.equal(requests(samples, "CacheService", "Get", "grpc", "NotFound"), 2);
    assert.equal(requests(samples, "EntityService", "Get", "connect", "OK"), 2);
    assert.equal(requests(samples, "MutexService", "Lock", "grpc-web", "OK"), 1);
    assert.equal(requests(samples, "MutexService", "Lock", "grpc-web", "AlreadyExists"), 1);
    assert.equal(requests(samples, "EntityService", "Get", "rest", "OK"), 2);
    assert.equal(requests(samples, "EntityService", "Get", "rest", "NotFound"), 1);
    assert.equal(requests(samples, "CacheService", "Set", "graphql", "OK"), 1);
    assert.equal(requests(samples, "EntityService", "Get", "graphql", "OK"), 1, "only the GraphQL door's own call");
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

describe("provider errors", () => {
  // MariaDB and Memcached behind TCP cuts: the shared servers stay up for every other test.
  const tag = `pe${Math.random().toString(36).slice(2, 10)}`;
  let mysql: TcpCut;
  let memcached: TcpCut;
  let down: TestGateway;
  const errors = (s: Sample[], kind: string, provider: string, operation: string) =>
    metric(s, "stategate_provider_errors_total", { kind, provider, operation });
  const timeoutMs = 8_000;
  const failsWith = (code: Code) => (e: unknown) => ConnectError.from(e).code === code;

  before(async () => {
    mysql = await createTcpCut(testBackends.mysql);
    memcached = await createTcpCut(testBackends.memcached);
    down = await startTestGateway(
      {
        STATEGATE_STORAGE_PROVIDER: JSON.stringify({
          ...mysqlStorage(tag, `127.0.0.1:${mysql.port}`),
          connectTimeoutMs: 1000,
        }),
        STATEGATE_CACHE_PROVIDER: JSON.stringify({
          name: "memcached",
          addr: `127.0.0.1:${memcached.port}`,
          prefix: `${tag}:`,
          timeoutMs: 500,
        }),
        // Each failed call is logged at error level: asserted elsewhere, noise here.
        STATEGATE_LOG_LEVEL: "silent",
      },
      { relay: { graceMs: 600_000 } },
    );
  });
  after(async () => {
    await down?.close();
    await mysql?.close();
    await memcached?.close();
    await dropMysqlTables(tag);
  });

  it("count the operations that failed, by their exact label, and never a miss or a version conflict", async () => {
    const client = down.client({ protocol: "grpc" });
    const port = down.gateway.metricsPort!;
    const d = unique("pe");
    try {
      // Misses and refusals while everything is up: answers, not provider errors.
      await assert.rejects(client.entity.get({ domain: d, type: "t", key: "nobody" }), failsWith(Code.NotFound));
      await assert.rejects(
        client.entity.edit({ domain: d, type: "t", key: "nobody", values: {} }),
        failsWith(Code.NotFound),
      );
      await assert.rejects(client.cache.get({ domain: d, key: "nothing" }), failsWith(Code.NotFound));
      await client.mutex.lock({ domain: d, key: "job", exp: expiresIn(60_000) });
      await assert.rejects(
        client.mutex.lock({ domain: d, key: "job", exp: expiresIn(60_000) }),
        failsWith(Code.AlreadyExists),
      );
      // Edits racing on one entity (each reads, then commits on what it read):
      // some commits lose to another writer and are retried.
      await client.entity.set({ domain: d, type: "t", key: "hot", values: {} });
      const racers = 8;
      await Promise.all(
        Array.from({ length: racers }, (_, i) =>
          client.entity.edit({ domain: d, type: "t", key: "hot", values: { [`i${i}`]: i } }),
        ),
      );
      let before = await scrape(port);
      const commits = metric(before, "stategate_provider_operation_duration_seconds_count", {
        kind: "storage",
        operation: "commit",
      });
      assert.ok(
        commits > racers + 1,
        `${commits} commits for ${racers} Edits and a Set: some lost a race and were retried`,
      );
      assert.equal(metric(before, "stategate_requests_total", { code: "NotFound" }), 3);
      assert.equal(metric(before, "stategate_provider_errors_total"), 0, "no miss nor conflict is a provider error");

      mysql.cut();
      memcached.cut();
      const unavailable = failsWith(Code.Unavailable);
      for (let i = 0; i < 2; i++) {
        await assert.rejects(client.entity.get({ domain: d, type: "t", key: "hot" }, { timeoutMs }), unavailable);
      }
      await assert.rejects(
        client.entity.set({ domain: d, type: "t", key: "k", values: {} }, { timeoutMs }),
        unavailable,
      );
      await assert.rejects(client.cache.get({ domain: d, key: "k" }, { timeoutMs }), unavailable);
      await assert.rejects(client.cache.set({ domain: d, key: "k", value: 1 }, { timeoutMs }), unavailable);
      await assert.rejects(
        client.mutex.lock({ domain: d, key: "other", exp: expiresIn(60_000) }, { timeoutMs }),
        unavailable,
      );
      before = await scrape(port);
      // Two Gets, and the Set's commit (a Set without an expected version reads nothing first).
      assert.equal(errors(before, "storage", "mysql", "getEntity"), 2);
      assert.equal(errors(before, "storage", "mysql", "commit"), 1);
      assert.equal(errors(before, "cache", "memcached", "get"), 1);
      assert.equal(errors(before, "cache", "memcached", "set"), 1);
      assert.equal(errors(before, "cache", "memcached", "lock"), 1);
      assert.equal(errors(before, "cache", "memcached", "del"), 0);
    } finally {
      mysql.restore();
      memcached.restore();
      client.close();
    }
  });
});
