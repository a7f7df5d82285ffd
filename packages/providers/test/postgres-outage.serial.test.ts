import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { after, describe, it } from "node:test";
import { promisify } from "node:util";
import pg from "pg";
import { postgresControlCommand } from "../../../scripts/service-control.mjs";
import { put, sleep, uniqueDomain, waitFor } from "../src/conformance/helpers.js";
import { ProviderUnavailableError, VersionConflictError } from "../src/errors.js";
import { createPostgresStorage } from "../src/storage/postgres.js";
import { postgresTables } from "../src/storage/postgres-schema.js";
import type { EntityRef, Storage } from "../src/types.js";

// These tests stop the shared PostgreSQL: the test runner runs *.serial.test.ts files alone.
const addr = process.env.STATEGATE_TEST_POSTGRES_ADDR ?? "127.0.0.1:5432";
const server = { addr, user: "postgres", password: "", database: "test" };
const prefix = `t${randomBytes(4).toString("hex")}_`;

/**
 * Stops or starts the server under test (Debian's pg_ctlcluster, or
 * STATEGATE_TEST_POSTGRES_CTL). Asynchronous, so the event loop, and with it
 * every timing measured here, keeps running meanwhile.
 */
async function cluster(action: "start" | "stop"): Promise<void> {
  const [command, ...args] = postgresControlCommand(action);
  await promisify(execFile)(command, args, { timeout: 60_000 });
}

async function reachable(): Promise<boolean> {
  const [host, port] = addr.split(/:(?=\d+$)/);
  const client = new pg.Client({ host, port: Number(port), user: server.user, database: server.database });
  client.on("error", () => {});
  try {
    await client.connect();
    await client.end();
    return true;
  } catch {
    return false;
  }
}

after(async () => {
  const [host, port] = addr.split(/:(?=\d+$)/);
  const client = new pg.Client({ host, port: Number(port), user: server.user, database: server.database });
  await client.connect();
  try {
    const t = postgresTables("public", prefix);
    await client.query(`DROP TABLE IF EXISTS ${t.entities}, ${t.events}, ${t.outbox}, ${t.position}, ${t.schema}`);
  } finally {
    await client.end();
  }
});

/** Retries a commit on `ref` at `version` until the server takes it again; returns how long that took. */
async function untilCommits(storage: Storage, ref: EntityRef, version: number): Promise<number> {
  const started = Date.now();
  for (;;) {
    try {
      await put(storage, ref, version, { n: version + 1 });
      return Date.now() - started;
    } catch (error) {
      assert.ok(error instanceof ProviderUnavailableError, `only unavailable while it restarts, got ${error}`);
      if (Date.now() - started > 30_000) throw error;
      await sleep(100);
    }
  }
}

