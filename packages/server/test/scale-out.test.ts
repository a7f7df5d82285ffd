import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { NodeClient } from "@stategate/sdk-node";
import { Code, ConnectError, createClient, expiresIn } from "@stategate/sdk-node";
import type { BackendChoice, GatewayProcess } from "./helpers.js";
import {
  dropMysqlTables,
  dropPostgresTables,
  sharedBackendEnv,
  spawnGateways,
  take,
  unique,
  until,
} from "./helpers.js";

/**
 * Two gateway processes on different ports over shared storage, cache and
 * channel. The rows cover every pair of backends (storage × cache, storage ×
 * channel, cache × channel) in six two-gateway runs instead of all twelve
 * combinations; the embedded SQLite store is single-gateway only, covered by
 * the other test files.
 */
const matrix: BackendChoice[] = [
  { storage: "mysql", cache: "memcached", channel: "amqp" },
  { storage: "postgres", cache: "redis", channel: "amqp" },
  { storage: "mysql", cache: "redis", channel: "redis" },
  { storage: "postgres", cache: "memcached", channel: "redis" },
  { storage: "mysql", cache: "memcached", channel: "nats" },
  { storage: "postgres", cache: "redis", channel: "nats" },
];

/** Follows a stream into `got` until `signal` aborts. */
function follow(client: NodeClient, domain: string, group: string, signal: AbortSignal) {
  const got: string[] = [];
  const done = (async () => {
    try {
      for await (const { event } of client.event.stream({ domain, type: "*", consumerGroup: group }, { signal })) {
        got.push(event?.entity?.key ?? "");
      }
    } catch (err) {
      if (ConnectError.from(err).code !== Code.Canceled) throw err;
    }
  })();
  return { got, done };
}

