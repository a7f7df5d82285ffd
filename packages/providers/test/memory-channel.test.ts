import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createMemoryChannel } from "../src/channel/memory.js";
import { decode, encode, sleep } from "../src/conformance/helpers.js";
import { runChannelConformance } from "../src/conformance/index.js";

// multiInstance off: the memory channel is in-process by design, and separate
// instances are separate buses (that is what keeps tests and gateways apart).
runChannelConformance(() => createMemoryChannel(), { multiInstance: false });

describe("memory channel", () => {
  it("shares a group's payloads round-robin", async () => {
    const channel = await createMemoryChannel();
    try {
      const shares: string[][] = [[], [], []];
      for (const share of shares) {
        await channel.subscribe("events", (p) => void share.push(decode(p)), { group: "g" });
      }
      for (let i = 0; i < 6; i++) {
        await channel.publish("events", encode(String(i)));
      }
      await sleep(10);
      assert.deepEqual(shares, [
        ["0", "3"],
        ["1", "4"],
        ["2", "5"],
      ]);
    } finally {
      await channel.close();
    }
  });

  it("delivers after publish returns, never inside it", async () => {
    const channel = await createMemoryChannel();
    try {
      const received: string[] = [];
      await channel.subscribe("messages", (p) => void received.push(decode(p)));
      const published = channel.publish("messages", encode("x"));
      const duringPublish = [...received];
      await published;
      await sleep(0);
      assert.deepEqual([duringPublish.length, received], [0, ["x"]]);
    } finally {
      await channel.close();
    }
  });

  it("passes a group member's undelivered payloads to the others when it leaves", async () => {
    const channel = await createMemoryChannel();
    try {
      const a: string[] = [];
      const b: string[] = [];
      const leave = await channel.subscribe("events", (p) => void a.push(decode(p)), { group: "g" });
      await channel.subscribe("events", (p) => void b.push(decode(p)), { group: "g" });
      void channel.publish("events", encode("0"));
      void channel.publish("events", encode("1"));
      // Payload "0" is queued for the first member, which leaves before delivery.
      await leave();
      await sleep(10);
      assert.deepEqual([a, b.sort()], [[], ["0", "1"]]);
    } finally {
      await channel.close();
    }
  });

  it("reports handler errors to onHandlerError", async () => {
    const errors: unknown[] = [];
    const channel = await createMemoryChannel({ onHandlerError: (error) => errors.push(error) });
    try {
      await channel.subscribe("events", () => {
        throw new Error("boom");
      });
      await channel.publish("events", encode("x"));
      await sleep(10);
      assert.equal((errors[0] as Error).message, "boom");
    } finally {
      await channel.close();
    }
  });
});
