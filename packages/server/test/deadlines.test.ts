import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { create, toBinary } from "@bufbuild/protobuf";
import { EntityServiceGetRequestSchema } from "@stategate/api";
import { createClient as createWsClient } from "graphql-ws";
import { WebSocket } from "ws";
import { postGraphql } from "./graphql-helpers.js";
import type { GatewayProcess, TestGateway } from "./helpers.js";
import {
  dropMysqlTables,
  mysqlStorage,
  spawnGateway,
  startTestGateway,
  testBackends,
  unique,
  until,
} from "./helpers.js";
import type { RawDoor } from "./raw-rpc.js";
import { openRawStream, rawDoors, rawUnary } from "./raw-rpc.js";
import { ok, readAll, rest, sse } from "./rest-helpers.js";
import type { TcpCut } from "./tcp-cut.js";
import { createTcpCut } from "./tcp-cut.js";

let tg: TestGateway;
before(async () => {
  tg = await startTestGateway();
});
after(async () => {
  await tg.close();
});
afterEach(async () => {
  await until(() => tg.gateway.openStreams() === 0);
});

/** Node's warnings while `work` runs: a deadline set past a timer's range shows as a TimeoutOverflowWarning. */
async function warningsDuring(work: () => Promise<void>): Promise<string[]> {
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
  process.on("warning", onWarning);
  try {
    await work();
    // Warnings are emitted on a later tick.
    await sleep(20);
  } finally {
    process.off("warning", onWarning);
  }
  return warnings;
}

/** Deadlines past what a Node timer can wait (2^31-1 ms, about 24.8 days), per header. */
const huge: Record<string, string>[] = [
  { "grpc-timeout": "2200000S" },
  { "grpc-timeout": "99999999H" },
  { "connect-timeout-ms": "2200000000" },
];
/** Which header each door reads its deadline from. */
const ownHeader = (door: RawDoor, h: Record<string, string>) =>
  door === "connect" ? "connect-timeout-ms" in h : "grpc-timeout" in h;

describe("deadlines past a timer's range are no deadline", () => {
  for (const door of rawDoors) {
    for (const headers of huge.filter((h) => ownHeader(door, h))) {
      it(`a ${door} event stream with ${JSON.stringify(headers)} stays open and delivers`, async () => {
        const domain = unique("dl-huge");
        const warnings = await warningsDuring(async () => {
          const stream = openRawStream(
            tg.baseUrl,
            door,
            "/stategate.v1.EventService/Stream",
            { domain, type: "*" },
            headers,
          );
          await until(() => tg.gateway.openStreams() === 1);
          const early = await Promise.race([stream.ended, sleep(1_000).then(() => undefined)]);
          assert.equal(early, undefined, `the stream ended at once: ${JSON.stringify(early)}`);
          await ok(rest(tg.baseUrl, "POST", `/api/entity/ref/${domain}/user/ada`, { values: { n: 1 } }));
          await until(() => stream.messages === 1);
          stream.cancel();
          await stream.ended;
        });
        assert.deepEqual(warnings, []);
      });
    }
  }

  for (const headers of huge) {
    it(`a unary call with ${JSON.stringify(headers)} answers over Connect and REST, with no timer overflow`, async () => {
      const domain = unique("dl-unary");
      const warnings = await warningsDuring(async () => {
        // Connect unary over HTTP/1.1, the header sent as given.
        const connect = await fetch(`${tg.baseUrl}/stategate.v1.EntityService/Set`, {
          method: "POST",
          headers: { "content-type": "application/json", "connect-protocol-version": "1", ...headers },
          body: JSON.stringify({ domain, type: "user", key: "ada", values: { n: 1 } }),
        });
        assert.equal(connect.status, 200, await connect.clone().text());
        // REST reads the same headers.
        const got = await ok(rest(tg.baseUrl, "GET", `/api/entity/ref/${domain}/user/ada`, undefined, headers));
        assert.deepEqual(got.entity.values, { n: 1 });
      });
      assert.deepEqual(warnings, []);
    });

    it(`a REST event stream with ${JSON.stringify(headers)} stays open and delivers`, async () => {
      const domain = unique("dl-rest");
      const abort = new AbortController();
      const warnings = await warningsDuring(async () => {
        const res = await fetch(`${tg.baseUrl}/api/events/stream?domain=${domain}&type=*`, {
          headers,
          signal: abort.signal,
        });
        assert.equal(res.status, 200, await (res.status === 200 ? "" : res.text()));
        const events = sse(res.body!);
        await sleep(1_000);
        assert.equal(tg.gateway.openStreams(), 1, "still open after a second");
        await ok(rest(tg.baseUrl, "POST", `/api/entity/ref/${domain}/user/ada`, { values: { n: 1 } }));
        const first = await events.next();
        assert.equal(first.done, false);
        assert.equal(JSON.parse(first.value.data!).event.entity.key, "ada");
        abort.abort();
      });
      assert.deepEqual(warnings, []);
    });
  }
});

