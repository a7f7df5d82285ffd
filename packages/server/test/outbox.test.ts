import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { after, afterEach, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createSqliteStorage, createStorage } from "@stategate/providers";
import { Code, ConnectError } from "@stategate/sdk-node";
import type { BackendChoice, TestGateway } from "./helpers.js";
import { dropMysqlTables, dropPostgresTables, sharedBackendEnv, startTestGateway, unique, until } from "./helpers.js";

let tg: TestGateway;
before(async () => {
  // Sweep every 50 ms with no grace: events are routinely published twice.
  tg = await startTestGateway({}, { relay: { intervalMs: 50, graceMs: 0 } });
});
after(async () => {
  await tg.close();
});
afterEach(async () => {
  await until(() => tg.gateway.openStreams() === 0);
});

/** Streams a domain's events on a gateway (the SQLite one by default) into an array until aborted. */
function follow(domain: string, signal: AbortSignal, on: TestGateway = tg): { got: string[]; done: Promise<void> } {
  const got: string[] = [];
  const client = on.client({ protocol: "grpc" });
  const done = (async () => {
    try {
      for await (const { event } of client.event.stream({ domain, type: "*" }, { signal })) {
        got.push(`${event?.entity?.key}@${event?.version}`);
      }
    } catch (err) {
      if (ConnectError.from(err).code !== Code.Canceled) throw err;
    }
  })();
  return { got, done };
}

it("delivers each event once per subscriber even when the outbox relays it again", async () => {
  const domain = unique("dup");
  const abort = new AbortController();
  const stream = follow(domain, abort.signal);
  await until(() => tg.gateway.openStreams() === 1);
  const client = tg.client();
  await Promise.all(
    Array.from({ length: 50 }, (_, i) => client.entity.set({ domain, type: "t", key: `k${i}`, values: { i } })),
  );
  await until(() => stream.got.length >= 50);
  await sleep(300); // several sweeps
  abort.abort();
  await stream.done;
  assert.equal(stream.got.length, 50, "no duplicates");
  assert.equal(new Set(stream.got).size, 50);
});

it("relays an event whose gateway died between commit and publish", async () => {
  const domain = unique("orphan");
  const abort = new AbortController();
  const stream = follow(domain, abort.signal);
  await until(() => tg.gateway.openStreams() === 1);
  // Another process commits to the same store and never publishes: what a gateway killed right after commit leaves.
  const other = await createSqliteStorage({ path: join(tg.dataDir, "stategate.db") });
  try {
    await other.commit({
      expectedVersion: 0,
      state: { from: "the dead gateway" },
      event: {
        id: randomUUID(),
        domain,
        type: "t",
        key: "orphan",
        values: { from: "the dead gateway" },
        version: 1,
        operation: "set",
        method: "/stategate.v1.EntityService/Set",
        claims: {},
        time: BigInt(Date.now()) * 1_000_000n,
      },
    });
  } finally {
    await other.close();
  }
  await until(() => stream.got.length === 1, 5_000);
  abort.abort();
  await stream.done;
  assert.deepEqual(stream.got, ["orphan@1"]);
});

/**
 * The same over shared storage, with two gateways: a third party commits an
 * event straight into the tables and never publishes it, as a gateway killed
 * right after its commit would. Both gateways sweep the outbox often and with
 * no grace, so both relay the event; each stream still gets it once.
 */
// Gateways that share storage share a cache too: the outbox sweep is claimed through it.
const sharedRows: BackendChoice[] = [
  { storage: "mysql", cache: "memcached", channel: "amqp" },
  { storage: "postgres", cache: "redis", channel: "redis" },
];

/** A first Set of `key`, as a gateway commits it before publishing. */
function orphanCommit(domain: string, key: string) {
  const values = { from: "the dead gateway" };
  return {
    expectedVersion: 0,
    state: values,
    event: {
      id: randomUUID(),
      domain,
      type: "t",
      key,
      values,
      version: 1,
      operation: "set" as const,
      method: "/stategate.v1.EntityService/Set",
      claims: {},
      time: BigInt(Date.now()) * 1_000_000n,
    },
  };
}

for (const row of sharedRows) {
  describe(`two gateways over ${row.storage} + ${row.channel}`, () => {
    // A table prefix (and channel prefix) of its own: no other test sees these events.
    const tag = `ob${Math.random().toString(36).slice(2, 10)}`;
    const env = sharedBackendEnv(tag, row);
    let a: TestGateway;
    let b: TestGateway;

    before(async () => {
      const relay = { intervalMs: 50, graceMs: 0 };
      [a, b] = await Promise.all([startTestGateway(env, { relay }), startTestGateway(env, { relay })]);
    });
    after(async () => {
      await Promise.all([a?.close(), b?.close()]);
      if (row.storage === "mysql") await dropMysqlTables(tag);
      else await dropPostgresTables(tag);
    });

    it("relays an event whose gateway died between commit and publish to a stream on each gateway, once", async () => {
      const domain = unique("orphan");
      const abort = new AbortController();
      const onA = follow(domain, abort.signal, a);
      const onB = follow(domain, abort.signal, b);
      // Both streams hear the channel once a probe written through A reaches each.
      const writer = a.client();
      await until(async () => {
        await writer.entity.set({ domain, type: "probe", key: unique("p"), values: {} });
        await sleep(50);
        return onA.got.length > 0 && onB.got.length > 0;
      });
      const other = await createStorage(JSON.parse(env.STATEGATE_STORAGE_PROVIDER as string), { dataDir: a.dataDir });
      try {
        const { position } = await other.commit(orphanCommit(domain, "orphan"));
        const orphans = () => [onA, onB].map((s) => s.got.filter((k) => k.startsWith("orphan")));
        await until(() => orphans().every((got) => got.length > 0), 5_000);
        await sleep(500); // ten sweeps of each gateway: any copy would be through by now
        abort.abort();
        await Promise.all([onA.done, onB.done]);
        assert.deepEqual(orphans(), [["orphan@1"], ["orphan@1"]]);
        // Relayed, so marked: later sweeps leave it alone.
        await until(
          async () =>
            !(await other.unpublishedEvents(BigInt(Date.now()) * 1_000_000n, 500)).some((e) => e.position === position),
        );
      } finally {
        await other.close();
      }
    });

    it("relays orphaned events to a consumer group spanning both gateways, each to one member once", async () => {
      const domain = unique("orphan-group");
      const abort = new AbortController();
      const got: string[] = [];
      const member = async (on: TestGateway) => {
        try {
          const request = { domain, type: "t", consumerGroup: "workers" };
          for await (const { event } of on.client().event.stream(request, { signal: abort.signal })) {
            got.push(`${event?.entity?.key}@${event?.version}`);
          }
        } catch (err) {
          if (ConnectError.from(err).code !== Code.Canceled) throw err;
        }
      };
      const members = [member(a), member(b)];
      await until(() => a.gateway.openStreams() === 1 && b.gateway.openStreams() === 1);
      await sleep(300); // the group subscriptions reach the channel
      const other = await createStorage(JSON.parse(env.STATEGATE_STORAGE_PROVIDER as string), {
        dataDir: a.dataDir,
      });
      const keys = Array.from({ length: 20 }, (_, i) => `orphan${i}`);
      try {
        for (const key of keys) await other.commit(orphanCommit(domain, key));
      } finally {
        await other.close();
      }
      await until(() => keys.every((key) => got.includes(`${key}@1`)), 5_000);
      await sleep(500);
      abort.abort();
      await Promise.all(members);
      assert.deepEqual([...got].sort(), keys.map((key) => `${key}@1`).sort());
    });
  });
}