describe("postgres storage: server outages", () => {
  it("answers unavailable within its deadline while PostgreSQL is stopped, and writes again after it starts", async (t) => {
    const storage = await createPostgresStorage({
      ...server,
      tablePrefix: prefix,
      connectTimeoutMs: 1000,
      statementTimeoutMs: 2000,
    });
    let stopped = false;
    try {
      const ref = { domain: uniqueDomain("outage"), type: "t", key: "k" };
      await put(storage, ref, 0, { n: 1 });
      await put(storage, { ...ref, key: "idle" }, 0, {}); // a second pooled connection, idle when the server stops

      let started = Date.now();
      stopped = true;
      await cluster("stop");
      t.diagnostic(`pg_ctlcluster stop took ${Date.now() - started} ms`);

      for (const call of [() => put(storage, ref, 1, { n: 2 }), () => storage.ping(), () => storage.getEntity(ref)]) {
        started = Date.now();
        await assert.rejects(call(), (error) => {
          assert.ok(error instanceof ProviderUnavailableError, `a ProviderUnavailableError, got ${error}`);
          assert.ok(!error.message.includes("127.0.0.1"), error.message);
          return true;
        });
        const took = Date.now() - started;
        t.diagnostic(`a call while stopped failed in ${took} ms`);
        assert.ok(took < 3000, `failed within the deadline (${took} ms)`);
      }

      started = Date.now();
      await cluster("start");
      stopped = false;
      t.diagnostic(`pg_ctlcluster start took ${Date.now() - started} ms`);
      const recovered = await untilCommits(storage, ref, 1);
      t.diagnostic(`the same Storage committed again ${recovered} ms after the start returned`);
      assert.deepEqual(await storage.getEntity(ref), { ...ref, values: { n: 2 }, version: 2 });
      const log = await storage.searchEvents({ ...ref, filter: [], limit: 10, offset: 0 });
      assert.deepEqual(
        log.map((e) => e.version),
        [1, 2],
        "the refused commits left nothing behind",
      );
    } finally {
      // Whatever happened above, leave the server running for everyone else.
      if (stopped || !(await reachable())) await cluster("start");
      await storage.close();
    }
  });

  it("keeps every call settled with a result or ProviderUnavailableError while writers run through a restart", async (t) => {
    const storages = await Promise.all(
      [1, 2].map(() =>
        createPostgresStorage({ ...server, tablePrefix: prefix, connectTimeoutMs: 1000, statementTimeoutMs: 2000 }),
      ),
    );
    let stopped = false;
    const escaped: unknown[] = [];
    const onEscape = (error: unknown) => escaped.push(error);
    process.on("uncaughtException", onEscape);
    process.on("unhandledRejection", onEscape);
    try {
      const domain = uniqueDomain("restart");
      let writing = true;
      const outcomes = { ok: 0, unavailable: 0, slowest: 0 };
      const writers = Array.from({ length: 6 }, async (_, i) => {
        const storage = storages[i % storages.length] as Storage;
        const ref = { domain, type: "t", key: `k${i}` };
        let version = 0;
        while (writing) {
          const started = Date.now();
          try {
            await put(storage, ref, version, { version });
            version++;
            outcomes.ok++;
          } catch (error) {
            if (error instanceof ProviderUnavailableError) {
              outcomes.unavailable++;
            } else if (!(error instanceof VersionConflictError)) {
              throw error;
            }
            // A commit whose COMMIT answer was lost may have applied: read the
            // version again before the next write (the contract's advice).
            version = await storage.getVersion(ref).catch(() => version);
            await sleep(50);
          }
          outcomes.slowest = Math.max(outcomes.slowest, Date.now() - started);
        }
        return { ref, version };
      });
      await waitFor(() => outcomes.ok >= 30, "writes before the stop", 10_000);
      stopped = true;
      await cluster("stop");
      await sleep(1000);
      await cluster("start");
      stopped = false;
      const okAtStart = outcomes.ok;
      await waitFor(() => outcomes.ok >= okAtStart + 30, "writes after the start", 30_000);
      writing = false;
      const finals = await Promise.all(writers);
      t.diagnostic(
        `${outcomes.ok} commits OK, ${outcomes.unavailable} unavailable; slowest call ${outcomes.slowest} ms`,
      );
      assert.ok(outcomes.unavailable > 0, "some calls met the stopped server");
      assert.ok(outcomes.slowest < 5000, `no call hung (${outcomes.slowest} ms)`);
      for (const { ref, version } of finals) {
        const log = await (storages[0] as Storage).searchEvents({ ...ref, filter: [], limit: 1000, offset: 0 });
        assert.deepEqual(
          log.map((e) => e.version),
          Array.from({ length: version }, (_, i) => i + 1),
          "versions without gaps or duplicates",
        );
      }
      assert.deepEqual(escaped, [], "no error escaped the pool");
    } finally {
      process.off("uncaughtException", onEscape);
      process.off("unhandledRejection", onEscape);
      if (stopped || !(await reachable())) await cluster("start");
      await Promise.all(storages.map((s) => s.close()));
    }
  });
});
