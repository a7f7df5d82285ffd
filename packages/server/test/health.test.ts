import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../src/gen/health/v1/health_pb.js";
import type { TestGateway } from "./helpers.js";
import { dropMysqlTables, mysqlStorage, startTestGateway, testBackends, until } from "./helpers.js";
import { metric, scrape } from "./prometheus.js";
import type { TcpCut } from "./tcp-cut.js";
import { createTcpCut } from "./tcp-cut.js";

// MariaDB behind a TCP cut: the shared server stays up for every other test.
const tag = `hl${Math.random().toString(36).slice(2, 10)}`;
let mysql: TcpCut;
let tg: TestGateway;
let health: ReturnType<typeof createClient<typeof Health>>;

before(async () => {
  mysql = await createTcpCut(testBackends.mysql);
  tg = await startTestGateway(
    {
      STATEGATE_STORAGE_PROVIDER: JSON.stringify({
        ...mysqlStorage(tag, `127.0.0.1:${mysql.port}`),
        connectTimeoutMs: 1000,
      }),
    },
    { health: { pingTimeoutMs: 1_000, watchIntervalMs: 200 } },
  );
  health = createClient(Health, createGrpcTransport({ baseUrl: tg.baseUrl }));
});

after(async () => {
  await tg?.close();
  await mysql?.close();
  await dropMysqlTables(tag);
});

async function readyz(): Promise<{ status: number; body: Record<string, any> }> {
  const res = await fetch(`http://127.0.0.1:${tg.gateway.metricsPort}/readyz`);
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

describe("readiness follows the providers", () => {
  it("/readyz turns 503 naming MariaDB's storage when it is unreachable, and 200 when it is back", async () => {
    const watched: Status[] = [];
    const watch = new AbortController();
    const watching = (async () => {
      for await (const { status } of health.watch(
        { service: "stategate.v1.EntityService" },
        { signal: watch.signal },
      )) {
        watched.push(status);
      }
    })().catch(() => {});
    try {
      const up = await readyz();
      assert.equal(up.status, 200, JSON.stringify(up.body));
      assert.equal((await health.check({ service: "" })).status, Status.SERVING);
      await until(() => watched.length === 1);

      mysql.cut();
      const started = Date.now();
      let down = await readyz();
      while (down.status === 200 && Date.now() - started < 10_000) down = await readyz();
      assert.equal(down.status, 503);
      assert.deepEqual(down.body.down, ["storage"], "names the provider that is down");
      assert.equal(down.body.status, "unavailable");
      assert.deepEqual(down.body.providers.storage, { ...down.body.providers.storage, name: "mysql", ok: false });
      assert.equal(down.body.providers.cache.ok, true, "the others are still fine");
      assert.ok(!JSON.stringify(down.body).includes(String(mysql.port)), "no address in the probe answer");
      // Liveness does not depend on providers: restarting the gateway would not bring MariaDB back.
      assert.equal((await fetch(`http://127.0.0.1:${tg.gateway.metricsPort}/healthz`)).status, 200);
      // gRPC health says the same, per service.
      assert.equal((await health.check({ service: "" })).status, Status.NOT_SERVING);
      assert.equal((await health.check({ service: "stategate.v1.EntityService" })).status, Status.NOT_SERVING);
      assert.equal((await health.check({ service: "stategate.v1.CacheService" })).status, Status.SERVING);
      await until(() => watched.at(-1) === Status.NOT_SERVING, 5_000);
      assert.ok(
        metric(await scrape(tg.gateway.metricsPort!), "stategate_provider_errors_total", {
          kind: "storage",
          provider: "mysql",
          operation: "ping",
        }) > 0,
      );

      mysql.restore();
      await until(async () => (await readyz()).status === 200, 15_000);
      assert.equal((await readyz()).body.status, "ready");
      assert.equal((await health.check({ service: "stategate.v1.EntityService" })).status, Status.SERVING);
      await until(() => watched.at(-1) === Status.SERVING, 5_000);
      assert.deepEqual(watched, [Status.SERVING, Status.NOT_SERVING, Status.SERVING], "Watch sends each change once");
    } finally {
      watch.abort();
      await watching;
    }
  });

  it("grpc.health.v1: Check of an unknown service is NOT_FOUND, Watch says SERVICE_UNKNOWN, List names every service", async () => {
    await assert.rejects(health.check({ service: "no.Such" }), (e) => ConnectError.from(e).code === Code.NotFound);
    const watch = new AbortController();
    for await (const { status } of health.watch({ service: "no.Such" }, { signal: watch.signal })) {
      assert.equal(status, Status.SERVICE_UNKNOWN);
      break;
    }
    const { statuses } = await health.list({});
    assert.deepEqual(Object.keys(statuses).sort(), [
      "grpc.health.v1.Health",
      "grpc.reflection.v1.ServerReflection",
      "grpc.reflection.v1alpha.ServerReflection",
      "stategate.v1.CacheService",
      "stategate.v1.EntityService",
      "stategate.v1.EventService",
      "stategate.v1.MutexService",
      "stategate.v1.PeerService",
    ]);
  });
});

describe("at shutdown", () => {
  it("readiness turns 503 and watchers hear NOT_SERVING before their stream ends", async () => {
    const gw = await startTestGateway({}, { health: { watchIntervalMs: 200 } });
    const client = createClient(Health, createGrpcTransport({ baseUrl: gw.baseUrl }));
    const watched: Status[] = [];
    const watching = (async () => {
      for await (const { status } of client.watch({ service: "" })) watched.push(status);
      return "ended";
    })();
    await until(() => watched.length === 1);
    const readyz = `http://127.0.0.1:${gw.gateway.metricsPort}/readyz`;
    assert.equal((await fetch(readyz)).status, 200);
    const closing = gw.close();
    assert.equal(await watching, "ended", "the stream ends cleanly");
    assert.deepEqual(watched, [Status.SERVING, Status.NOT_SERVING]);
    await closing;
  });
});
