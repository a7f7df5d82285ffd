import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError } from "@stategate/sdk-node";
import pg from "pg";
import type { TestGateway } from "./helpers.js";
import { dropPostgresTables, sharedBackendEnv, startTestGateway, testBackends, unique } from "./helpers.js";
import type { TcpCut } from "./tcp-cut.js";
import { createTcpCut } from "./tcp-cut.js";

/**
 * Two kinds of "too slow" reach a client differently. A backend that is up and
 * ends an operation at its own time limit (PostgreSQL's statement_timeout)
 * answers DEADLINE_EXCEEDED; a backend that cannot be reached, or stops
 * answering altogether, answers UNAVAILABLE, the code clients retry elsewhere on.
 */

const tag = `tmo${Math.random().toString(36).slice(2, 10)}`;
const statementTimeoutMs = 300;

/** Gateway environment for PostgreSQL at `addr` with a short statement timeout, embedded cache and channel. */
function env(addr: string): Record<string, string> {
  const base = sharedBackendEnv(tag, { storage: "postgres", cache: "memory", channel: "memory" });
  const storage = JSON.parse(base.STATEGATE_STORAGE_PROVIDER as string) as Record<string, unknown>;
  return {
    ...base,
    STATEGATE_STORAGE_PROVIDER: JSON.stringify({ ...storage, addr, statementTimeoutMs, connectTimeoutMs: 1000 }),
  };
}

async function failure(call: Promise<unknown>): Promise<{ code: string; message: string; ms: number }> {
  const started = Date.now();
  try {
    await call;
  } catch (err) {
    const e = ConnectError.from(err);
    return { code: Code[e.code], message: e.rawMessage, ms: Date.now() - started };
  }
  assert.fail("the call succeeded");
}

let proxy: TcpCut;
let direct: TestGateway;
let proxied: TestGateway;
before(async () => {
  proxy = await createTcpCut(testBackends.postgres);
  direct = await startTestGateway(env(testBackends.postgres));
  proxied = await startTestGateway(env(`127.0.0.1:${proxy.port}`));
});
after(async () => {
  proxy?.restore();
  await Promise.all([direct?.close(), proxied?.close()]);
  await proxy?.close();
  await dropPostgresTables(tag);
});

describe("a backend's time limits", () => {
  it("a statement PostgreSQL ends at its statement_timeout is DEADLINE_EXCEEDED, long before the call's own deadline, and writes nothing", async () => {
    const client = direct.client({ protocol: "grpc" });
    const ref = { domain: unique("slow"), type: "t", key: "k" };
    await client.entity.set({ ...ref, values: { n: 1 } });
    const [host, port] = testBackends.postgres.split(":");
    const locker = new pg.Client({ host, port: Number(port), user: "postgres", database: "test" });
    await locker.connect();
    try {
      // Another session holds the entity's row: the Edit waits on it until the server gives up.
      await locker.query("BEGIN");
      const { rowCount } = await locker.query(
        `SELECT 1 FROM "public"."${tag}_entities" WHERE "domain" = $1 AND "key" = $2 FOR UPDATE`,
        [ref.domain, ref.key],
      );
      assert.equal(rowCount, 1, "the row is locked");
      const got = await failure(client.entity.edit({ ...ref, values: { n: 2 } }, { timeoutMs: 30_000 }));
      assert.equal(got.code, "DeadlineExceeded", got.message);
      assert.ok(got.ms >= statementTimeoutMs && got.ms < 5_000, `answered after ${got.ms} ms`);
      assert.match(got.message, /^a backend ran out of time \(request id [^)]+\)$/, "no SQL, no address");
      await locker.query("ROLLBACK");
    } finally {
      await locker.end();
    }
    const { entity } = await client.entity.get(ref);
    assert.equal(entity?.version, 1n, "nothing was written");
    assert.deepEqual(entity?.values, { n: 1 });
    assert.equal((await client.event.search(ref)).events.length, 1);
    const edit = await client.entity.edit({ ...ref, values: { n: 2 } });
    assert.equal(edit.event?.version, 2n, "the gateway serves again once the row is free");
  });

  it("a PostgreSQL that is cut off or stops answering is UNAVAILABLE, not DEADLINE_EXCEEDED", async () => {
    const client = proxied.client({ protocol: "grpc" });
    const ref = { domain: unique("gone"), type: "t", key: "k" };
    await client.entity.set({ ...ref, values: { n: 1 } });
    try {
      // Stalled: connections stay open but nothing comes back; only our own timers can end the call.
      proxy.hold();
      const stalled = await failure(client.entity.get(ref, { timeoutMs: 30_000 }));
      assert.equal(stalled.code, "Unavailable", stalled.message);
      assert.ok(stalled.ms < 10_000, `answered after ${stalled.ms} ms`);
      proxy.restore();
      proxy.cut();
      const refused = await failure(client.entity.get(ref, { timeoutMs: 30_000 }));
      assert.equal(refused.code, "Unavailable", refused.message);
    } finally {
      proxy.restore();
    }
    // Back again: the same gateway serves without a restart.
    for (let i = 0; ; i++) {
      try {
        assert.equal((await client.entity.get(ref)).entity?.version, 1n);
        break;
      } catch (err) {
        if (i >= 50) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  });
});
