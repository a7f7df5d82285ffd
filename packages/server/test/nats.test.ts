import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { NodeClient } from "@stategate/sdk-node";
import { Code, ConnectError, createClient } from "@stategate/sdk-node";
import type { GatewayProcess } from "./helpers.js";
import { dropMysqlTables, sharedBackendEnv, spawnGateways, take, unique, until } from "./helpers.js";

// Two gateway processes over one MariaDB and Memcached, sharing events through
// the NATS server instead of RabbitMQ.
const natsAddr = process.env.STATEGATE_TEST_NATS_ADDR ?? "127.0.0.1:4222";
const tag = `nt${Math.random().toString(36).slice(2, 10)}`;
const dataDir = mkdtempSync(join(tmpdir(), "stategate-nats-"));
let a: GatewayProcess;
let b: GatewayProcess;
let ca: NodeClient;
let cb: NodeClient;

before(async () => {
  const env = {
    ...sharedBackendEnv(tag),
    STATEGATE_CHANNEL_PROVIDER: JSON.stringify({ name: "nats", addr: natsAddr, prefix: tag }),
    STATEGATE_DATA_DIR: dataDir,
  };
  [a, b] = (await spawnGateways(env, 2)) as [GatewayProcess, GatewayProcess];
  ca = createClient({ baseUrl: a.baseUrl, protocol: "grpc" });
  cb = createClient({ baseUrl: b.baseUrl, protocol: "connect" });
});

after(async () => {
  ca?.close();
  cb?.close();
  for (const g of [a, b]) g?.child.kill("SIGTERM");
  await Promise.all([a?.exited, b?.exited]);
  await dropMysqlTables(tag);
  rmSync(dataDir, { recursive: true, force: true });
});

type StreamRequest = { domain: string; type: string; consumerGroup?: string };

/** Follows a stream into `got` ("domain/type/key" per event) until `signal` aborts. */
function follow(client: NodeClient, request: StreamRequest, signal: AbortSignal) {
  const got: string[] = [];
  const done = (async () => {
    try {
      for await (const { event } of client.event.stream(request, { signal })) {
        const entity = event?.entity;
        got.push(`${entity?.domain}/${entity?.type}/${entity?.key}`);
      }
    } catch (err) {
      if (ConnectError.from(err).code !== Code.Canceled) throw err;
    }
  })();
  return { got, done };
}

const keysOf = (got: string[]) => got.map((entry) => entry.slice(entry.lastIndexOf("/") + 1));

describe("two gateways sharing a NATS channel", () => {
  it("a Set through A reaches a stream on B", async () => {
    const domain = unique("xa");
    const first = await ca.entity.set({ domain, type: "t", key: "k0", values: { n: 0 } });
    const abort = new AbortController();
    // History from MySQL first, then live events over NATS.
    const stream = cb.event.stream(
      { domain, type: "*", afterPosition: (first.event?.position ?? 1n) - 1n },
      { signal: abort.signal },
    );
    const reading = take(stream, 3);
    await ca.entity.set({ domain, type: "t", key: "k1", values: { n: 1 } });
    await ca.entity.edit({ domain, type: "t", key: "k0", values: { more: true } });
    const got = await reading;
    abort.abort();
    assert.deepEqual(
      got.map((r) => `${r.event?.entity?.key}@${r.event?.version}`),
      ["k0@1", "k1@1", "k0@2"],
    );
  });

  it("a domain containing a dot does not leak into a stream for another domain or type", async () => {
    const u = unique("dot");
    const abort = new AbortController();
    const streams = {
      typeGlob: follow(cb, { domain: u, type: "b.*" }, abort.signal),
      anyType: follow(cb, { domain: u, type: "*" }, abort.signal),
      dotted: follow(cb, { domain: `${u}.b`, type: "*" }, abort.signal),
      exact: follow(cb, { domain: `${u}.b`, type: "c" }, abort.signal),
    };
    // Every stream is live once it has seen a probe written after it opened.
    await until(async () => {
      const key = `probe${Date.now()}`;
      await ca.entity.set({ domain: u, type: "b.probe", key, values: {} });
      await ca.entity.set({ domain: `${u}.b`, type: "c", key, values: {} });
      return Object.values(streams).every((s) => s.got.length > 0);
    });
    await sleep(300);
    for (const s of Object.values(streams)) s.got.length = 0;

    // Were domain and type joined into NATS subject tokens, `<u>.b` + `c` and `<u>` + `b.c` would meet.
    await ca.entity.set({ domain: `${u}.b`, type: "c", key: "k1", values: {} });
    await ca.entity.set({ domain: u, type: "b.c", key: "k2", values: {} });
    await ca.entity.set({ domain: u, type: "b", key: "k3", values: {} });
    await ca.entity.set({ domain: `${u}.b.c`, type: "x", key: "k4", values: {} });
    await until(() => streams.anyType.got.length >= 2 && streams.dotted.got.length >= 1, 10_000);
    await sleep(500);
    abort.abort();
    await Promise.all(Object.values(streams).map((s) => s.done));
    assert.deepEqual(streams.typeGlob.got, [`${u}/b.c/k2`]);
    assert.deepEqual(streams.anyType.got, [`${u}/b.c/k2`, `${u}/b/k3`]);
    assert.deepEqual(streams.dotted.got, [`${u}.b/c/k1`]);
    assert.deepEqual(streams.exact.got, [`${u}.b/c/k1`]);
  });

  it("a consumer group with a member on each gateway gets each of 50 events exactly once", async () => {
    const domain = unique("grp");
    // The gateway refuses whitespace; dots, wildcards and unicode reach the channel.
    const group = "workers.*>✓";
    const abortA = new AbortController();
    const abortB = new AbortController();
    const onA = follow(ca, { domain, type: "*", consumerGroup: group }, abortA.signal);
    const onB = follow(cb, { domain, type: "*", consumerGroup: group }, abortB.signal);
    // Both members are subscribed once probes have reached each of them.
    await until(async () => {
      await ca.entity.set({ domain, type: "probe", key: `p${Date.now()}`, values: {} });
      return onA.got.length > 0 && onB.got.length > 0;
    });
    await sleep(300);
    onA.got.length = 0;
    onB.got.length = 0;
    const keys = Array.from({ length: 50 }, (_, i) => `e${i}`);
    for (const [i, key] of keys.entries())
      await (i % 2 ? ca : cb).entity.set({ domain, type: "job", key, values: { i } });
    await until(() => onA.got.length + onB.got.length >= 50, 15_000);
    await sleep(500);
    abortA.abort();
    abortB.abort();
    await Promise.all([onA.done, onB.done]);
    const all = keysOf([...onA.got, ...onB.got]);
    assert.equal(all.length, 50, "no event twice");
    assert.deepEqual([...new Set(all)].sort(), [...keys].sort(), "every event once");
    assert.ok(
      onA.got.length > 0 && onB.got.length > 0,
      `both members got work (A ${onA.got.length}, B ${onB.got.length})`,
    );
  });
});
