import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { collect, createTag, numbered, publishAll } from "../src/conformance/channel-tag.js";
import { sleep, waitFor } from "../src/conformance/helpers.js";
import { ProviderUnavailableError } from "../src/errors.js";
import { closeConnectionsOf, ctl, sorted, uniqueGroup, uniquePrefix, watchEscapes, watched } from "./amqp-helpers.js";

// These tests take the shared broker down: the test runner runs *.serial.test.ts files alone.
describe("amqp channel: broker outages", () => {
  it("resumes subscriptions after the broker closes its connections", async (t) => {
    const escapes = watchEscapes();
    const prefix = uniquePrefix();
    const tag = createTag();
    const group = uniqueGroup();
    const [a, b] = await Promise.all([watched(prefix), watched(prefix)]);
    try {
      const plain = await collect(a.channel, "events", tag);
      const members = [await collect(a.channel, "events", tag, group), await collect(b.channel, "events", tag, group)];
      // What a gateway's event stream listens for, to catch up from storage after an outage.
      let reconnects = 0;
      const watcher = await a.channel.subscribe("events", () => {}, { onReconnect: () => reconnects++ });
      await b.channel.publish("events", tag.wrap("before"));
      await waitFor(() => plain.received.length === 1, "the payload before the outage", 3000);

      const started = Date.now();
      assert.equal(await closeConnectionsOf(prefix), 2);
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
      await sleep(200);
      assert.equal(reconnects, 1, "the subscription heard of the outage once, after its queue was bound again");
      await watcher();
      assert.deepEqual(plain.received, ["before", ...later]);
      assert.deepEqual(sorted(members.flatMap((m) => m.received)), sorted(["before", ...later]));
      assert.deepEqual(escapes.escaped, []);
    } finally {
      escapes.stop();
      await Promise.all([a.channel.close(), b.channel.close()]);
    }
  });

  it("fails fast during a broker restart (stop_app, start_app) and delivers again after it", async (t) => {
    const escapes = watchEscapes();
    const prefix = uniquePrefix();
    const tag = createTag();
    const group = uniqueGroup();
    const [a, b] = await Promise.all([watched(prefix), watched(prefix)]);
    let stopped = false;
    try {
      const plain = await collect(a.channel, "messages", tag);
      const members = [
        await collect(a.channel, "messages", tag, group),
        await collect(b.channel, "messages", tag, group),
      ];
      let started = Date.now();
      stopped = true;
      await ctl("stop_app");
      t.diagnostic(`stop_app took ${Date.now() - started} ms`);
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

      started = Date.now();
      await ctl("start_app");
      stopped = false;
      t.diagnostic(`start_app took ${Date.now() - started} ms`);
      await waitFor(() => a.connected() && b.connected(), "both to reconnect", 15_000);
      t.diagnostic(`both reconnected ${Date.now() - started} ms after start_app began; calls failed in ${failedIn} ms`);

      const later = numbered("after", 10);
      await publishAll(b.channel, "messages", tag, later);
      await waitFor(
        () => plain.received.length === 10 && members.flatMap((m) => m.received).length === 10,
        "the payloads after the restart",
        5000,
      );
      await sleep(200);
      assert.deepEqual(plain.received, later);
      assert.deepEqual(sorted(members.flatMap((m) => m.received)), sorted(later));
      assert.deepEqual(escapes.escaped, []);
    } finally {
      escapes.stop();
      // Whatever happened above, leave the broker running for everyone else.
      if (stopped) await ctl("start_app");
      await Promise.all([a.channel.close(), b.channel.close()]);
    }
  });
});
