import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { NodeClient } from "@stategate/sdk-node";
import { Code, ConnectError, createClient } from "@stategate/sdk-node";
import { redisStartCommand } from "../../../scripts/service-control.mjs";
import type { GatewayProcess } from "./helpers.js";
import { dropMysqlTables, sharedBackendEnv, spawnGateways, unique, until } from "./helpers.js";

// Restarts the shared Redis: the test runner runs *.serial.test.ts files alone.
const redisAddr = process.env.STATEGATE_TEST_REDIS_ADDR ?? "127.0.0.1:6379";
const redisHost = redisAddr.slice(0, redisAddr.lastIndexOf(":"));
const redisPort = redisAddr.slice(redisAddr.lastIndexOf(":") + 1);
// How the server under test is started again (STATEGATE_TEST_REDIS_START when it is started differently).
const redisStart = redisStartCommand(redisPort);

const tag = `rf${Math.random().toString(36).slice(2, 10)}`;
const dataDir = mkdtempSync(join(tmpdir(), "stategate-redis-fault-"));
let writerGw: GatewayProcess;
let readerGw: GatewayProcess;
let writer: NodeClient;
let reader: NodeClient;

function redisCli(...args: string[]): string {
  return execFileSync("redis-cli", ["-h", redisHost, "-p", redisPort, ...args], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "ignore"],
    timeout: 30_000,
  });
}

function redisUp(): boolean {
  try {
    return redisCli("ping").trim() === "PONG";
  } catch {
    return false;
  }
}

/** Stops Redis without saving: streams, groups and subscriptions are gone, as after a crash. */
async function stopRedis(): Promise<void> {
  try {
    redisCli("shutdown", "nosave");
  } catch {
    // redis-cli may see the connection close before any reply
  }
  await until(() => !redisUp(), 10_000);
}

/** Starts Redis unless it runs, and waits until it answers. */
async function startRedis(): Promise<void> {
  if (redisUp()) return;
  execFileSync("sh", ["-c", redisStart], { stdio: "ignore", timeout: 30_000 });
  await until(redisUp, 10_000);
}

/** Closes, server side, the Redis connections of one gateway process (the channel names them). */
function dropConnectionsOf(gateway: GatewayProcess): number {
  const ids = redisCli("client", "list")
    .split("\n")
    .filter((line) => line.includes(` name=stategate:${tag}:${gateway.child.pid}:`))
    .map((line) => /\bid=(\d+)/.exec(line)?.[1] as string);
  for (const id of ids) redisCli("client", "kill", "id", id);
  return ids.length;
}

/** Streams a domain's events (of one type, or all) on the reader gateway into `received`. */
function follow(domain: string, signal: AbortSignal, type = "*") {
  const received: string[] = [];
  const done = (async () => {
    try {
      for await (const { event } of reader.event.stream({ domain, type }, { signal })) {
        received.push(event?.entity?.key ?? "");
      }
    } catch (err) {
      if (ConnectError.from(err).code !== Code.Canceled) throw err;
    }
  })();
  return { received, done };
}

/** Returns once a probe written through the other gateway arrives: the stream is live. */
async function untilLive(domain: string, received: string[], type = "probe"): Promise<void> {
  await until(async () => {
    await writer.entity.set({ domain, type, key: "probe", values: {} });
    return received.includes("probe");
  });
}

/** Writes Sets through the writer gateway until stopped; `ok` lists those that answered OK. */
function keepWriting(domain: string) {
  const ok: string[] = [];
  let writing = true;
  const done = (async () => {
    for (let i = 0; writing; i++) {
      const key = `w${i}`;
      try {
        await writer.entity.set({ domain, type: "t", key, values: { i } });
        ok.push(key);
      } catch {
        // a failed Set promises nothing
      }
      await sleep(10);
    }
  })();
  return {
    ok,
    stop: async () => {
      writing = false;
      await done;
    },
  };
}

