import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { NodeClient } from "@stategate/sdk-node";
import { Code, ConnectError, createClient } from "@stategate/sdk-node";
import { rabbitmqctlCommand } from "../../../scripts/service-control.mjs";
import type { GatewayProcess } from "./helpers.js";
import { dropMysqlTables, sharedBackendEnv, spawnGateways, unique, until } from "./helpers.js";

// Restarts the shared RabbitMQ: the test runner runs *.serial.test.ts files alone.
const tag = `ft${Math.random().toString(36).slice(2, 10)}`;
const dataDir = mkdtempSync(join(tmpdir(), "stategate-fault-"));
let writerGw: GatewayProcess;
let readerGw: GatewayProcess;
let writer: NodeClient;
let reader: NodeClient;

// The broker's control tool: rabbitmqctl, or STATEGATE_TEST_RABBITMQCTL.
const [rabbitmqctlBin, ...rabbitmqctlArgs] = rabbitmqctlCommand();

function rabbitmqctl(...args: string[]): string {
  return execFileSync(rabbitmqctlBin, [...rabbitmqctlArgs, ...args], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "ignore"],
    timeout: 60_000,
  });
}

/** Closes, broker side, the AMQP connections of one gateway process. */
function dropConnectionsOf(gateway: GatewayProcess): number {
  const listing = rabbitmqctl("list_connections", "pid", "client_properties", "-q", "--no-table-headers");
  const pids = listing
    .split("\n")
    .filter((line) => line.includes(`(pid ${gateway.child.pid})`))
    .map((line) => line.split("\t")[0] as string);
  for (const pid of pids) rabbitmqctl("close_connection", pid, "stategate test: one gateway loses the broker");
  return pids.length;
}

/** Streams a domain's events on the reader gateway into `received`. */
function follow(domain: string, signal: AbortSignal) {
  const received: string[] = [];
  const done = (async () => {
    try {
      for await (const { event } of reader.event.stream({ domain, type: "*" }, { signal })) {
        received.push(event?.entity?.key ?? "");
      }
    } catch (err) {
      if (ConnectError.from(err).code !== Code.Canceled) throw err;
    }
  })();
  return { received, done };
}

/** Returns once a probe written through the other gateway arrives: the stream is live. */
async function untilLive(domain: string, received: string[]): Promise<void> {
  await until(async () => {
    await writer.entity.set({ domain, type: "probe", key: "probe", values: {} });
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
  const env = { ...sharedBackendEnv(tag), STATEGATE_DATA_DIR: dataDir };
  [writerGw, readerGw] = (await spawnGateways(env, 2)) as [GatewayProcess, GatewayProcess];
  writer = createClient({ baseUrl: writerGw.baseUrl, protocol: "grpc" });
  reader = createClient({ baseUrl: readerGw.baseUrl, protocol: "grpc" });
});

after(async () => {
  rabbitmqctl("start_app"); // whatever happened, leave the broker running
  writer?.close();
  reader?.close();
  for (const g of [writerGw, readerGw]) g?.child.kill("SIGTERM");
  await Promise.all([writerGw?.exited, readerGw?.exited]);
  await dropMysqlTables(tag);
  rmSync(dataDir, { recursive: true, force: true });
});

it("every Set that answered OK reaches a subscriber exactly once across a RabbitMQ restart", async () => {
  const domain = unique("fault");
  const abort = new AbortController();
  const stream = follow(domain, abort.signal);
  await untilLive(domain, stream.received);
  const writes = keepWriting(domain);
  await until(() => writes.ok.length >= 30);
  rabbitmqctl("stop_app");
  await sleep(1_500);
  rabbitmqctl("start_app");
  // Sets keep answering OK while the broker is down (the outbox holds their
  // events): count the ones written after it is back.
  const okAfterRestart = writes.ok.length;
  await until(() => writes.ok.length >= okAfterRestart + 60, 30_000);
  await writes.stop();
  await assertExactlyOnce(writes.ok, stream.received);
  abort.abort();
  await stream.done;
});

it("a subscriber whose gateway alone lost the broker catches up from storage", async () => {
  const domain = unique("alone");
  const abort = new AbortController();
  const stream = follow(domain, abort.signal);
  await untilLive(domain, stream.received);
  const writes = keepWriting(domain);
  await until(() => writes.ok.length >= 20);
  // The writer keeps publishing while the reader's queue is gone: only storage has those events.
  assert.ok(dropConnectionsOf(readerGw) > 0, "the reader gateway had broker connections");
  const okAtDrop = writes.ok.length;
  await until(() => writes.ok.length >= okAtDrop + 80, 30_000);
  await writes.stop();
  await assertExactlyOnce(writes.ok, stream.received);
  abort.abort();
  await stream.done;
});
