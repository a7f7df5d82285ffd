import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { collect, createTag, numbered, publishAll } from "../src/conformance/channel-tag.js";
import { sleep, waitFor } from "../src/conformance/helpers.js";
import { ProviderUnavailableError } from "../src/errors.js";
import {
  closeConnectionsOf,
  sorted,
  startRedis,
  stopRedis,
  uniqueGroup,
  uniquePrefix,
  watchEscapes,
  watched,
} from "./redis-channel-helpers.js";

// These tests take the shared Redis down: the test runner runs *.serial.test.ts files alone.
describe("redis channel: server outages", () => {
  it("resumes subscriptions after the server closes its connections", async (t) => {
    const escapes = watchEscapes();
    const prefix = uniquePrefix();
    const tag = createTag();
    const group = uniqueGroup();
    const [a, b] = await Promise.all([watched(prefix, { groupIdleMs: 1000 }), watched(prefix, { groupIdleMs: 1000 })]);
    try {
      const plain = await collect(a.channel, "events", tag);
      const members = [await collect(a.channel, "events", tag, group), await collect(b.channel, "events", tag, group)];
      // What a gateway's event stream listens for, to catch up from storage after an outage.
      let reconnects = 0;
      const watcher = await a.channel.subscribe("events", () => {}, { onReconnect: () => reconnects++ });
      // The group outlives the connections: its entries wait in the stream, so nothing is missed.
      let groupReconnects = 0;
      const groupWatcher = await b.channel.subscribe("events", () => {}, {
        group: uniqueGroup(),
        onReconnect: () => groupReconnects++,
      });
      await b.channel.publish("events", tag.wrap("before"));
      await waitFor(() => plain.received.length === 1, "the payload before the outage", 3000);

      const started = Date.now();
      assert.equal(await closeConnectionsOf(prefix), 7, "publishing and pub/sub on each, three members");
      const closedAfter = Date.now() - started;
      await waitFor(() => a.changes.includes(false) && b.changes.includes(false), "both to notice", 3000);
      await waitFor(() => a.connected() && b.connected(), "both to reconnect", 10_000);
      t.diagnostic(
        `connections closed in ${closedAfter} ms; both back ${Date.now() - started} ms after the close began`,
      );

      const later = numbered("after", 10);
      await publishAll(b.channel, "events", tag, later);
      await waitFor(
        () => plain.received.length === 11 && members.flatMap((m) => m.received).length === 11,
        "the payloads after recovery",
        5000,
      );
      await sleep(300);
      assert.equal(reconnects, 1, "the subscription heard of the outage once, after it was subscribed again");
      assert.equal(groupReconnects, 0, "the group member missed nothing");
      await watcher();
      await groupWatcher();
      assert.deepEqual(plain.received, ["before", ...later]);
      assert.deepEqual(sorted(members.flatMap((m) => m.received)), sorted(["before", ...later]));
      assert.deepEqual(escapes.escaped, []);
    } finally {
      escapes.stop();
      await Promise.all([a.channel.close(), b.channel.close()]);
    }
  });

  it("fails fast during a server restart (shutdown nosave, start) and delivers again after it", async (t) => {
    const escapes = watchEscapes();
    const prefix = uniquePrefix();
    const tag = createTag();
    const group = uniqueGroup();
    const [a, b] = await Promise.all([watched(prefix, { groupIdleMs: 1000 }), watched(prefix, { groupIdleMs: 1000 })]);
    try {
      const plain = await collect(a.channel, "messages", tag);
      const members = [
        await collect(a.channel, "messages", tag, group),
        await collect(b.channel, "messages", tag, group),
      ];
      // Both kinds of subscription are told: the restart lost pub/sub and the group's stream alike.
      const reconnects = { plain: 0, group: 0 };
      await a.channel.subscribe("messages", () => {}, { onReconnect: () => reconnects.plain++ });
      await b.channel.subscribe("messages", () => {}, { group: uniqueGroup(), onReconnect: () => reconnects.group++ });
      // A publisher that keeps going through the restart, as gateways do.
      const ok: string[] = [];
      const failed: number[] = [];
      let publishing = true;
      const publisher = (async () => {
        for (let i = 0; publishing; i++) {
          const started = Date.now();
          try {
            await b.channel.publish("messages", tag.wrap(`p-${i}`));
            ok.push(`p-${i}`);
          } catch (error) {
            assert.ok(error instanceof ProviderUnavailableError, String(error));
            failed.push(Date.now() - started);
          }
          await sleep(10);
        }
      })();
      await waitFor(() => ok.length >= 20, "payloads before the restart", 3000);

      let started = Date.now();
      await stopRedis();
      t.diagnostic(`shutdown nosave took ${Date.now() - started} ms`);
      await waitFor(() => !a.connected() && !b.connected(), "both to notice", 3000);
      started = Date.now();
      await assert.rejects(b.channel.publish("messages", tag.wrap("lost")), ProviderUnavailableError);
      await assert.rejects(a.channel.ping(), ProviderUnavailableError);
      await assert.rejects(
        a.channel.subscribe("messages", () => {}),
        ProviderUnavailableError,
      );
      const failedIn = Date.now() - started;
      assert.ok(failedIn < 1000, `calls failed fast (${failedIn} ms)`);
      await sleep(1000);

      started = Date.now();
      await startRedis();
      t.diagnostic(`start took ${Date.now() - started} ms`);
      await waitFor(() => a.connected() && b.connected(), "both to reconnect", 15_000);
      const backAfter = Date.now() - started;
      await waitFor(() => reconnects.plain === 1 && reconnects.group === 1, "both subscriptions to hear of it", 5000);
      t.diagnostic(
        `both reconnected ${backAfter} ms after the start began; ${failed.length} publishes failed meanwhile, ` +
          `the slowest in ${Math.max(...failed)} ms; calls failed in ${failedIn} ms`,
      );
      publishing = false;
      await publisher;
      assert.ok(failed.length > 0 && Math.max(...failed) < 1000, "publishes during the outage failed fast");

      const later = numbered("after", 10);
      await publishAll(b.channel, "messages", tag, later);
      await waitFor(
        () =>
          later.every((p) => plain.received.includes(p)) &&
          later.every((p) => members.some((m) => m.received.includes(p))),
        "the payloads after the restart",
        5000,
      );
      await sleep(300);
      assert.deepEqual(plain.received.slice(-10), later);
      const all = members.flatMap((m) => m.received);
      assert.equal(new Set(all).size, all.length, "no group payload twice");
      assert.deepEqual(sorted(all.filter((p) => p.startsWith("after-"))), sorted(later));
      // Every payload published OK while the pub/sub connection was up arrived, in order.
      assert.deepEqual(
        plain.received.filter((p) => p.startsWith("p-")),
        ok.filter((p) => plain.received.includes(p)),
      );
      assert.equal(reconnects.plain, 1);
      assert.equal(reconnects.group, 1);
      assert.deepEqual(escapes.escaped, []);
    } finally {
      escapes.stop();
      // Whatever happened above, leave the server running for everyone else.
      await startRedis();
      await Promise.all([a.channel.close(), b.channel.close()]);
    }
  });
});
