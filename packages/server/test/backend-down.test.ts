import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, it } from "node:test";
import type { NodeClient } from "@stategate/sdk-node";
import { Code, ConnectError, createClient, expiresIn } from "@stategate/sdk-node";
import type { GatewayProcess } from "./helpers.js";
import {
  dropMysqlTables,
  freePort,
  listening,
  mysqlStorage,
  spawnGateway,
  testBackends,
  unique,
  until,
} from "./helpers.js";
import type { TcpCut } from "./tcp-cut.js";
import { createTcpCut } from "./tcp-cut.js";

/** A memcached of this test's own, so stopping it disturbs no one else. */
async function startMemcached(port: number): Promise<ChildProcess> {
  const child = spawn("/usr/bin/memcached", ["-l", "127.0.0.1", "-p", String(port), "-U", "0", "-u", "root"], {
    stdio: "ignore",
  });
  await until(() => listening(port));
  return child;
}

const tag = `bd${Math.random().toString(36).slice(2, 10)}`;
const dataDir = mkdtempSync(join(tmpdir(), "stategate-down-"));
let mysqlCut: TcpCut;
let memcachedPort: number;
let memcached: ChildProcess;
let gw: GatewayProcess;
let client: NodeClient;

before(async () => {
  mysqlCut = await createTcpCut(testBackends.mysql);
  memcachedPort = await freePort();
  memcached = await startMemcached(memcachedPort);
  gw = await spawnGateway({
    STATEGATE_DATA_DIR: dataDir,
    STATEGATE_STORAGE_PROVIDER: JSON.stringify({
      ...mysqlStorage(tag, `127.0.0.1:${mysqlCut.port}`),
      connectTimeoutMs: 1000,
    }),
    STATEGATE_CACHE_PROVIDER: JSON.stringify({ name: "memcached", addr: `127.0.0.1:${memcachedPort}`, timeoutMs: 500 }),
  });
  client = createClient({ baseUrl: gw.baseUrl, protocol: "grpc" });
});

after(async () => {
  client?.close();
  gw?.child.kill("SIGTERM");
  await gw?.exited;
  memcached?.kill();
  await mysqlCut?.close();
  await dropMysqlTables(tag);
  rmSync(dataDir, { recursive: true, force: true });
});

/**
 * The calls' deadline. Backends answer in well under a second here, but a
 * loaded CI machine (two cores, tests in parallel) has been seen near 3 s.
 */
const DEADLINE_MS = 8_000;

/**
 * Asserts UNAVAILABLE, fast, without the backend's address in the message,
 * and that the gateway logged the failure at error level under the request
 * id the client was given.
 */
async function assertUnavailable(call: Promise<unknown>, hidden: string[]): Promise<void> {
  const started = Date.now();
  const requestId = await call.then(
    () => assert.fail("the call should fail"),
    (err) => {
      const e = ConnectError.from(err);
      assert.equal(Code[e.code], "Unavailable", e.message);
      for (const secret of hidden) assert.ok(!e.message.includes(secret), `the message hides ${secret}: ${e.message}`);
      return e.metadata.get("x-request-id");
    },
  );
  assert.ok(Date.now() - started < DEADLINE_MS, `answered in ${Date.now() - started} ms, within the deadline`);
  assert.ok(requestId, "the error carries x-request-id");
  await until(() => logged(requestId).length > 0, 2_000);
  const [line] = logged(requestId);
  assert.equal(line?.level, 50, "an unreachable backend is logged as an error");
  assert.ok(line?.err, "with the cause, for the operator");
}

/** The gateway's JSON log lines that carry `requestId`. */
function logged(requestId: string): Record<string, unknown>[] {
  return gw.output.flatMap((text) => {
    try {
      const line = JSON.parse(text) as Record<string, unknown>;
      return line.requestId === requestId ? [line] : [];
    } catch {
      return [];
    }
  });
}

it("storage that goes down gives UNAVAILABLE within the deadline, and the gateway recovers with it", async () => {
  const ref = { domain: unique("down"), type: "t", key: "k" };
  await client.entity.set({ ...ref, values: { n: 1 } });
  mysqlCut.cut();
  await assertUnavailable(client.entity.get(ref, { timeoutMs: DEADLINE_MS }), [String(mysqlCut.port), "SELECT"]);
  await assertUnavailable(client.entity.set({ ...ref, values: { n: 2 } }, { timeoutMs: DEADLINE_MS }), [
    String(mysqlCut.port),
    "INSERT",
  ]);
  mysqlCut.restore();
  await until(async () => {
    try {
      await client.entity.get(ref);
      return true;
    } catch {
      return false;
    }
  }, 15_000);
  const { entity } = await client.entity.get(ref);
  assert.ok(entity?.version === 1n || entity?.version === 2n, "state and log agree whatever the cut interrupted");
  const { events } = await client.event.search({ ...ref });
  assert.deepEqual(entity?.values, events.at(-1)?.entity?.values);
});

it("a cache that goes down gives UNAVAILABLE within the deadline, and the gateway recovers with it", async () => {
  const domain = unique("down");
  await client.cache.set({ domain, key: "k", value: 1 });
  memcached.kill("SIGKILL");
  await assertUnavailable(client.cache.get({ domain, key: "k" }, { timeoutMs: DEADLINE_MS }), [String(memcachedPort)]);
  await assertUnavailable(client.mutex.lock({ domain, key: "k", exp: expiresIn(60_000) }, { timeoutMs: DEADLINE_MS }), [
    String(memcachedPort),
  ]);
  memcached = await startMemcached(memcachedPort);
  await until(async () => {
    try {
      await client.cache.set({ domain, key: "k", value: 2 });
      return true;
    } catch {
      return false;
    }
  }, 15_000);
  assert.equal((await client.cache.get({ domain, key: "k" })).value, 2);
});