for (const choice of matrix) {
  describe(`two gateways over ${choice.storage} + ${choice.cache} + ${choice.channel}`, () => {
    const tag = `so${Math.random().toString(36).slice(2, 10)}`;
    const dataDir = mkdtempSync(join(tmpdir(), "stategate-scale-"));
    let a: GatewayProcess;
    let b: GatewayProcess;
    let ca: NodeClient;
    let cb: NodeClient;

    before(async () => {
      const env = { ...sharedBackendEnv(tag, choice), STATEGATE_DATA_DIR: dataDir };
      // Started together: schema creation must be safe when two gateways race.
      [a, b] = (await spawnGateways(env, 2)) as [GatewayProcess, GatewayProcess];
      ca = createClient({ baseUrl: a.baseUrl, protocol: "grpc" });
      cb = createClient({ baseUrl: b.baseUrl, protocol: "connect" });
    });

    after(async () => {
      ca?.close();
      cb?.close();
      for (const g of [a, b]) g?.child.kill("SIGTERM");
      await Promise.all([a?.exited, b?.exited]);
      await (choice.storage === "postgres" ? dropPostgresTables(tag) : dropMysqlTables(tag));
      rmSync(dataDir, { recursive: true, force: true });
    });

    it("a Set through A reaches a stream on B", async () => {
      const domain = unique("xa");
      const first = await ca.entity.set({ domain, type: "t", key: "k0", values: { n: 0 } });
      const abort = new AbortController();
      // Resume from before the first Set: history from storage, then live events over the channel.
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
      assert.deepEqual((await cb.entity.get({ domain, type: "t", key: "k0" })).entity?.values, { n: 0, more: true });
    });

    it("a consumer group with a member on each gateway gets each of 100 events exactly once, and survives a member leaving", async () => {
      const domain = unique("grp");
      const abortA = new AbortController();
      const abortB = new AbortController();
      const onA = follow(ca, domain, "workers", abortA.signal);
      const onB = follow(cb, domain, "workers", abortB.signal);
      // Both members are subscribed once a probe event reaches one of them.
      await until(async () => {
        await ca.entity.set({ domain, type: "probe", key: `p${Date.now()}`, values: {} });
        return onA.got.length + onB.got.length > 0;
      });
      await sleep(300);
      onA.got.length = 0;
      onB.got.length = 0;
      const keys = Array.from({ length: 100 }, (_, i) => `e${i}`);
      for (const [i, key] of keys.entries())
        await (i % 2 ? ca : cb).entity.set({ domain, type: "job", key, values: { i } });
      await until(() => onA.got.length + onB.got.length >= 100, 15_000);
      await sleep(500);
      const all = [...onA.got, ...onB.got].filter((k) => k.startsWith("e"));
      assert.equal(all.length, 100, "no event twice");
      assert.deepEqual([...new Set(all)].sort(), [...keys].sort(), "every event once");
      assert.ok(
        onA.got.length > 0 && onB.got.length > 0,
        `both members got work (A ${onA.got.length}, B ${onB.got.length})`,
      );

      abortB.abort();
      await onB.done;
      await sleep(500);
      const before = onA.got.length;
      const later = Array.from({ length: 20 }, (_, i) => `late${i}`);
      for (const key of later) await cb.entity.set({ domain, type: "job", key, values: {} });
      await until(() => onA.got.length - before >= 20, 5_000);
      assert.deepEqual(onA.got.slice(before).sort(), [...later].sort(), "after B left, A gets every event");
      abortA.abort();
      await onA.done;
    });

    it("a lock taken through A is refused through B until released", async () => {
      const domain = unique("lock");
      const { token } = await ca.mutex.lock({ domain, key: "job", exp: expiresIn(30_000) });
      await assert.rejects(
        cb.mutex.lock({ domain, key: "job", exp: expiresIn(30_000) }),
        (e) => ConnectError.from(e).code === Code.AlreadyExists,
      );
      await assert.rejects(
        cb.mutex.unlock({ domain, key: "job", token: "guess" }),
        (e) => ConnectError.from(e).code === Code.FailedPrecondition,
      );
      await ca.mutex.unlock({ domain, key: "job", token });
      const taken = await cb.mutex.lock({ domain, key: "job", exp: expiresIn(30_000) });
      await ca.mutex.unlock({ domain, key: "job", token: taken.token });
    });

    it("a cache value set through A is read through B", async () => {
      const domain = unique("cache");
      await ca.cache.set({ domain, key: "k", value: { hello: "wörld 👋" }, exp: expiresIn(30_000) });
      assert.deepEqual((await cb.cache.get({ domain, key: "k" })).value, { hello: "wörld 👋" });
    });

    it("MariaDB gives back identical values through Get, entity Search and event Search", async () => {
      const domain = unique("values");
      const values = {
        name: "Zoë 🦊 — 東京",
        nested: { list: [1, "two", { three: [true, null] }], empty: {}, none: [] },
        big: 9007199254740991,
        tiny: -1.25e-7,
        flag: false,
        nothing: null,
        combining: "e\u0301",
      };
      const key = "clé-🔑-キー";
      await ca.entity.set({ domain, type: "doc", key, values });
      const { entity } = await cb.entity.get({ domain, type: "doc", key });
      const found = await cb.entity
        .search({ domain, type: "doc", filter: JSON.stringify({ "nested.empty": null }) })
        .catch(() => undefined);
      const searched = await cb.entity.search({ domain, type: "doc", filter: JSON.stringify({ name: values.name }) });
      const { events } = await cb.event.search({ domain, type: "doc", key });
      assert.equal(entity?.key, key);
      assert.deepEqual(entity?.values, values);
      assert.deepEqual(searched.entities[0]?.values, values);
      assert.equal(searched.entities[0]?.key, key);
      assert.deepEqual(events[0]?.entity?.values, values);
      assert.deepEqual(found?.entities ?? [], [], "an object is not JSON null");
    });

    it("concurrent Edits through both gateways never both win a version", async () => {
      const ref = { domain: unique("race"), type: "t", key: "k" };
      await ca.entity.set({ ...ref, values: { start: true } });
      const results = await Promise.allSettled(
        Array.from({ length: 10 }, (_, i) =>
          (i % 2 ? ca : cb).entity.edit({ ...ref, values: { [`w${i}`]: i }, expectedVersion: 1n }),
        ),
      );
      assert.equal(results.filter((r) => r.status === "fulfilled").length, 1);
      const { events } = await ca.event.search({ ...ref });
      assert.deepEqual(
        events.map((e) => e.version),
        [1n, 2n],
      );
    });
  });
}