/** Asserts that every OK Set arrived exactly once. */
async function assertExactlyOnce(ok: string[], received: string[]): Promise<void> {
  await until(() => ok.every((key) => received.includes(key)), 30_000).catch(() => {});
  const missing = ok.filter((key) => !received.includes(key));
  assert.deepEqual(missing, [], `${missing.length} of ${ok.length} OK Sets never reached the subscriber`);
  const counts = new Map<string, number>();
  for (const key of received) counts.set(key, (counts.get(key) ?? 0) + 1);
  const twice = [...counts].filter(([key, n]) => key !== "probe" && n > 1);
  assert.deepEqual(twice, [], "no event twice");
}

before(async () => {
  const env = {
    ...sharedBackendEnv(tag),
    STATEGATE_CHANNEL_PROVIDER: JSON.stringify({ name: "redis", addr: redisAddr, prefix: tag }),
    STATEGATE_DATA_DIR: dataDir,
  };
  [writerGw, readerGw] = (await spawnGateways(env, 2)) as [GatewayProcess, GatewayProcess];
  writer = createClient({ baseUrl: writerGw.baseUrl, protocol: "grpc" });
  reader = createClient({ baseUrl: readerGw.baseUrl, protocol: "grpc" });
});

after(async () => {
  await startRedis(); // whatever happened, leave Redis running
  writer?.close();
  reader?.close();
  for (const g of [writerGw, readerGw]) g?.child.kill("SIGTERM");
  await Promise.all([writerGw?.exited, readerGw?.exited]);
  await dropMysqlTables(tag);
  rmSync(dataDir, { recursive: true, force: true });
});

it("every Set that answered OK reaches a subscriber exactly once across a Redis restart", async (t) => {
  const domain = unique("fault");
  const abort = new AbortController();
  const stream = follow(domain, abort.signal);
  await untilLive(domain, stream.received);
  const writes = keepWriting(domain);
  try {
    await until(() => writes.ok.length >= 30);
    await stopRedis();
    const okAtStop = writes.ok.length;
    // Sets still answer OK meanwhile: the outbox relays what could not be published.
    await sleep(1_500);
    const started = Date.now();
    await startRedis();
    const okAtStart = writes.ok.length;
    await until(() => writes.ok.length >= okAtStart + 60, 30_000);
    t.diagnostic(
      `${okAtStart - okAtStop} Sets answered OK while Redis was down; ` +
        `60 more ${Date.now() - started} ms after it started again`,
    );
  } finally {
    await startRedis();
    await writes.stop();
  }
  await assertExactlyOnce(writes.ok, stream.received);
  abort.abort();
  await stream.done;
});

it("a subscriber whose gateway alone lost Redis catches up from storage", async () => {
  const domain = unique("alone");
  const abort = new AbortController();
  const stream = follow(domain, abort.signal);
  await untilLive(domain, stream.received);
  const writes = keepWriting(domain);
  await until(() => writes.ok.length >= 20);
  // The writer keeps publishing while the reader is unsubscribed: only storage has those events.
  assert.ok(dropConnectionsOf(readerGw) > 0, "the reader gateway had Redis connections");
  const okAtDrop = writes.ok.length;
  await until(() => writes.ok.length >= okAtDrop + 80, 30_000);
  await writes.stop();
  await assertExactlyOnce(writes.ok, stream.received);
  abort.abort();
  await stream.done;
});

it("a domain or type with dots or colons reaches only its own stream", async () => {
  // Channel payloads are opaque: names never become pub/sub channels or keys. This guards that.
  const base = unique("leak");
  const abort = new AbortController();
  const stream = follow(`${base}.a`, abort.signal, "t.b");
  await untilLive(`${base}.a`, stream.received, "t.b");
  const others: [string, string][] = [
    [base, "a.t.b"],
    [`${base}.a.t`, "b"],
    [`${base}:a`, "t.b"],
    [`${base}.a`, "t:b"],
    [`${base}.a`, "t"],
  ];
  for (const [domain, type] of others) await writer.entity.set({ domain, type, key: `${domain}|${type}`, values: {} });
  await writer.entity.set({ domain: `${base}.a`, type: "t.b", key: "mine", values: {} });
  await until(() => stream.received.includes("mine"));
  await sleep(300);
  assert.deepEqual(
    stream.received.filter((key) => key !== "probe"),
    ["mine"],
  );
  abort.abort();
  await stream.done;
});
