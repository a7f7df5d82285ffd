import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { StategateClient } from "@stategate/sdk-node";
import { Code, ConnectError } from "@stategate/sdk-node";
import type { TestGateway } from "./helpers.js";
import { dropMysqlTables, sharedBackendEnv, startTestGateway, take, unique, until } from "./helpers.js";

/**
 * Live events in position order. Over MySQL, Sets that commit together
 * publish in whatever order their answers come back (and with several
 * gateways, in any order at all), so without the hub's sequencer a stream
 * got position 11 before 10; a client resuming after 11, as it is told to,
 * then never saw 10.
 */

const tag = unique("order").replace(/-/g, "_");
// Two gateways on one MySQL, each with its own in-memory channel: an event
// written through one never reaches the other's channel, as if its publish
// had been lost.
const env = sharedBackendEnv(tag, { storage: "mysql", cache: "memory", channel: "memory" });
let first: TestGateway;
let second: TestGateway;
let client: StategateClient;

before(async () => {
  first = await startTestGateway(env);
  second = await startTestGateway(env);
  client = first.client({ protocol: "grpc" });
});
after(async () => {
  await first.close();
  await second.close();
  await dropMysqlTables(tag);
});

/** Reads positions from a stream until aborted. */
function positions(domain: string, signal: AbortSignal, afterPosition?: bigint) {
  const seen: bigint[] = [];
  const done = (async () => {
    try {
      for await (const { event } of client.event.stream({ domain, type: "*", afterPosition }, { signal })) {
        seen.push(event?.position ?? -1n);
      }
    } catch (err) {
      if (ConnectError.from(err).code !== Code.Canceled) throw err;
    }
  })();
  return { seen, done };
}

const increasing = (list: bigint[]) => list.every((p, i) => i === 0 || p > (list[i - 1] as bigint));

describe("live events in position order", () => {
  it("reach a stream in position order while eight clients write at once", async () => {
    const domain = unique("burst");
    const writers = Array.from({ length: 8 }, () => first.client({ protocol: "grpc" }));
    const stop = new AbortController();
    const stream = positions(domain, stop.signal);
    try {
      // The stream is live once an event written now reaches it.
      await client.entity.set({ domain, type: "t", key: "warm", values: {} });
      await until(() => stream.seen.length > 0);
      await Promise.all(
        Array.from({ length: 400 }, (_, i) =>
          (writers[i % 8] as StategateClient).entity.set({ domain, type: "t", key: `k${i % 20}`, values: { i } }),
        ),
      );
      const stored = await client.event.search({ domain, type: "t", limit: 1000 });
      await until(() => stream.seen.length >= stored.events.length);
      assert.ok(increasing(stream.seen), "positions only ever increase");
      assert.deepEqual(
        stream.seen,
        stored.events.map((e) => e.position),
      );
    } finally {
      stop.abort();
      await stream.done;
      for (const w of writers) w.close();
    }
  });

  it("let a client that resumes after the last position it received miss nothing", async () => {
    const domain = unique("resume");
    const writers = Array.from({ length: 8 }, () => first.client({ protocol: "grpc" }));
    try {
      const stop = new AbortController();
      const head = positions(domain, stop.signal);
      await client.entity.set({ domain, type: "t", key: "warm", values: {} });
      await until(() => head.seen.length > 0);
      const writes = Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          (writers[i % 8] as StategateClient).entity.set({ domain, type: "t", key: `k${i % 10}`, values: { i } }),
        ),
      );
      await until(() => head.seen.length >= 100);
      stop.abort();
      await head.done;
      await writes;
      const last = head.seen.at(-1) as bigint;
      const rest = await take(client.event.stream({ domain, type: "*", afterPosition: last }), 201 - head.seen.length);
      const all = (await client.event.search({ domain, type: "t", limit: 1000 })).events.map((e) => e.position);
      assert.deepEqual([...head.seen, ...rest.map((r) => r.event?.position)], all);
    } finally {
      for (const w of writers) w.close();
    }
  });

  it("fill a gap the channel never closes from storage, promptly", async () => {
    const domain = unique("gap");
    const stop = new AbortController();
    const stream = positions(domain, stop.signal);
    try {
      await client.entity.set({ domain, type: "t", key: "warm", values: {} });
      await until(() => stream.seen.length > 0);
      // Written through the other gateway: this one's channel never carries it.
      const elsewhere = second.client({ protocol: "grpc" });
      const lost = await elsewhere.entity.set({ domain, type: "t", key: "elsewhere", values: {} });
      elsewhere.close();
      const here = await client.entity.set({ domain, type: "t", key: "here", values: {} });
      const started = Date.now();
      await until(() => stream.seen.length >= 3);
      assert.deepEqual(stream.seen.slice(1), [lost.event?.position, here.event?.position]);
      // Well before the outbox sweep (a second and more), which would not reach this gateway's channel anyway.
      assert.ok(Date.now() - started < 1_000, `${Date.now() - started} ms`);
    } finally {
      stop.abort();
      await stream.done;
    }
  });
});
