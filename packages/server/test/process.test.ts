import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { createSqliteStorage } from "@stategate/providers";
import { Code, ConnectError, createClient } from "@stategate/sdk-node";
import pg from "pg";
import {
  dropPostgresTables,
  repoRoot,
  sharedBackendEnv,
  spawnGateway,
  testBackends,
  unique,
  until,
} from "./helpers.js";
import { createTcpCut } from "./tcp-cut.js";

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "stategate-proc-"));
  dirs.push(dir);
  return dir;
}
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe("the stategate process", () => {
  it("keeps every entity equal to the last event of its log after kill -9 during a burst of Sets", async () => {
    const dataDir = tempDir();
    const first = await spawnGateway({ STATEGATE_DATA_DIR: dataDir });
    const client = createClient({ baseUrl: first.baseUrl, protocol: "grpc" });
    const domain = unique("crash");
    const keys = Array.from({ length: 16 }, (_, i) => `k${i}`);
    let acknowledged = 0;
    const writers = keys.map(async (key) => {
      for (let n = 0; ; n++) {
        try {
          await client.entity.set({ domain, type: "t", key, values: { key, n, pad: "x".repeat(200) } });
          acknowledged++;
        } catch {
          return; // the process died under us
        }
      }
    });
    while (acknowledged < 300) await new Promise((r) => setTimeout(r, 10));
    first.child.kill("SIGKILL");
    await Promise.all(writers);
    assert.equal((await first.exited).signal, "SIGKILL");

    const second = await spawnGateway({ STATEGATE_DATA_DIR: dataDir });
    try {
      const again = createClient({ baseUrl: second.baseUrl, protocol: "connect" });
      let checked = 0;
      for (const key of keys) {
        const { events } = await again.event.search({ domain, type: "t", key, limit: 1000 });
        assert.deepEqual(
          events.map((e) => e.version),
          events.map((_, i) => BigInt(i + 1)),
          `${key}: versions are gap-free`,
        );
        const last = events.at(-1);
        if (!last) {
          await assert.rejects(
            again.entity.get({ domain, type: "t", key }),
            (e) => ConnectError.from(e).code === Code.NotFound,
          );
          continue;
        }
        const { entity } = await again.entity.get({ domain, type: "t", key });
        assert.equal(entity?.version, last.version, `${key}: state version equals the last event`);
        assert.deepEqual(entity?.values, last.entity?.values, `${key}: state equals the last event`);
        checked++;
      }
      assert.equal(checked, keys.length, "every writer got at least one Set in");
    } finally {
      second.child.kill("SIGTERM");
      await second.exited;
    }
  });

  it("ends open streams with UNAVAILABLE, closes providers and exits 0 on SIGTERM and SIGINT", async () => {
    for (const signal of ["SIGTERM", "SIGINT"] as const) {
      const dataDir = tempDir();
      const db = join(dataDir, "stategate.db");
      const gw = await spawnGateway({ STATEGATE_DATA_DIR: dataDir });
      const client = createClient({ baseUrl: gw.baseUrl, protocol: "grpc" });
      const domain = unique("stop");
      await client.entity.set({ domain, type: "t", key: "k", values: { n: 1 } });
      await client.entity.edit({ domain, type: "t", key: "k", values: { n: 2 } });
      assert.ok(existsSync(`${db}-wal`), "while it runs, SQLite writes ahead to the -wal file");
      const received: string[] = [];
      const stream = (async () => {
        for await (const { event } of client.event.stream({ domain, type: "*", afterPosition: 0n })) {
          received.push(event?.entity?.key ?? "");
        }
        return "ended";
      })();
      while (received.length === 0) await new Promise((r) => setTimeout(r, 10));
      const started = Date.now();
      gw.child.kill(signal);
      const outcome = await Promise.race([
        stream.catch((e) => `error ${ConnectError.from(e).code}`),
        new Promise((r) => setTimeout(() => r("still open"), 5_000)),
      ]);
      // UNAVAILABLE, not OK: the client must not think the stream finished, and reconnects (to another gateway).
      assert.equal(outcome, `error ${Code.Unavailable}`, "the stream ends with UNAVAILABLE");
      const { code } = await gw.exited;
      assert.equal(code, 0, gw.output.join("\n"));
      assert.ok(Date.now() - started < 5_000);
      assert.ok(
        gw.output.some((l) => l.includes("stategate stopped")),
        "providers closed",
      );
      assert.deepEqual(
        gw.output.filter((l) => l.includes("provider close failed")),
        [],
        "every provider closed without an error",
      );
      // A clean close checkpoints the write-ahead log into the database file and removes it.
      assert.ok(!existsSync(`${db}-wal`) || statSync(`${db}-wal`).size === 0, "the -wal file is gone or empty");
      const reopened = await createSqliteStorage({ path: db });
      try {
        assert.deepEqual(await reopened.getEntity({ domain, type: "t", key: "k" }), {
          domain,
          type: "t",
          key: "k",
          values: { n: 2 },
          version: 2,
        });
        const log = await reopened.searchEvents({ domain, type: "t", filter: [], limit: 10, offset: 0 });
        assert.deepEqual(
          log.map((e) => e.version),
          [1, 2],
          "the file opens cleanly, with every event",
        );
      } finally {
        await reopened.close();
      }
    }
  });

  it("on SIGTERM refuses new calls while a call in flight completes OK, then exits 0", async () => {
    // PostgreSQL behind a forwarder the test holds: the call stays in flight as long as the test wants.
    const proxy = await createTcpCut(testBackends.postgres);
    const tag = `stop${Math.random().toString(36).slice(2, 10)}`;
    const env = sharedBackendEnv(tag, { storage: "postgres", cache: "memory", channel: "memory" });
    const storage = { ...JSON.parse(env.STATEGATE_STORAGE_PROVIDER as string), addr: `127.0.0.1:${proxy.port}` };
    let gw: Awaited<ReturnType<typeof spawnGateway>> | undefined;
    try {
      gw = await spawnGateway({
        ...env,
        STATEGATE_STORAGE_PROVIDER: JSON.stringify(storage),
        STATEGATE_DATA_DIR: tempDir(),
        STATEGATE_SHUTDOWN_GRACE_MS: "10000",
      });
      const client = createClient({ baseUrl: gw.baseUrl, protocol: "grpc" });
      const ref = { domain: unique("inflight"), type: "t", key: "k" };
      await client.entity.set({ ...ref, values: { n: 1 } });

      proxy.hold();
      let settled = false;
      const inFlight = client.entity.edit({ ...ref, values: { n: 2 } }).finally(() => {
        settled = true;
      });
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(settled, false, "the Edit waits on the held backend");

      gw.child.kill("SIGTERM");
      const running = gw;
      await until(() => running.output.some((l) => l.includes('"msg":"shutting down"')));
      // New calls are refused: a new connection, and a new call on the connection the Edit is in flight on.
      const refused = await new Promise<string>((resolve) => {
        const socket = net.connect(running.port, "127.0.0.1");
        socket.once("connect", () => {
          socket.destroy();
          resolve("accepted");
        });
        socket.once("error", (err: NodeJS.ErrnoException) => resolve(err.code ?? String(err)));
      });
      assert.equal(refused, "ECONNREFUSED", "the port no longer accepts connections");
      for (const [door, c] of [
        ["a new Connect client", createClient({ baseUrl: running.baseUrl, protocol: "connect", httpVersion: "1.1" })],
        ["the gRPC client with the call in flight", client],
      ] as const) {
        const outcome = await c.entity.get(ref, { timeoutMs: 5_000 }).then(
          () => "OK",
          (e: unknown) => Code[ConnectError.from(e).code],
        );
        assert.equal(outcome, "Unavailable", `${door}: a call after SIGTERM`);
      }
      assert.equal(settled, false, "the Edit is still in flight");
      assert.equal(running.child.exitCode, null, "the process waits for it");

      proxy.restore();
      const edit = await inFlight;
      assert.equal(edit.event?.version, 2n, "the call in flight completed OK");
      assert.deepEqual(edit.event?.entity?.values, { n: 2 });
      const { code } = await running.exited;
      assert.equal(code, 0, running.output.join("\n"));
      assert.ok(running.output.some((l) => l.includes("stategate stopped")));
      assert.deepEqual(
        running.output.filter((l) => l.includes("provider close failed")),
        [],
      );
      // What it answered is what it committed.
      const [host, port] = testBackends.postgres.split(":");
      const check = new pg.Client({ host, port: Number(port), user: "postgres", database: "test" });
      await check.connect();
      try {
        const { rows } = await check.query<{ version: string }>(
          `SELECT version FROM "public"."${tag}_entities" WHERE "domain" = $1 AND "key" = $2`,
          [ref.domain, ref.key],
        );
        assert.deepEqual(
          rows.map((r) => Number(r.version)),
          [2],
        );
      } finally {
        await check.end();
      }
    } finally {
      proxy.restore();
      if (gw && gw.child.exitCode === null && gw.child.signalCode === null) {
        gw.child.kill("SIGKILL");
        await gw.exited;
      }
      await proxy.close();
      await dropPostgresTables(tag);
    }
  });

  it("names the variable when start-up fails for reasons found only while starting", async () => {
    const busy = await spawnGateway({ STATEGATE_DATA_DIR: tempDir() });
    const garbage = join(tempDir(), "not-a-database.db");
    writeFileSync(garbage, "this is not a SQLite file, and stategate must not write to it\n".repeat(100));
    try {
      for (const [env, expected] of [
        [{ STATEGATE_PORT: String(busy.port) }, /^stategate: STATEGATE_PORT: port \d+ on 127.0.0.1 is already in use$/],
        [{ STATEGATE_DATA_DIR: "/proc/stategate-test/x" }, /^stategate: STATEGATE_DATA_DIR: cannot open the provider/],
        [{ STATEGATE_DATA_DIR: "/dev/null" }, /^stategate: STATEGATE_DATA_DIR: /],
        [
          { STATEGATE_HOST: "999.1.1.1", STATEGATE_AUTH_DISABLED: "true" },
          /^stategate: STATEGATE_HOST: cannot listen on "999.1.1.1"/,
        ],
        [
          { STATEGATE_HOST: "0.0.0.0" },
          /^stategate: STATEGATE_HOST: listening on 0.0.0.0 needs authentication: set STATEGATE_JWKS_URI/,
        ],
        [{ STATEGATE_JWKS_URI: "ftp://x" }, /^stategate: STATEGATE_JWKS_URI: expected an http\(s\) URL/],
        [{ STATEGATE_JWT_ALGORITHMS: "RS256,HS256" }, /^stategate: STATEGATE_JWT_ALGORITHMS: "HS256" is not allowed/],
        [
          { STATEGATE_STORAGE_PROVIDER: JSON.stringify({ name: "sqlite", path: garbage }) },
          /^stategate: STATEGATE_STORAGE_PROVIDER: cannot open the provider/,
        ],
      ] as const) {
        const result = spawnSync(process.execPath, [join(repoRoot, "packages/server/dist/bin/stategate.js")], {
          env: {
            ...process.env,
            ...{ STATEGATE_PORT: "0", STATEGATE_DATA_DIR: tempDir() },
            ...env,
          } as NodeJS.ProcessEnv,
          encoding: "utf8",
          timeout: 20_000,
        });
        assert.equal(result.signal, null, `${JSON.stringify(env)} did not hang`);
        assert.equal(result.status, 2, result.stderr);
        const lines = result.stderr.trim().split("\n");
        assert.equal(lines.length, 1, result.stderr);
        assert.match(lines[0] ?? "", expected);
      }
      assert.match(readFileSync(garbage, "utf8"), /^this is not a SQLite file/, "the foreign file is untouched");
    } finally {
      busy.child.kill("SIGTERM");
      await busy.exited;
    }
  });

  for (const [variable, value, expected] of [
    ["STATEGATE_STORAGE_PROVIDER", '{"name":"mongo"}', /STATEGATE_STORAGE_PROVIDER: .*mongo.*sqlite/],
    ["STATEGATE_CACHE_PROVIDER", "{not json", /STATEGATE_CACHE_PROVIDER: .*malformed JSON/],
    ["STATEGATE_CHANNEL_PROVIDER", '"memory"', /STATEGATE_CHANNEL_PROVIDER: expected a JSON object/],
    ["STATEGATE_STORAGE_PROVIDER", '{"name":"sqlite","path":42}', /STATEGATE_STORAGE_PROVIDER: .*path/],
    ["STATEGATE_PORT", "eighty", /STATEGATE_PORT: expected a whole number/],
    ["STATEGATE_DEBUG", "maybe", /STATEGATE_DEBUG: expected true or false/],
  ] as const) {
    it(`stops with one line naming ${variable} when it is ${value}`, () => {
      const result = spawnSync(process.execPath, [join(repoRoot, "packages/server/dist/bin/stategate.js")], {
        env: { ...process.env, STATEGATE_PORT: "0", STATEGATE_DATA_DIR: tempDir(), [variable]: value },
        encoding: "utf8",
        timeout: 20_000,
      });
      assert.notEqual(result.status, 0);
      const lines = result.stderr.trim().split("\n");
      assert.equal(lines.length, 1, result.stderr);
      assert.match(lines[0] ?? "", expected);
    });
  }
});
