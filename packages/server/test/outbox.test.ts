import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { after, afterEach, before, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createSqliteStorage } from "@stategate/providers";
import { Code, ConnectError } from "@stategate/sdk-node";
import type { TestGateway } from "./helpers.js";
import { startTestGateway, unique, until } from "./helpers.js";

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

/** Streams a domain's events into an array until aborted. */
function follow(domain: string, signal: AbortSignal): { got: string[]; done: Promise<void> } {
  const got: string[] = [];
  const client = tg.client({ protocol: "grpc" });
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
