import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, it } from "node:test";
import type { NodeClient } from "@stategate/sdk-node";
import { Code, ConnectError, createClient, expiresIn } from "@stategate/sdk-node";
import type { GatewayProcess } from "./helpers.js";
import { freePort, listening, spawnGateway, unique, until } from "./helpers.js";

/** A redis-server of this test's own, without persistence, so stopping it disturbs no one else. */
async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn("redis-server", ["--port", String(port), "--save", "", "--appendonly", "no"], {
    stdio: "ignore",
  });
  await until(() => listening(port));
  return child;
}

async function stopRedis(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGKILL");
  await exited;
}

const dataDirs: string[] = [];
const gateways: GatewayProcess[] = [];
const clients: NodeClient[] = [];
const servers: ChildProcess[] = [];

/** A gateway on embedded storage whose cache is the redis at `port`. */
async function gatewayOn(port: number): Promise<NodeClient> {
  const dataDir = mkdtempSync(join(tmpdir(), "stategate-redis-down-"));
  dataDirs.push(dataDir);
  const gw = await spawnGateway({
    STATEGATE_DATA_DIR: dataDir,
    STATEGATE_CACHE_PROVIDER: JSON.stringify({ name: "redis", addr: `127.0.0.1:${port}`, timeoutMs: 500 }),
  });
  gateways.push(gw);
  const client = createClient({ baseUrl: gw.baseUrl, protocol: "grpc" });
  clients.push(client);
  return client;
}

after(async () => {
  for (const client of clients) client.close();
  for (const gw of gateways) gw.child.kill("SIGTERM");
  await Promise.all(gateways.map((gw) => gw.exited));
  await Promise.all(servers.map(stopRedis));
  for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
});

/** Asserts UNAVAILABLE, fast, without the backend's address in the message. */
async function assertUnavailable(call: Promise<unknown>, hidden: string[]): Promise<void> {
  const started = Date.now();
  await assert.rejects(call, (err) => {
    const e = ConnectError.from(err);
    assert.equal(Code[e.code], "Unavailable", e.message);
    for (const secret of hidden) assert.ok(!e.message.includes(secret), `the message hides ${secret}: ${e.message}`);
    return true;
  });
  assert.ok(Date.now() - started < 3_000, `answered in ${Date.now() - started} ms, within the deadline`);
}

/** Waits until a cache Set goes through again, without restarting the gateway. */
async function untilCacheWorks(client: NodeClient, domain: string, value: number): Promise<void> {
  await until(async () => {
    try {
      await client.cache.set({ domain, key: "k", value }, { timeoutMs: 3_000 });
      return true;
    } catch {
      return false;
    }
  }, 15_000);
}

it("a redis cache that goes down gives UNAVAILABLE within the deadline, and the gateway recovers with it", async () => {
  const port = await freePort();
  let redis = await startRedis(port);
  servers.push(redis);
  const client = await gatewayOn(port);
  const domain = unique("redis-down");
  await client.cache.set({ domain, key: "k", value: 1 });
  assert.equal((await client.cache.get({ domain, key: "k" })).value, 1);

  await stopRedis(redis);
  await assertUnavailable(client.cache.get({ domain, key: "k" }, { timeoutMs: 3_000 }), [String(port)]);
  await assertUnavailable(client.mutex.lock({ domain, key: "k", exp: expiresIn(60_000) }, { timeoutMs: 3_000 }), [
    String(port),
  ]);
  await assertUnavailable(client.cache.set({ domain, key: "k", value: 2 }, { timeoutMs: 3_000 }), [String(port)]);

  redis = await startRedis(port);
  servers.push(redis);
  await untilCacheWorks(client, domain, 2);
  assert.equal((await client.cache.get({ domain, key: "k" })).value, 2);
  await client.mutex.lock({ domain, key: "k", exp: expiresIn(60_000) });
  await assert.rejects(client.mutex.lock({ domain, key: "k", exp: expiresIn(60_000) }), (err) => {
    assert.equal(Code[ConnectError.from(err).code], "AlreadyExists");
    return true;
  });
});

it("a gateway starts while its redis is down, answers UNAVAILABLE, and works once redis is up", async () => {
  const port = await freePort();
  const client = await gatewayOn(port);
  const domain = unique("redis-late");
  await assertUnavailable(client.cache.get({ domain, key: "k" }, { timeoutMs: 3_000 }), [String(port)]);
  servers.push(await startRedis(port));
  await untilCacheWorks(client, domain, 3);
  assert.equal((await client.cache.get({ domain, key: "k" })).value, 3);
});
