/**
 * Channel subscriptions without a group: everyone gets everything, in order.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ProviderClosedError } from "../errors.js";
import type { Channel } from "../types.js";
import { type ChannelOptions, collect, createTag, numbered, publishAll } from "./channel-tag.js";
import { type ChannelFactory, sleep, using, waitFor } from "./helpers.js";

/** Every subscriber without a group gets every payload of its topic, in publish order. */
export function channelBroadcastGroup(factory: ChannelFactory, options: ChannelOptions = {}): void {
  const timeout = options.deliveryTimeoutMs ?? 2000;
  const quietMs = options.quietMs ?? 100;

  describe("channel: broadcast", () => {
    it("delivers every payload to every subscriber, in publish order", () =>
      using(factory, async (channel) => {
        const tag = createTag();
        const subscribers = await Promise.all([1, 2, 3].map(() => collect(channel, "events", tag)));
        const payloads = numbered("e", 25);
        await publishAll(channel, "events", tag, payloads);
        for (const { received } of subscribers) {
          await waitFor(() => received.length >= payloads.length, "every payload", timeout);
        }
        await sleep(quietMs);
        for (const { received } of subscribers) {
          assert.deepEqual(received, payloads);
        }
      }));

    it("keeps the two topics apart", () =>
      using(factory, async (channel) => {
        const tag = createTag();
        const events = await collect(channel, "events", tag);
        const messages = await collect(channel, "messages", tag);
        await channel.publish("messages", tag.wrap("m"));
        await channel.publish("events", tag.wrap("e"));
        await waitFor(() => events.received.length > 0 && messages.received.length > 0, "both payloads", timeout);
        await sleep(quietMs);
        assert.deepEqual(events.received, ["e"]);
        assert.deepEqual(messages.received, ["m"]);
      }));

    it("delivers the exact bytes, including empty payloads", () =>
      using(factory, async (channel) => {
        const tag = createTag();
        const received: Uint8Array[] = [];
        await channel.subscribe("messages", (payload) => {
          const mine = tag.unwrap(payload);
          if (mine !== undefined) {
            received.push(mine);
          }
        });
        const binary = Uint8Array.from({ length: 256 }, (_, i) => i);
        await channel.publish("messages", tag.wrapBytes(binary));
        await channel.publish("messages", tag.wrapBytes(new Uint8Array(0)));
        await waitFor(() => received.length >= 2, "both payloads", timeout);
        assert.deepEqual([...(received[0] ?? [])], [...binary]);
        assert.equal(received[1]?.length, 0);
      }));

    it("stops delivering once unsubscribed", () =>
      using(factory, async (channel) => {
        const tag = createTag();
        const leaving = await collect(channel, "events", tag);
        const staying = await collect(channel, "events", tag);
        await channel.publish("events", tag.wrap("before"));
        await waitFor(
          () => leaving.received.length === 1 && staying.received.length === 1,
          "the first payload",
          timeout,
        );
        await leaving.unsubscribe();
        await channel.publish("events", tag.wrap("after"));
        await waitFor(() => staying.received.length === 2, "the second payload", timeout);
        await sleep(quietMs);
        assert.deepEqual(leaving.received, ["before"]);
      }));

    it("keeps delivering to everyone when a handler throws", () =>
      using(factory, async (channel) => {
        const tag = createTag();
        let thrown = 0;
        await channel.subscribe("events", (payload) => {
          if (tag.unwrap(payload) !== undefined) {
            thrown += 1;
            throw new Error("handler failure (expected by the test)");
          }
        });
        const healthy = await collect(channel, "events", tag);
        const payloads = numbered("t", 5);
        await publishAll(channel, "events", tag, payloads);
        await waitFor(
          () => healthy.received.length === payloads.length && thrown === payloads.length,
          "all payloads",
          timeout,
        );
        assert.deepEqual(healthy.received, payloads);
      }));

    it("ends subscriptions on close and refuses calls after it", async () => {
      const tag = createTag();
      const channel = await factory();
      await channel.ping();
      const { received } = await collect(channel, "events", tag);
      await channel.close();
      await assert.rejects(channel.publish("events", tag.wrap("late")), ProviderClosedError);
      await sleep(quietMs);
      assert.deepEqual(received, []);
    });

    if (options.multiInstance !== false) {
      it("delivers across clients of the same backend", async () => {
        const tag = createTag();
        const [a, b] = (await Promise.all([factory(), factory()])) as [Channel, Channel];
        try {
          const onA = await collect(a, "messages", tag);
          const onB = await collect(b, "messages", tag);
          const payloads = numbered("x", 5);
          await publishAll(a, "messages", tag, payloads);
          await waitFor(() => onA.received.length === 5 && onB.received.length === 5, "payloads on both", timeout);
          assert.deepEqual(onB.received, payloads);
        } finally {
          await Promise.all([a.close(), b.close()]);
        }
      });
    }
  });
}
