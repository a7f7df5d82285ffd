import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { StategateClient } from "@stategate/sdk-node";
import { Code, ConnectError } from "@stategate/sdk-node";
import type { TestGateway } from "./helpers.js";
import { startTestGateway, take, unique, until } from "./helpers.js";

let tg: TestGateway;
let client: StategateClient;
before(async () => {
  tg = await startTestGateway();
  client = tg.client({ protocol: "grpc" });
});
after(async () => {
  await tg.close();
});
// Every stream a test opened is released on the gateway once the test ends it.
afterEach(async () => {
  await until(() => tg.gateway.openStreams() === 0);
});

/** Collects a stream's events into an array until aborted. */
function collect(
  domain: string,
  type: string,
  group: string,
  signal: AbortSignal,
): { keys: string[]; done: Promise<void> } {
  const keys: string[] = [];
  const done = (async () => {
    try {
      for await (const { event } of client.event.stream({ domain, type, consumerGroup: group }, { signal })) {
        keys.push(`${event?.entity?.domain}/${event?.entity?.type}/${event?.entity?.key}`);
      }
    } catch (err) {
      if (ConnectError.from(err).code !== Code.Canceled) throw err;
    }
  })();
  return { keys, done };
}

describe("event streams", () => {
  it("globs are anchored; '*' alone matches everything", async () => {
    const base = unique("glob");
    const abort = new AbortController();
    const streams = await Promise.all([
      collect(`${base}-*`, "order", "", abort.signal),
      collect("*", "*", "", abort.signal),
    ]);
    const [shop, all] = streams;
    await until(() => tg.gateway.openStreams() >= 2);
    await client.entity.set({ domain: `${base}-eu`, type: "order", key: "1", values: {} });
    await client.entity.set({ domain: `${base}-eu`, type: "orders", key: "2", values: {} });
    await client.entity.set({ domain: `x${base}-eu`, type: "order", key: "3", values: {} });
    await client.entity.set({ domain: base, type: "order", key: "4", values: {} });
    await until(() => all.keys.filter((k) => k.includes(base)).length >= 4);
    await sleep(100);
    abort.abort();
    await Promise.all(streams.map((s) => s.done));
    assert.deepEqual(shop.keys, [`${base}-eu/order/1`]);
  });

  it("each event goes to exactly one member of a consumer group, and to every plain subscriber", async () => {
    const domain = unique("grp");
    const abort = new AbortController();
    const before = tg.gateway.openStreams();
    const members = [0, 1, 2].map(() => collect(domain, "*", "workers", abort.signal));
    const plain = collect(domain, "*", "", abort.signal);
    await until(() => tg.gateway.openStreams() >= before + 4);
    const keys = Array.from({ length: 30 }, (_, i) => `${domain}/job/${i}`);
    for (let i = 0; i < 30; i++) await client.entity.set({ domain, type: "job", key: String(i), values: { i } });
    await until(() => plain.keys.length === 30 && members.reduce((n, m) => n + m.keys.length, 0) === 30);
    await sleep(100);
    abort.abort();
    await Promise.all([...members, plain].map((s) => s.done));
    assert.deepEqual(plain.keys, keys);
    const shared = members.flatMap((m) => m.keys).sort();
    assert.deepEqual(shared, [...keys].sort(), "each event exactly once across the group");
    assert.ok(
      members.every((m) => m.keys.length > 0),
      "the group spreads work across members",
    );
  });

  it("resuming after a position sends history then live events, with no gap and no duplicate", async () => {
    const domain = unique("resume");
    const first = await client.entity.set({ domain, type: "t", key: "0", values: {} });
    const start = (first.event?.position ?? 0n) - 1n;
    const writer = (async () => {
      for (let i = 1; i < 40; i++) await client.entity.set({ domain, type: "t", key: String(i), values: {} });
    })();
    const abort = new AbortController();
    const got = await take(
      client.event.stream({ domain, type: "t", afterPosition: start }, { signal: abort.signal }),
      40,
    );
    abort.abort();
    await writer;
    assert.deepEqual(
      got.map((r) => r.event?.entity?.key),
      Array.from({ length: 40 }, (_, i) => String(i)),
    );
    const positions = got.map((r) => r.event?.position ?? 0n);
    assert.ok(positions.every((p, i) => i === 0 || p > (positions[i - 1] ?? 0n)));
  });

  it("leaving the loop cancels the call and releases the subscription", async () => {
    const domain = unique("cancel");
    const baseline = tg.gateway.openStreams();
    await client.entity.set({ domain, type: "t", key: "k", values: {} });
    for await (const { event } of client.event.stream({ domain, type: "t", afterPosition: 0n })) {
      if (event?.entity?.domain === domain) break;
    }
    await until(() => tg.gateway.openStreams() === baseline);
  });

  it("many short streams leave nothing behind on the gateway", async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on("warning", onWarning);
    try {
      const domain = unique("many");
      await client.entity.set({ domain, type: "t", key: "k", values: {} });
      for (let i = 0; i < 25; i++) {
        for await (const _ of client.event.stream({ domain, type: "t", afterPosition: 0n })) break;
      }
      await until(() => tg.gateway.openStreams() === 0);
      assert.deepEqual(warnings, [], "no listener piles up on the gateway's shutdown signal");
    } finally {
      process.off("warning", onWarning);
    }
  });

  it("a deadline ends the stream with DEADLINE_EXCEEDED and releases it", async () => {
    const baseline = tg.gateway.openStreams();
    await assert.rejects(
      take(client.event.stream({ domain: unique("dl"), type: "*" }, { timeoutMs: 300 }), 1),
      (e) => ConnectError.from(e).code === Code.DeadlineExceeded,
    );
    await until(() => tg.gateway.openStreams() === baseline);
  });
});

describe("peer streams", () => {
  it("consumer groups and globs apply to messages too", async () => {
    const domain = unique("peer");
    const abort = new AbortController();
    const got: Record<string, string[]> = { a: [], b: [], all: [] };
    const run = (name: string, group: string, channel: string) =>
      (async () => {
        try {
          for await (const { message } of client.peer.stream(
            { domain, channel, type: "*", consumerGroup: group },
            { signal: abort.signal },
          )) {
            got[name]?.push(`${message?.channel}:${String(message?.body?.n)}`);
          }
        } catch (err) {
          if (ConnectError.from(err).code !== Code.Canceled) throw err;
        }
      })();
    const baseline = tg.gateway.openStreams();
    const runs = [run("a", "g", "room-*"), run("b", "g", "room-*"), run("all", "", "*")];
    await until(() => tg.gateway.openStreams() >= baseline + 3);
    for (let n = 0; n < 10; n++)
      await client.peer.broadcast({ domain, channel: n % 2 ? "room-1" : "lobby", type: "say", body: { n } });
    await until(() => (got.all?.length ?? 0) === 10 && (got.a?.length ?? 0) + (got.b?.length ?? 0) === 5);
    await sleep(100);
    abort.abort();
    await Promise.all(runs);
    const grouped = [...(got.a ?? []), ...(got.b ?? [])].sort();
    assert.deepEqual(grouped, ["room-1:1", "room-1:3", "room-1:5", "room-1:7", "room-1:9"]);
  });
});