describe("a stream whose deadline passes ends with DEADLINE_EXCEEDED", () => {
  for (const door of rawDoors) {
    for (const path of ["/stategate.v1.EventService/Stream", "/stategate.v1.PeerService/Stream"]) {
      it(`${door} ${path.split(".v1.")[1]}`, async () => {
        const headers: Record<string, string> =
          door === "connect" ? { "connect-timeout-ms": "1000" } : { "grpc-timeout": "1S" };
        const request = { domain: unique("dl-pass"), type: "*", ...(path.includes("Peer") ? { channel: "*" } : {}) };
        const stream = openRawStream(tg.baseUrl, door, path, request, headers);
        const end = await stream.ended;
        assert.equal(end.code, "deadline_exceeded", JSON.stringify(end));
        assert.ok(end.ms >= 900 && end.ms < 5_000, `ended after ${end.ms} ms`);
      });
    }
  }

  it("REST: an SSE event stream sends `event: error` with deadline_exceeded", async () => {
    const res = await fetch(`${tg.baseUrl}/api/events/stream?domain=${unique("dl-sse")}&type=*`, {
      headers: { "connect-timeout-ms": "1000" },
    });
    assert.equal(res.status, 200);
    const got = await readAll(sse(res.body!));
    const last = got.at(-1);
    assert.equal(last?.event, "error", JSON.stringify(got));
    assert.equal(JSON.parse(last.data!).code, "deadline_exceeded");
  });
});

/** Posts a GraphQL operation with `headers`: the status, the JSON answer, and how long it took. */
async function graphqlPost(
  baseUrl: string,
  query: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: any; ms: number }> {
  const started = Date.now();
  const { status, body } = await postGraphql(baseUrl, query, { headers });
  return { status, body, ms: Date.now() - started };
}

describe("GraphQL honours grpc-timeout and connect-timeout-ms", () => {
  for (const headers of [{ "connect-timeout-ms": "1000" }, { "grpc-timeout": "1S" }] as Record<string, string>[]) {
    it(
      `a subscription over SSE with ${JSON.stringify(headers)} ends with DEADLINE_EXCEEDED in extensions.code`,
      {
        timeout: 10_000,
      },
      async () => {
        const started = Date.now();
        const res = await fetch(`${tg.baseUrl}/api/graphql`, {
          method: "POST",
          headers: { "content-type": "application/json", accept: "text/event-stream", ...headers },
          body: JSON.stringify({
            query: `subscription { eventStream(domain: "${unique("dl-gql")}", type: "*") { event { version } } }`,
          }),
        });
        assert.equal(res.status, 200);
        await until(() => tg.gateway.openStreams() === 1);
        const got = (await readAll(sse(res.body!))).filter((m) => m.event);
        const ms = Date.now() - started;
        assert.deepEqual(
          got.map((m) => m.event),
          ["next", "complete"],
          JSON.stringify(got),
        );
        const payload = JSON.parse(got[0].data!) as { errors?: { extensions?: { code?: string } }[] };
        assert.equal(payload.errors?.[0]?.extensions?.code, "DEADLINE_EXCEEDED", JSON.stringify(payload));
        assert.ok(ms >= 900 && ms < 5_000, `ended after ${ms} ms`);
      },
    );
  }

  it("a deadline header that is not one is INVALID_ARGUMENT (HTTP 400), as on REST", async () => {
    for (const headers of [{ "connect-timeout-ms": "soon" }, { "grpc-timeout": "5 seconds" }] as Record<
      string,
      string
    >[]) {
      const { status, body } = await graphqlPost(
        tg.baseUrl,
        `{ cacheGet(domain: "d", key: "k") { cache { value } } }`,
        headers,
      );
      assert.equal(status, 400, JSON.stringify(body));
      assert.equal(body.errors?.[0]?.extensions?.code, "INVALID_ARGUMENT", JSON.stringify(body));
    }
  });

  it("a deadline on the WebSocket upgrade belongs to the socket: its subscriptions are not cut by it", async () => {
    /** A WebSocket whose upgrade request carries a deadline header. */
    class WithDeadline extends WebSocket {
      constructor(url: string, protocols?: string | string[]) {
        super(url, protocols, { headers: { "connect-timeout-ms": "500" } });
      }
    }
    const client = createWsClient({
      url: `${tg.baseUrl.replace(/^http/, "ws")}/api/graphql`,
      webSocketImpl: WithDeadline,
      retryAttempts: 0,
    });
    const domain = unique("dl-ws");
    const results: any[] = [];
    let ended = false;
    const unsubscribe = client.subscribe(
      { query: `subscription { eventStream(domain: "${domain}", type: "*") { event { version } } }` },
      {
        next: (r) => results.push(r),
        error: () => {
          ended = true;
        },
        complete: () => {
          ended = true;
        },
      },
    );
    try {
      await until(() => tg.gateway.openStreams() === 1);
      await sleep(1_500);
      assert.equal(ended, false, `the subscription ended: ${JSON.stringify(results)}`);
      await ok(rest(tg.baseUrl, "POST", `/api/entity/ref/${domain}/user/ada`, { values: { n: 1 } }));
      await until(() => results.length === 1);
      assert.equal(results[0].data?.eventStream?.event?.version, "1", JSON.stringify(results));
    } finally {
      unsubscribe();
      await client.dispose();
    }
  });
});

