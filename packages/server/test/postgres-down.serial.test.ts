import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, it } from "node:test";
import { promisify } from "node:util";
import type { NodeClient } from "@stategate/sdk-node";
import { Code, ConnectError, createClient } from "@stategate/sdk-node";
import { postgresControlCommand } from "../../../scripts/service-control.mjs";
import type { GatewayProcess } from "./helpers.js";
import { spawnGateway, unique, until } from "./helpers.js";

// Stops the shared PostgreSQL: the test runner runs *.serial.test.ts files alone.
const run = promisify(execFile);
const postgresAddr = process.env.STATEGATE_TEST_POSTGRES_ADDR ?? "127.0.0.1:5432";
const [postgresHost = "127.0.0.1", postgresPort = "5432"] = postgresAddr.split(/:(?=\d+$)/);
// The gateway's tables live in a schema of their own, dropped at the end.
const schema = `pgdown_${Math.random().toString(36).slice(2, 10)}`;
const dataDir = mkdtempSync(join(tmpdir(), "stategate-pgdown-"));
let gw: GatewayProcess;
let client: NodeClient;
let stopped = false;

/** Stops or starts the server under test (pg_ctlcluster, or STATEGATE_TEST_POSTGRES_CTL), without blocking the event loop. */
async function cluster(action: "start" | "stop"): Promise<void> {
  const [command, ...args] = postgresControlCommand(action);
  await run(command, args, { timeout: 60_000 });
}

const psql = (sql: string) =>
  run("psql", ["-h", postgresHost, "-p", postgresPort, "-U", "postgres", "-d", "test", "-qAtc", sql]);

before(async () => {
  gw = await spawnGateway({
    STATEGATE_DATA_DIR: dataDir,
    STATEGATE_STORAGE_PROVIDER: JSON.stringify({
      name: "postgres",
      addr: postgresAddr,
      user: "postgres",
      password: "",
      database: "test",
      schema,
      connectTimeoutMs: 1000,
      statementTimeoutMs: 2000,
    }),
  });
  client = createClient({ baseUrl: gw.baseUrl, protocol: "grpc" });
});

after(async () => {
  // Whatever happened, leave the server running for everyone else.
  if (stopped) await cluster("start");
  client?.close();
  gw?.child.kill("SIGTERM");
  await gw?.exited;
  await psql(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  rmSync(dataDir, { recursive: true, force: true });
});

it("a Set answers UNAVAILABLE within its deadline while PostgreSQL is stopped, and works again after it starts", async (t) => {
  const ref = { domain: unique("pgdown"), type: "t", key: "k" };
  await client.entity.set({ ...ref, values: { n: 1 } });

  stopped = true;
  await cluster("stop");
  try {
    for (const n of [2, 3]) {
      const started = Date.now();
      await assert.rejects(client.entity.set({ ...ref, values: { n } }, { timeoutMs: 3_000 }), (err) => {
        const e = ConnectError.from(err);
        assert.equal(Code[e.code], "Unavailable", e.message);
        for (const hidden of [postgresPort, "INSERT", "ECONNREFUSED"]) {
          assert.ok(!e.message.includes(hidden), `the message hides ${hidden}: ${e.message}`);
        }
        return true;
      });
      const took = Date.now() - started;
      t.diagnostic(`Set ${n - 1} while stopped: UNAVAILABLE in ${took} ms`);
      assert.ok(took < 3_000, `answered in ${took} ms, within the deadline`);
    }
  } finally {
    await cluster("start");
    stopped = false;
  }

  const started = Date.now();
  await until(async () => {
    try {
      await client.entity.set({ ...ref, values: { n: 4 } }, { timeoutMs: 3_000 });
      return true;
    } catch {
      return false;
    }
  }, 30_000);
  t.diagnostic(`Set OK again ${Date.now() - started} ms after PostgreSQL started, same gateway process`);
  const { entity } = await client.entity.get(ref);
  assert.deepEqual(entity?.values, { n: 4 });
  assert.equal(entity?.version, 2n, "the refused Sets wrote nothing");
  const { events } = await client.event.search({ ...ref });
  assert.deepEqual(
    events.map((e) => e.version),
    [1n, 2n],
  );
  assert.equal(gw.child.exitCode, null, "the gateway kept running throughout");
});
