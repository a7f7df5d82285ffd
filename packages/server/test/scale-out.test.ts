import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { fromBinary } from "@bufbuild/protobuf";
import type { Event } from "@stategate/api";
import { EventSchema } from "@stategate/api";
import type { Channel, Unsubscribe } from "@stategate/providers";
import { createChannel } from "@stategate/providers";
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

/** One row of the matrix: the backends, and how many gateway processes share them. */
interface Row extends BackendChoice {
  gateways: 1 | 2;
}

/**
 * Gateway processes over shared storage, cache and channel: the matrix
 * storage {sqlite, mysql, postgres} × cache {memcached, redis} × channel
 * {amqp, redis, nats} of issue 8, as a covering subset of nine rows instead of
 * all eighteen combinations.
 *
 * - Two gateways on different ports, six rows: every pair of backends
 *   (storage × cache, storage × channel, cache × channel) over mysql and
 *   postgres appears in at least one row.
 * - One gateway, three rows: SQLite is an embedded file owned by one gateway
 *   process, so it takes part only in single-gateway rows. These cover
 *   sqlite × each cache and sqlite × each channel; with the rows above, every
 *   pair of backends in the matrix is run.
 *
 * Every row runs the same tests. Stream tests open live streams (no
 * afterPosition), so every event they get came over the row's channel, never
 * from a storage catch-up. A single-gateway row runs them with two clients on
 * its one gateway.
 */
const matrix: Row[] = [
  { storage: "mysql", cache: "memcached", channel: "amqp", gateways: 2 },
  { storage: "postgres", cache: "redis", channel: "amqp", gateways: 2 },
  { storage: "mysql", cache: "redis", channel: "redis", gateways: 2 },
  { storage: "postgres", cache: "memcached", channel: "redis", gateways: 2 },
  { storage: "mysql", cache: "memcached", channel: "nats", gateways: 2 },
  { storage: "postgres", cache: "redis", channel: "nats", gateways: 2 },
  { storage: "sqlite", cache: "memcached", channel: "amqp", gateways: 1 },
  { storage: "sqlite", cache: "redis", channel: "redis", gateways: 1 },
  { storage: "sqlite", cache: "redis", channel: "nats", gateways: 1 },
];

const storageNames = { mysql: "MariaDB", postgres: "PostgreSQL", sqlite: "SQLite" } as const;

/** A stream request without afterPosition: live events only. */
type LiveRequest = { domain: string; type: string; consumerGroup?: string };

/** Follows a live stream into `got` until `signal` aborts. */
function follow(client: NodeClient, request: LiveRequest, signal: AbortSignal) {
  const got: Event[] = [];
  const done = (async () => {
    try {
      for await (const { event } of client.event.stream(request, { signal })) if (event) got.push(event);
    } catch (err) {
      if (ConnectError.from(err).code !== Code.Canceled) throw err;
    }
  })();
  return { got, done };
}

/**
 * Sets probe entities (type "probe") in `domain` through `writer` until
 * `arrived` reports one: from then on the live streams it watches are
 * subscribed to the channel, and miss nothing written afterwards.
 */
async function probe(writer: NodeClient, domain: string, arrived: () => boolean): Promise<void> {
  await until(async () => {
    await writer.entity.set({ domain, type: "probe", key: unique("p"), values: {} });
    await sleep(50);
    return arrived();
  });
}

const isProbe = (e: Event) => e.entity?.type === "probe";
const keyAtVersion = (e: Event) => `${e.entity?.key}@${e.version}`;

/** Fails if a gateway's channel reconnected: its streams may then have caught up from storage. */
function assertNoReconnect(gateways: GatewayProcess[]): void {
  for (const g of gateways) {
    const line = g.output.find((l) => l.includes("channel reconnected"));
    assert.equal(line, undefined, "the channel reconnected, so storage may have filled in the stream");
  }
}