/** A unary Get over one door, spoken by hand so no client-side timer can end it: only the gateway's deadline can. */
async function heldGet(
  baseUrl: string,
  door: RawDoor | "rest",
  ref: { domain: string; type: string; key: string },
): Promise<{ code: string; status?: number; ms: number }> {
  const started = Date.now();
  const ms = () => Date.now() - started;
  const path = "/stategate.v1.EntityService/Get";
  const message = toBinary(EntityServiceGetRequestSchema, create(EntityServiceGetRequestSchema, ref));
  const body = Buffer.alloc(5 + message.length);
  body.writeUInt32BE(message.length, 1);
  body.set(message, 5);
  if (door === "grpc" || door === "grpc-web") {
    const { code, status } = await rawUnary(baseUrl, door, path, body, { "grpc-timeout": "500m" });
    return door === "grpc" ? { code, ms: ms() } : { code, status, ms: ms() };
  }
  const res =
    door === "connect"
      ? await fetch(`${baseUrl}${path}`, {
          method: "POST",
          headers: { "content-type": "application/json", "connect-protocol-version": "1", "connect-timeout-ms": "500" },
          body: JSON.stringify(ref),
        })
      : await fetch(`${baseUrl}/api/entity/ref/${ref.domain}/${ref.type}/${ref.key}`, {
          headers: { "connect-timeout-ms": "500" },
        });
  const json = (await res.json()) as { code?: string };
  return { code: res.status === 200 ? "ok" : String(json.code), status: res.status, ms: ms() };
}

describe("a unary call whose backend holds it ends with DEADLINE_EXCEEDED at its deadline", () => {
  // MariaDB behind a proxy that, once held, accepts but never forwards: a database that hangs.
  const tag = `dh${Math.random().toString(36).slice(2, 10)}`;
  const dataDir = mkdtempSync(join(tmpdir(), "stategate-held-"));
  let mysql: TcpCut;
  let gw: GatewayProcess;
  let metricsPort: number;
  const ref = { domain: unique("held"), type: "user", key: "ada" };

  before(async () => {
    mysql = await createTcpCut(testBackends.mysql);
    gw = await spawnGateway({
      STATEGATE_DATA_DIR: dataDir,
      STATEGATE_STORAGE_PROVIDER: JSON.stringify(mysqlStorage(tag, `127.0.0.1:${mysql.port}`)),
    });
    const listening = gw.output.find((l) => l.includes('"msg":"stategate listening'));
    metricsPort = (JSON.parse(listening!) as { metricsPort: number }).metricsPort;
    await ok(rest(gw.baseUrl, "POST", `/api/entity/ref/${ref.domain}/${ref.type}/${ref.key}`, { values: { n: 1 } }));
    mysql.hold();
  });
  after(async () => {
    gw?.child.kill("SIGTERM");
    await gw?.exited;
    await mysql?.close();
    await dropMysqlTables(tag);
    rmSync(dataDir, { recursive: true, force: true });
  });

  for (const door of [...rawDoors, "rest"] as const) {
    it(`${door}: entity.get with a 500 ms deadline`, { timeout: 10_000 }, async () => {
      const got = await heldGet(gw.baseUrl, door, ref);
      assert.equal(got.code, "deadline_exceeded", JSON.stringify(got));
      if (door === "connect" || door === "rest") assert.equal(got.status, 504);
      assert.ok(got.ms >= 450 && got.ms < 1_500, `answered after ${got.ms} ms`);
    });
  }

  it(
    "graphql: a query with connect-timeout-ms: 500 has DEADLINE_EXCEEDED in extensions.code",
    {
      timeout: 10_000,
    },
    async () => {
      const { body, ms } = await graphqlPost(
        gw.baseUrl,
        `{ entityGet(domain: "${ref.domain}", type: "user", key: "ada") { entity { version } } }`,
        { "connect-timeout-ms": "500" },
      );
      assert.equal(body.errors?.[0]?.extensions?.code, "DEADLINE_EXCEEDED", JSON.stringify(body));
      assert.ok(ms >= 450 && ms < 1_500, `answered after ${ms} ms`);
    },
  );

  it("the gateway stays healthy, and answers again once the backend does", async () => {
    const healthz = await fetch(`http://127.0.0.1:${metricsPort}/healthz`);
    assert.equal(healthz.status, 200);
    // Other providers still answer while storage hangs.
    const cache = await rest(gw.baseUrl, "GET", `/api/cache/ref/${ref.domain}/missing`);
    assert.equal(cache.status, 404, JSON.stringify(cache.json));
    mysql.restore();
    const got = await ok(rest(gw.baseUrl, "GET", `/api/entity/ref/${ref.domain}/${ref.type}/${ref.key}`));
    assert.equal(got.entity.version, "1");
    await until(async () => (await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).status === 200, 10_000);
    assert.equal(gw.child.exitCode, null, "still running");
  });
});
