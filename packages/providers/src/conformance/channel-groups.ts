/**
 * Consumer groups: the subscriptions of one topic and group share the
 * payloads, each payload going to exactly one of them.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, it } from "node:test";
import type { Channel } from "../types.js";
import { type ChannelOptions, collect, createTag, numbered, publishAll } from "./channel-tag.js";
import { type ChannelFactory, sleep, using, waitFor } from "./helpers.js";

// Group names are shared by everything on a backend, like topics.
const uniqueGroup = () => `conformance-${randomUUID().slice(0, 8)}`;

const flat = (lists: { received: string[] }[]): string[] => lists.flatMap((list) => list.received);
const sorted = (items: string[]): string[] => [...items].sort();

// Each member sees its share in publish order, even though shares interleave.
function assertOrdered(received: string[], payloads: string[]): void {
  const indexes = received.map((payload) => payloads.indexOf(payload));
  assert.deepEqual(
    indexes,
    [...indexes].sort((a, b) => a - b),
  );
}

/** A group's members split its topic's payloads, each payload delivered exactly once; groups and topics are independent. */
export function channelGroupsGroup(factory: ChannelFactory, options: ChannelOptions = {}): void {
  const timeout = options.deliveryTimeoutMs ?? 2000;
  const quietMs = options.quietMs ?? 100;

  describe("channel: consumer groups", () => {
    it("delivers each payload to exactly one member of a group", () =>
      using(factory, async (channel) => {
        const tag = createTag();
        const group = uniqueGroup();
        const members = await Promise.all([1, 2, 3].map(() => collect(channel, "events", tag, group)));
        const payloads = numbered("g", 30);
        await publishAll(channel, "events", tag, payloads);
        await waitFor(() => flat(members).length >= payloads.length, "every payload", timeout);
        await sleep(quietMs);
        assert.deepEqual(sorted(flat(members)), sorted(payloads));
        for (const member of members) {
          assertOrdered(member.received, payloads);
        }
      }));

    it("gives a group one copy, and each plain subscriber its own", () =>
      using(factory, async (channel) => {
        const tag = createTag();
        const group = uniqueGroup();
        const members = await Promise.all([1, 2].map(() => collect(channel, "messages", tag, group)));
        const plain = await collect(channel, "messages", tag);
        const otherGroup = await collect(channel, "messages", tag, uniqueGroup());
        const payloads = numbered("m", 10);
        await publishAll(channel, "messages", tag, payloads);
        await waitFor(
          () => flat(members).length >= 10 && plain.received.length >= 10 && otherGroup.received.length >= 10,
          "every payload",
          timeout,
        );
        await sleep(quietMs);
        assert.deepEqual(sorted(flat(members)), sorted(payloads));
        assert.deepEqual(plain.received, payloads);
        assert.deepEqual(otherGroup.received, payloads);
      }));

    it("treats the same group name on the two topics as two groups", () =>
      using(factory, async (channel) => {
        const tag = createTag();
        const group = uniqueGroup();
        const events = await collect(channel, "events", tag, group);
        const messages = await collect(channel, "messages", tag, group);
        await channel.publish("events", tag.wrap("e"));
        await channel.publish("messages", tag.wrap("m"));
        await waitFor(() => events.received.length > 0 && messages.received.length > 0, "both payloads", timeout);
        await sleep(quietMs);
        assert.deepEqual(events.received, ["e"]);
        assert.deepEqual(messages.received, ["m"]);
      }));

    it("hands everything to the remaining members after one unsubscribes", () =>
      using(factory, async (channel) => {
        const tag = createTag();
        const group = uniqueGroup();
        const leaving = await collect(channel, "events", tag, group);
        const staying = await collect(channel, "events", tag, group);
        await leaving.unsubscribe();
        const left = leaving.received.length;
        const payloads = numbered("u", 10);
        await publishAll(channel, "events", tag, payloads);
        await waitFor(() => staying.received.length >= 10, "every payload", timeout);
        await sleep(quietMs);
        assert.deepEqual(staying.received, payloads);
        assert.equal(leaving.received.length, left);
      }));

    if (options.multiInstance !== false) {
      it("spans clients of the same backend", async () => {
        const tag = createTag();
        const group = uniqueGroup();
        const [a, b] = (await Promise.all([factory(), factory()])) as [Channel, Channel];
        try {
          const members = [await collect(a, "events", tag, group), await collect(b, "events", tag, group)];
          const payloads = numbered("s", 20);
          await publishAll(a, "events", tag, payloads);
          await waitFor(() => flat(members).length >= payloads.length, "every payload", timeout);
          await sleep(quietMs);
          assert.deepEqual(sorted(flat(members)), sorted(payloads));
        } finally {
          await Promise.all([a.close(), b.close()]);
        }
      });
    }
  });
}