for (const row of matrix) {
  const two = row.gateways === 2;
  const title = `${two ? "two gateways" : "one gateway"} over ${row.storage} + ${row.cache} + ${row.channel}`;
  describe(title, () => {
    const tag = `so${Math.random().toString(36).slice(2, 10)}`;
    const dataDir = mkdtempSync(join(tmpdir(), "stategate-scale-"));
    let gateways: GatewayProcess[] = [];
    /** Through gateway A, over gRPC. */
    let ca: NodeClient;
    /** Through gateway B (on a single-gateway row, the same gateway), over Connect. */
    let cb: NodeClient;
    /** On a single-gateway row: this test process on the same channel, watching events cross it. */
    let observer: Channel | undefined;
    let stopObserving: Unsubscribe | undefined;
    const observed: Event[] = [];

    before(async () => {
      const backends = sharedBackendEnv(tag, row);
      const env = { ...backends, STATEGATE_DATA_DIR: dataDir };
      // Started together: schema creation must be safe when two gateways race.
      gateways = await spawnGateways(env, row.gateways);
      const [a, b = a] = gateways as [GatewayProcess, GatewayProcess?];
      ca = createClient({ baseUrl: a.baseUrl, protocol: "grpc" });
      cb = createClient({ baseUrl: b.baseUrl, protocol: "connect" });
      if (!two) {
        observer = await createChannel(JSON.parse(backends.STATEGATE_CHANNEL_PROVIDER as string));
        stopObserving = await observer.subscribe("events", (payload) => {
          observed.push(fromBinary(EventSchema, payload));
        });
      }
    });

    after(async () => {
      ca?.close();
      cb?.close();
      await stopObserving?.();
      await observer?.close();
      for (const g of gateways) g.child.kill("SIGTERM");
      await Promise.all(gateways.map((g) => g.exited));
      if (row.storage === "postgres") await dropPostgresTables(tag);
      if (row.storage === "mysql") await dropMysqlTables(tag);
      rmSync(dataDir, { recursive: true, force: true });
    });

    const setName = two
      ? "a Set through A reaches a live stream on B over the channel"
      : "a Set reaches a live stream over the channel, and crosses the channel's server";
    it(setName, async () => {
      const domain = unique("xa");
      const abort = new AbortController();
      // Live (no afterPosition): the stream never reads storage, so on B only
      // the channel can bring what A commits.
      const onB = follow(cb, { domain, type: "*" }, abort.signal);
      await probe(ca, domain, () => onB.got.length > 0);
      const first = await ca.entity.set({ domain, type: "t", key: "k0", values: { n: 0 } });
      await ca.entity.set({ domain, type: "t", key: "k1", values: { n: 1 } });
      await ca.entity.edit({ domain, type: "t", key: "k0", values: { more: true } });
      const wanted = ["k0@1", "k1@1", "k0@2"];
      const live = () => onB.got.filter((e) => !isProbe(e));
      await until(() => live().length >= wanted.length);
      await sleep(200); // nothing more (no copies) arrives
      abort.abort();
      await onB.done;
      assert.deepEqual(live().map(keyAtVersion), wanted);
      assertNoReconnect(gateways);
      if (!two) {
        // The gateway did not hand the events to its stream in memory: they went
        // through the channel's server, where another subscriber saw them.
        const crossed = observed.filter((e) => e.entity?.domain === domain && !isProbe(e));
        assert.deepEqual(crossed.map(keyAtVersion), wanted);
        assert.deepEqual(
          crossed.map((e) => e.position),
          live().map((e) => e.position),
        );
      }
      assert.deepEqual((await cb.entity.get({ domain, type: "t", key: "k0" })).entity?.values, { n: 0, more: true });
      // The same history is in the shared storage, for a stream that resumes.
      const resumed = new AbortController();
      const history = await take(
        cb.event.stream(
          { domain, type: "t", afterPosition: (first.event?.position ?? 1n) - 1n },
          { signal: resumed.signal },
        ),
        3,
      );
      resumed.abort();
      assert.deepEqual(
        history.map((r) => keyAtVersion(r.event as Event)),
        wanted,
      );
    });

    const groupName = two
      ? "a consumer group with a member on each gateway gets each of 100 events exactly once, and survives a member leaving"
      : "a consumer group with two members on the gateway gets each of 100 events exactly once, and survives a member leaving";
    it(groupName, async () => {
      const domain = unique("grp");
      const abortA = new AbortController();
      const abortB = new AbortController();
      const request = { domain, type: "*", consumerGroup: "workers" };
      const onA = follow(ca, request, abortA.signal);
      const onB = follow(cb, request, abortB.signal);
      const keysA = () => onA.got.map((e) => e.entity?.key ?? "");
      const keysB = () => onB.got.map((e) => e.entity?.key ?? "");
      // Both members are subscribed once a probe event reaches each of them.
      await probe(ca, domain, () => onA.got.length > 0 && onB.got.length > 0);
      await sleep(300);
      onA.got.length = 0;
      onB.got.length = 0;
      const keys = Array.from({ length: 100 }, (_, i) => `e${i}`);
      for (const [i, key] of keys.entries())
        await (i % 2 ? ca : cb).entity.set({ domain, type: "job", key, values: { i } });
      await until(() => onA.got.length + onB.got.length >= 100, 15_000);
      await sleep(500);
      const all = [...keysA(), ...keysB()].filter((k) => k.startsWith("e"));
      assert.equal(all.length, 100, "no event twice");
      assert.deepEqual([...new Set(all)].sort(), [...keys].sort(), "every event once");
      assert.ok(
        onA.got.length > 0 && onB.got.length > 0,
        `both members got work (A ${onA.got.length}, B ${onB.got.length})`,
      );
      if (!two) {
        // Both members share the gateway's one group subscription; what they
        // were handed still went through the channel's server.
        const crossed = observed.filter((e) => e.entity?.domain === domain && e.entity?.type === "job");
        assert.deepEqual(crossed.map((e) => e.entity?.key).sort(), [...keys].sort(), "the events crossed the channel");
      }

      abortB.abort();
      await onB.done;
      await sleep(500);
      const before = onA.got.length;
      const later = Array.from({ length: 20 }, (_, i) => `late${i}`);
      for (const key of later) await cb.entity.set({ domain, type: "job", key, values: {} });
      await until(() => onA.got.length - before >= 20, 5_000);
      assert.deepEqual(keysA().slice(before).sort(), [...later].sort(), "after B left, A gets every event");
      abortA.abort();
      await onA.done;
    });

    const lockName = two
      ? "a lock taken through A is refused through B until released"
      : "a lock taken by one client is refused to another until released";
    it(lockName, async () => {
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

    it(
      two ? "a cache value set through A is read through B" : "a cache value set by one client is read by another",
      async () => {
        const domain = unique("cache");
        await ca.cache.set({ domain, key: "k", value: { hello: "wörld 👋" }, exp: expiresIn(30_000) });
        assert.deepEqual((await cb.cache.get({ domain, key: "k" })).value, { hello: "wörld 👋" });
      },
    );

    it(`${storageNames[row.storage]} gives back identical values through Get, entity Search and event Search`, async () => {
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
      // An empty object is not JSON null: a null filter on it finds nothing.
      const notNull = await cb.entity.search({ domain, type: "doc", filter: JSON.stringify({ "nested.empty": null }) });
      const isNull = await cb.entity.search({ domain, type: "doc", filter: JSON.stringify({ nothing: null }) });
      const searched = await cb.entity.search({ domain, type: "doc", filter: JSON.stringify({ name: values.name }) });
      const { events } = await cb.event.search({ domain, type: "doc", key });
      assert.equal(entity?.key, key);
      assert.deepEqual(entity?.values, values);
      assert.deepEqual(searched.entities[0]?.values, values);
      assert.equal(searched.entities[0]?.key, key);
      assert.deepEqual(events[0]?.entity?.values, values);
      assert.deepEqual(notNull.entities, [], "an object is not JSON null");
      assert.deepEqual(
        isNull.entities.map((e) => e.key),
        [key],
        "a JSON null matches a null filter",
      );
    });

    it(
      two
        ? "concurrent Edits through both gateways never both win a version"
        : "concurrent Edits never both win a version",
      async () => {
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
      },
    );
  });
}
