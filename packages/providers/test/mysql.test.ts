import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Duplex } from "node:stream";
import { after, describe, it } from "node:test";
import tls from "node:tls";
import mysql, { type RowDataPacket } from "mysql2/promise";
import { draftEvent, put, uniqueDomain, using } from "../src/conformance/helpers.js";
import { runStorageConformance } from "../src/conformance/index.js";
import {
  ProviderClosedError,
  ProviderConfigError,
  ProviderTimeoutError,
  ProviderUnavailableError,
  ValueTooLargeError,
  VersionConflictError,
} from "../src/errors.js";
import { createStorage } from "../src/registry.js";
import { createMysqlStorage, type MysqlStorageOptions } from "../src/storage/mysql.js";
import { mysqlError } from "../src/storage/mysql-errors.js";
import {
  eventColumns,
  mysqlStatements,
  mysqlTables,
  publishBatch,
  schemaVersion,
} from "../src/storage/mysql-schema.js";
import { entitySearch, eventSearch } from "../src/storage/mysql-search.js";
import type { EventRecord, JsonObject, Storage } from "../src/types.js";

// STATEGATE_TEST_MYSQL_ADDR points the tests at another server; an unreachable
// one fails every test (scripts/services.mjs checks it before the run, too).
const addr = process.env.STATEGATE_TEST_MYSQL_ADDR ?? "127.0.0.1:3306";
const server = { addr, user: "root", password: "", database: "test" };
const [bracketedHost = "127.0.0.1", port = "3306"] = addr.split(/:(?=\d+$)/);
const host = bracketedHost.replace(/^\[(.*)\]$/, "$1");

// A prefix per run keeps runs apart on a shared server; every prefix made
// here is dropped at the end.
const newPrefix = () => `t${randomBytes(4).toString("hex")}_`;
const prefix = newPrefix();
const prefixes = [prefix];
const options = (more: MysqlStorageOptions = {}): MysqlStorageOptions => ({ ...server, tablePrefix: prefix, ...more });

const admin = () => mysql.createConnection({ host, port: Number(port), user: server.user, database: server.database });

after(async () => {
  const conn = await admin();
  try {
    for (const p of prefixes) {
      const t = mysqlTables(p);
      await conn.query(`DROP TABLE IF EXISTS ${t.entities}, ${t.events}, ${t.position}, ${t.schema}`);
    }
  } finally {
    await conn.end();
  }
});

runStorageConformance(() => createMysqlStorage(options()));

const scope = (domain: string, type: string) => ({ domain, type, filter: [], limit: 1000, offset: 0 });

describe("mysql storage: values", () => {
  const values: JsonObject = {
    emoji: "🎉🚀👍🏽 👩‍👩‍👧‍👦",
    cjk: "漢字かなカナ한국어",
    combining: "e\u0301 a\u030a",
    precomposed: "\u00e9 \u00e5",
    "🔑": { nested: { deeper: ["a", 1, true, null, { octopus: "🐙" }] } },
    arrays: [[1, 2], [3, [4, { five: 5 }]], []],
    big: 9007199254740991,
    negativeBig: -9007199254740991,
    huge: 1.7976931348623157e308,
    tiny: 5e-324,
    fraction: 0.1,
    yes: true,
    no: false,
    nothing: null,
    emptyObject: {},
    emptyList: [],
    escapes: 'say "hi" \\ \n\t\u0001',
  };

  it("returns identical values from getEntity, searchEntities and searchEvents (the MariaDB values test)", () =>
    using(
      () => createMysqlStorage(options()),
      async (storage) => {
        const ref = { domain: uniqueDomain("mariadb"), type: "doc", key: "🔑clé键ключ👩‍👩‍👧" };
        const event = await put(storage, ref, 0, values);
        const entity = await storage.getEntity(ref);
        assert.deepEqual(entity, { ...ref, values, version: 1 });
        assert.equal(
          typeof (entity?.values["🔑"] as JsonObject).nested,
          "object",
          "nested objects come back as objects",
        );

        const byEmoji = [{ path: ["emoji"], value: values.emoji as string }];
        const found = await storage.searchEntities({ ...scope(ref.domain, ref.type), filter: byEmoji });
        assert.deepEqual(found, [entity]);
        const events = await storage.searchEvents({ ...scope(ref.domain, ref.type), key: ref.key, filter: byEmoji });
        assert.deepEqual(events, [event]);
        assert.deepEqual(events[0]?.values, values);
        assert.deepEqual(await storage.getEvent({ ...ref, id: event.id }), event);

        // Exact code points: the combining form does not match the precomposed one.
        const combining = { ...scope(ref.domain, ref.type), filter: [{ path: ["combining"], value: "\u00e9 \u00e5" }] };
        assert.deepEqual(await storage.searchEntities(combining), []);
        const nested = [{ path: ["🔑", "nested", "deeper"], value: null }];
        assert.deepEqual(await storage.searchEntities({ ...scope(ref.domain, ref.type), filter: nested }), []);

        // Stored as JSON, not as a JSON-encoded string.
        const conn = await admin();
        try {
          const [rows] = await conn.execute<RowDataPacket[]>(
            `SELECT JSON_VALID(\`values\`) AS valid, JSON_TYPE(JSON_EXTRACT(\`values\`, ?)) AS kind
             FROM ${mysqlTables(prefix).entities} WHERE \`domain\` = ? AND \`key\` = ?`,
            ['$."🔑"."nested"', ref.domain, ref.key],
          );
          assert.deepEqual({ ...rows[0] }, { valid: 1, kind: "OBJECT" });
        } finally {
          await conn.end();
        }
      },
    ));

  it("keeps keys apart that differ only by case, accent, composition or trailing space", () =>
    using(
      () => createMysqlStorage(options()),
      async (storage) => {
        const domain = uniqueDomain("keys");
        const keys = ["a", "A", "\u00e1", "a\u0301", "a ", "ä"];
        for (const [i, key] of keys.entries()) {
          await put(storage, { domain, type: "k", key }, 0, { i });
        }
        for (const [i, key] of keys.entries()) {
          assert.deepEqual((await storage.getEntity({ domain, type: "k", key }))?.values, { i }, JSON.stringify(key));
        }
        const listed = await storage.searchEntities(scope(domain, "k"));
        assert.deepEqual(
          listed.map((e) => e.key),
          [...keys].sort(),
          "ordered by code point",
        );
        const exact = { ...scope(domain, "k"), filter: [{ path: ["i"], value: 0 }] };
        assert.deepEqual(
          (await storage.searchEntities(exact)).map((e) => e.key),
          ["a"],
        );
      },
    ));

  it("keeps bigint times exact at the ends of the BIGINT range", () =>
    using(
      () => createMysqlStorage(options()),
      async (storage) => {
        const ref = { domain: uniqueDomain("time"), type: "t", key: "k" };
        const times = [9223372036854775807n, -9223372036854775808n, 0n, 1733250000123456789n];
        for (const [version, time] of times.entries()) {
          await put(storage, ref, version, { version }, time);
        }
        const log = await storage.searchEvents({ ...scope(ref.domain, ref.type), key: ref.key });
        assert.deepEqual(
          log.map((e) => e.time),
          times,
        );
        const between = await storage.searchEvents({
          ...scope(ref.domain, ref.type),
          minTime: 1733250000123456789n,
          maxTime: 9223372036854775806n,
        });
        assert.deepEqual(
          between.map((e) => e.time),
          [1733250000123456789n],
        );
      },
    ));
});

describe("mysql storage: search", () => {
  it("sorts numbers numerically and strings by code point, missing and null first ascending, last descending", () =>
    using(
      () => createMysqlStorage(options()),
      async (storage) => {
        const domain = uniqueDomain("sort");
        const numbers: Record<string, JsonObject> = {
          k1: { n: 100 },
          k2: { n: 25 },
          k3: { n: -3.5 },
          k4: { n: null },
          k5: {},
          k6: { n: 2 },
          k7: { n: 1e21 },
        };
        const strings: Record<string, JsonObject> = {
          s1: { s: "b" },
          s2: { s: "B" },
          s3: { s: "á" },
          s4: {},
          s5: { s: "aa" },
        };
        for (const [key, v] of Object.entries(numbers)) await put(storage, { domain, type: "n", key }, 0, v);
        for (const [key, v] of Object.entries(strings)) await put(storage, { domain, type: "s", key }, 0, v);
        const sorted = async (type: string, path: string, desc: boolean) =>
          (await storage.searchEntities({ ...scope(domain, type), sort: { path: [path], desc } })).map((e) => e.key);
        assert.deepEqual(await sorted("n", "n", false), ["k4", "k5", "k3", "k6", "k2", "k1", "k7"]);
        assert.deepEqual(await sorted("n", "n", true), ["k7", "k1", "k2", "k6", "k3", "k4", "k5"]);
        assert.deepEqual(await sorted("s", "s", false), ["s4", "s2", "s5", "s1", "s3"]);
        assert.deepEqual(await sorted("s", "s", true), ["s3", "s1", "s5", "s2", "s4"]);
      },
    ));
  // Injection-shaped paths and values are checked by the shared conformance group (storage-search), for every adapter.
});

describe("mysql storage: transactions and positions", () => {
  it("makes positions visible in commit order, so a tailing reader skips nothing", async () => {
    const storages = await Promise.all([1, 2, 3].map(() => createMysqlStorage(options())));
    try {
      const [reader] = storages as [Storage];
      const domain = uniqueDomain("tail");
      let cursor = await reader.lastPosition();
      let writing = true;
      const seen: EventRecord[] = [];
      const tail = (async () => {
        for (;;) {
          const stillWriting = writing;
          const page = await reader.eventsAfter(cursor, 1000);
          for (const event of page) {
            assert.ok(event.position > cursor);
            cursor = event.position;
            if (event.domain === domain) seen.push(event);
          }
          if (!stillWriting && page.length === 0) return;
        }
      })();
      await Promise.all(
        Array.from({ length: 24 }, async (_, i) => {
          const storage = storages[i % storages.length] as Storage;
          for (let version = 0; version < 8; version++) {
            await put(storage, { domain, type: "w", key: `k${i}` }, version, { version });
          }
        }),
      );
      writing = false;
      await tail;
      const all = await reader.searchEvents(scope(domain, "w"));
      assert.equal(all.length, 24 * 8);
      assert.deepEqual(seen, all, "the reader saw every event, in position order");
    } finally {
      await Promise.all(storages.map((s) => s.close()));
    }
  });

  it("reads past a gap in positions that stays (an event deleted by hand), after reading again", () =>
    using(
      () => createMysqlStorage(options()),
      async (storage) => {
        const domain = uniqueDomain("gap");
        const start = await storage.lastPosition();
        const events: EventRecord[] = [];
        for (let i = 0; i < 3; i++) events.push(await put(storage, { domain, type: "t", key: `k${i}` }, 0, { i }));
        const [first, second, third] = events as [EventRecord, EventRecord, EventRecord];
        // Nothing else writes under this test's prefix meanwhile: the three positions follow each other.
        assert.deepEqual([first.position, second.position, third.position], [start + 1, start + 2, start + 3]);
        const conn = await admin();
        try {
          await conn.execute(`DELETE FROM ${mysqlTables(prefix).events} WHERE \`position\` = ?`, [second.position]);
        } finally {
          await conn.end();
        }
        const read = await storage.eventsAfter(start, 10);
        assert.deepEqual(
          read.map((e) => e.position),
          [first.position, third.position],
        );
      },
    ));

  it("lets two gateways start at once on new tables, and exactly one of their racing commits win", async () => {
    const fresh = newPrefix();
    prefixes.push(fresh);
    const gateways = await Promise.all([1, 2, 3, 4].map(() => createMysqlStorage(options({ tablePrefix: fresh }))));
    try {
      const ref = { domain: uniqueDomain("gateways"), type: "t", key: "k" };
      const attempts = await Promise.allSettled(
        Array.from({ length: 12 }, (_, i) => put(gateways[i % gateways.length] as Storage, ref, 0, { writer: i })),
      );
      const won = attempts.filter((a) => a.status === "fulfilled");
      assert.equal(won.length, 1);
      for (const a of attempts) {
        if (a.status === "rejected") {
          assert.ok(a.reason instanceof VersionConflictError, String(a.reason));
          assert.equal(a.reason.actual, 1);
        }
      }
    } finally {
      await Promise.all(gateways.map((g) => g.close()));
    }
    const conn = await admin();
    try {
      const [rows] = await conn.query<RowDataPacket[]>(`SELECT version FROM ${mysqlTables(fresh).schema}`);
      assert.deepEqual(
        rows.map((r) => r.version),
        Array.from({ length: schemaVersion }, (_, i) => i + 1),
        "each migration step recorded once",
      );
    } finally {
      await conn.end();
    }
    // Starting again on existing tables changes nothing and keeps the data.
    await using(
      () => createMysqlStorage(options({ tablePrefix: fresh })),
      async (storage) => assert.ok((await storage.lastPosition()) >= 1),
    );
  });

  it("refuses a version the event log already holds, even past the entity row (the second fence)", async () => {
    const fresh = newPrefix();
    prefixes.push(fresh);
    await using(
      () => createMysqlStorage(options({ tablePrefix: fresh })),
      async (storage) => {
        const ref = { domain: uniqueDomain("fence"), type: "t", key: "k" };
        const first = await put(storage, ref, 0, { n: 1 });
        // A writer that bypassed the row lock (say, a buggy older gateway) already logged version 2.
        const conn = await admin();
        try {
          await conn.execute(
            `INSERT INTO ${mysqlTables(fresh).events} (${eventColumns})
             VALUES (1000, UUID(), ?, ?, ?, '{}', 2, 'set', 'm', '{}', 0)`,
            [ref.domain, ref.type, ref.key],
          );
        } finally {
          await conn.end();
        }
        await assert.rejects(put(storage, ref, 1, { n: 2 }), (error) => {
          assert.ok(error instanceof VersionConflictError, String(error));
          assert.deepEqual([error.expected, error.actual], [1, 2]);
          return true;
        });
        assert.deepEqual(await storage.getEntity(ref), { ...ref, values: { n: 1 }, version: 1 }, "state rolled back");
        const next = await put(storage, { ...ref, key: "other" }, 0, {});
        assert.equal(next.position, first.position + 1, "the position taken by the failed commit was rolled back too");
      },
    );
  });

  it("commits in one round trip without an expected version, two with one (or a stale one, rolled back)", async () => {
    // A proxy that counts the commands the adapter sends: MySQL packets from
    // the client whose sequence number is 0 (each command starts at 0).
    let commands = 0;
    const count = (client: net.Socket) => {
      const upstream = net.connect(Number(port), host);
      upstream.on("error", () => client.destroy());
      client.on("close", () => upstream.destroy());
      upstream.pipe(client);
      let pending = Buffer.alloc(0);
      client.on("data", (chunk: Buffer) => {
        upstream.write(chunk);
        pending = Buffer.concat([pending, chunk]);
        while (pending.length >= 4) {
          const length = pending.readUIntLE(0, 3);
          if (pending.length < 4 + length) break;
          if (pending[3] === 0) commands++;
          pending = pending.subarray(4 + length);
        }
      });
    };
    const proxy = net.createServer(count);
    await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
    const proxied = `127.0.0.1:${(proxy.address() as net.AddressInfo).port}`;
    try {
      await using(
        () => createMysqlStorage(options({ addr: proxied, poolSize: 1 })),
        async (storage) => {
          const ref = { domain: uniqueDomain("trips"), type: "t", key: "k" };
          await storage.ping(); // the pool's one connection is open and set up
          const sent = async (commit: () => Promise<unknown>) => {
            const before = commands;
            await commit().catch(() => {});
            return commands - before;
          };
          const { version: _, ...blind } = draftEvent({ ...ref, version: 1, values: { n: 1 } });
          assert.equal(await sent(() => storage.commit({ event: blind, state: { n: 1 } })), 1, "at the next version");
          assert.equal(await sent(() => put(storage, ref, 1, { n: 2 })), 2, "at an expected version");
          assert.equal(
            await sent(() => put(storage, ref, 1, { n: 3 })),
            2,
            "a stale version: lock and read, roll back",
          );
          assert.deepEqual(await storage.getEntity(ref), { ...ref, values: { n: 2 }, version: 2 });
        },
      );
    } finally {
      proxy.close();
    }
  });

  it("uses an index, not a table scan, for gets, event searches, resuming and the outbox", async () => {
    const t = mysqlTables(prefix);
    const sql = mysqlStatements(t);
    const domain = uniqueDomain("explain");
    const seeded: EventRecord[] = [];
    await using(
      () => createMysqlStorage(options()),
      async (storage) => {
        for (let i = 0; i < 40; i++) {
          seeded.push(
            await put(storage, { domain, type: i % 2 ? "a" : "b", key: `k${i % 8}` }, Math.floor(i / 8), { i }),
          );
        }
      },
    );
    const known = seeded[1] as EventRecord;
    const time = "1733250000123456789";
    const queries: [string, string, unknown[]][] = [
      ["entity get", sql.selectEntity, [domain, "a", "k1"]],
      ["entity version", sql.selectVersion, [domain, "a", "k1"]],
      ["entity search", entitySearch(t, { ...scope(domain, "a"), limit: 100 }).sql, [domain, "a", 100, 0]],
      ["event get", sql.selectEvent, [known.id, known.domain, known.type, known.key]],
      ["events of a type", eventSearch(t, { ...scope(domain, "a"), limit: 100 }).sql, [domain, "a", 100, 0]],
      [
        "events of a type by time",
        eventSearch(t, { ...scope(domain, "a"), minTime: 1n, maxTime: 2n, limit: 100 }).sql,
        [domain, "a", time, time, 100, 0],
      ],
      ["events of a key", eventSearch(t, { ...scope(domain, "a"), key: "k1" }).sql, [domain, "a", "k1", 1000, 0]],
      [
        "events of a key by time",
        eventSearch(t, { ...scope(domain, "a"), key: "k1", minTime: 1n, maxTime: 2n }).sql,
        [domain, "a", "k1", time, time, 1000, 0],
      ],
      ["resume after a position", sql.selectEventsAfter, [10, 100]],
      ["outbox", sql.selectUnpublished, [time, 100]],
      ["last position", sql.selectLastPosition, []],
      ["mark published", sql.markPublished, Array(publishBatch).fill(known.position)],
    ];
    const conn = await admin();
    try {
      await conn.query(`ANALYZE TABLE ${t.entities}, ${t.events}`);
      for (const [label, text, params] of queries) {
        const [plan] = await conn.execute<RowDataPacket[]>(`EXPLAIN ${text}`, params as (string | number)[]);
        const steps = plan.map((p) => `table=${p.table} type=${p.type} key=${p.key} rows=${p.rows} extra=${p.Extra}`);
        console.log(`EXPLAIN ${label}: ${steps.join(" | ")}`);
        for (const step of plan) {
          if (String(step.Extra).includes("optimized away")) continue;
          assert.notEqual(step.type, "ALL", `${label}: no full table scan`);
          assert.notEqual(step.type, "index", `${label}: no full index scan`);
          assert.ok(step.key, `${label}: uses a key`);
        }
      }
    } finally {
      await conn.end();
    }
  });
});

describe("mysql storage: errors", () => {
  const secret = "pa55-w0rd-s3cret";
  const hidesDetails = (error: unknown) => {
    assert.ok(error instanceof ProviderUnavailableError, `a ProviderUnavailableError, got ${error}`);
    for (const leak of [secret, "SELECT", "CREATE", "GET_LOCK", "127.0.0.1", "mysql://"]) {
      assert.ok(!error.message.includes(leak), `message "${error.message}" must not contain ${leak}`);
    }
    return true;
  };

  async function timed<T>(ms: number, body: () => Promise<T>): Promise<T> {
    const started = Date.now();
    try {
      return await body();
    } finally {
      assert.ok(Date.now() - started < ms, `took ${Date.now() - started} ms, more than ${ms}`);
    }
  }

  // A TCP server that runs `onSocket` for every connection; closed after the test.
  async function fakeServer(
    onSocket: (socket: net.Socket) => void,
    port = 0,
  ): Promise<{ addr: string; close(): void }> {
    const sockets = new Set<net.Socket>();
    const srv = net.createServer((socket) => {
      sockets.add(socket);
      socket.on("error", () => {});
      onSocket(socket);
    });
    await new Promise<void>((resolve) => srv.listen(port, "127.0.0.1", resolve));
    return {
      addr: `127.0.0.1:${(srv.address() as net.AddressInfo).port}`,
      close() {
        for (const socket of sockets) socket.destroy();
        srv.close();
      },
    };
  }

  it("fails with ProviderUnavailableError within seconds when nothing listens, without leaking details", () =>
    timed(5000, () =>
      assert.rejects(
        createMysqlStorage(options({ addr: "127.0.0.1:1", password: secret, connectTimeoutMs: 2000 })),
        hidesDetails,
      ),
    ));

  it("times out a server that accepts but never answers", async () => {
    const silent = await fakeServer(() => {});
    try {
      await timed(3000, () =>
        assert.rejects(createMysqlStorage(options({ addr: silent.addr, connectTimeoutMs: 300 })), hidesDetails),
      );
    } finally {
      silent.close();
    }
  });

  it("maps a server refusing with too many connections", async () => {
    const full = await fakeServer((socket) => {
      const message = Buffer.from("#08004Too many connections");
      const payload = Buffer.concat([Buffer.from([0xff, 0x10, 0x04]), message]);
      socket.end(packet(0, payload));
    });
    try {
      await assert.rejects(createMysqlStorage(options({ addr: full.addr })), (error) => {
        hidesDetails(error);
        assert.match((error as Error).message, /too many connections/);
        return true;
      });
    } finally {
      full.close();
    }
  });

  it("maps refused credentials without echoing them", () =>
    assert.rejects(createMysqlStorage(options({ user: "stategate_nobody", password: secret })), (error) => {
      hidesDetails(error);
      assert.ok(!(error as Error).message.includes("stategate_nobody"));
      return true;
    }));

  it("turns a lost server into ProviderUnavailableError, and recovers when it is back", async () => {
    const links = new Set<net.Socket>();
    const forward = (client: net.Socket) => {
      const upstream = net.connect(Number(port), host);
      upstream.on("error", () => client.destroy());
      client.on("close", () => upstream.destroy());
      links.add(upstream);
      client.pipe(upstream).pipe(client);
    };
    let proxy = await fakeServer(forward);
    let storage: Storage | undefined;
    try {
      storage = await createMysqlStorage(options({ addr: proxy.addr, connectTimeoutMs: 1000 }));
      await storage.ping();
      for (const link of links) link.destroy();
      proxy.close();
      await assert.rejects(storage.ping(), hidesDetails);
      await assert.rejects(storage.getEntity({ domain: "d", type: "t", key: "k" }), hidesDetails);
      proxy = await fakeServer(forward, Number(proxy.addr.split(":")[1]));
      await storage.ping();
      assert.equal(await storage.getVersion({ domain: uniqueDomain("back"), type: "t", key: "k" }), 0);
    } finally {
      proxy.close();
      await storage?.close();
    }
  });

  it("refuses a value over the server's packet limit with ValueTooLargeError, writing nothing", () =>
    using(
      () => createMysqlStorage(options()),
      async (storage) => {
        const ref = { domain: uniqueDomain("large"), type: "doc", key: "k" };
        const values = { blob: "x".repeat(17 * 1024 * 1024) };
        await assert.rejects(put(storage, ref, 0, values), (error) => {
          assert.ok(error instanceof ValueTooLargeError, String(error));
          assert.ok(error.actualBytes > error.limitBytes);
          return true;
        });
        assert.equal(await storage.getVersion(ref), 0);
        await put(storage, ref, 0, { small: true });
      },
    ));

  it("stores, changes and deletes a value that fits the packet limit only unescaped", () =>
    using(
      () => createMysqlStorage(options()),
      async (storage) => {
        const conn = await admin();
        let packet: number;
        try {
          const [rows] = await conn.query<RowDataPacket[]>("SELECT @@max_allowed_packet AS max");
          packet = Number(rows[0]?.max);
        } finally {
          await conn.end();
        }
        // Backslashes: twice their number in JSON, four times once escaped for SQL text.
        const values = { s: "\\".repeat(Math.floor(packet / 3)) };
        const ref = { domain: uniqueDomain("escaped"), type: "doc", key: "k" };
        const { version: _, ...blind } = draftEvent({ ...ref, version: 1, values });
        await storage.commit({ event: blind, state: values });
        assert.deepEqual(await storage.getEntity(ref), { ...ref, values, version: 1 });
        const edited = { ...values, more: "\\'" };
        await put(storage, ref, 1, edited);
        assert.deepEqual((await storage.getEntity(ref))?.values, edited);
        const del = draftEvent({ ...ref, version: 3, values: edited, operation: "delete" });
        await storage.commit({ event: del, expectedVersion: 2, state: null });
        assert.equal(await storage.getEntity(ref), undefined);
        assert.deepEqual((await storage.getEvent({ ...ref, id: del.id }))?.values, edited);
      },
    ));

  it("maps driver errors in one place", () => {
    const driver = (code: string, more: object = {}) => Object.assign(new Error(`${code} at SELECT 1`), { code }, more);
    for (const code of ["ECONNREFUSED", "ETIMEDOUT", "PROTOCOL_CONNECTION_LOST", "ER_CON_COUNT_ERROR"]) {
      assert.ok(mysqlError(driver(code)) instanceof ProviderUnavailableError, code);
    }
    const tooLarge = mysqlError(driver("ER_NET_PACKET_TOO_LARGE"), { size: { limitBytes: 10, actualBytes: 20 } });
    assert.deepEqual(
      [tooLarge instanceof ValueTooLargeError, (tooLarge as ValueTooLargeError).actualBytes],
      [true, 20],
    );
    const fence = driver("ER_DUP_ENTRY", { sqlMessage: "Duplicate entry 'x' for key 'events_entity_version'" });
    assert.ok(mysqlError(fence, { conflict: { expected: 1, actual: 2 } }) instanceof VersionConflictError);
    const otherDuplicate = driver("ER_DUP_ENTRY", { sqlMessage: "Duplicate entry 'x' for key 'events_id'" });
    assert.equal(mysqlError(otherDuplicate, { conflict: { expected: 1, actual: 2 } }), otherDuplicate);
    const syntax = driver("ER_PARSE_ERROR");
    assert.equal(mysqlError(syntax), syntax, "a bug stays itself, for the internal log");
    // The server ending a statement at its own time limit is a timeout (DEADLINE_EXCEEDED at the gateway);
    // a server we cannot reach or that stopped answering stays merely unavailable.
    for (const [code, errno] of [
      ["ER_LOCK_WAIT_TIMEOUT", 1205],
      ["", 1969],
      ["ER_QUERY_TIMEOUT", 3024],
    ] as const) {
      assert.ok(mysqlError(driver(code, { errno })) instanceof ProviderTimeoutError, `errno ${errno}`);
    }
    for (const code of ["ECONNREFUSED", "ETIMEDOUT", "PROTOCOL_SEQUENCE_TIMEOUT", "PROTOCOL_CONNECTION_LOST"]) {
      assert.ok(!(mysqlError(driver(code)) instanceof ProviderTimeoutError), code);
    }
  });

  it("refuses every call after close, and tolerates a second close", async () => {
    const storage = await createMysqlStorage(options());
    await storage.close();
    await storage.close();
    await assert.rejects(storage.ping(), ProviderClosedError);
    await assert.rejects(storage.lastPosition(), ProviderClosedError);
    await assert.rejects(storage.markPublished([1]), ProviderClosedError);
    await assert.rejects(storage.unpublishedEvents(1n, 1), ProviderClosedError);
  });
});

describe("mysql storage: configuration", () => {
  const configError = (option: string) => (error: unknown) => {
    assert.ok(error instanceof ProviderConfigError, `a ProviderConfigError, got ${error}`);
    assert.equal(error.option, option);
    return true;
  };

  it("accepts the url form, with separate keys overriding its parts", async () => {
    const url = `mysql://${server.user}:@${addr}/${server.database}`;
    await using(
      () => createMysqlStorage({ url, tablePrefix: prefix }),
      (storage) => storage.ping(),
    );
    await using(
      () => createMysqlStorage({ url: `mysql://nobody:wrong@${addr}/nodb`, ...server, tablePrefix: prefix }),
      (storage) => storage.ping(),
    );
  });

  it("is selected by the JSON spec of the registry, empty password included", async () => {
    const spec = { name: "mysql", ...server, tablePrefix: prefix, poolSize: 2, connectTimeoutMs: 2000 };
    const storage = await createStorage(spec, { dataDir: tmpdir() });
    assert.equal(storage.name, "mysql");
    await storage.close();
    await assert.rejects(createStorage({ ...spec, tls: "yes" }, { dataDir: tmpdir() }), configError("tls"));
  });

  it("refuses bad options at start-up, naming them and never echoing a password", async () => {
    await assert.rejects(createMysqlStorage(options({ tablePrefix: "bad-prefix" })), configError("tablePrefix"));
    await assert.rejects(createMysqlStorage(options({ tablePrefix: "x".repeat(33) })), configError("tablePrefix"));
    await assert.rejects(createMysqlStorage(options({ poolSize: 0 })), configError("poolSize"));
    await assert.rejects(createMysqlStorage(options({ addr: "::1:3306" })), configError("addr"));
    await assert.rejects(createMysqlStorage({ addr }), configError("database"));
    await assert.rejects(createMysqlStorage({ url: "mysql://u:hunter2@h/db?ssl=true" }), (error) => {
      configError("url")(error);
      assert.ok(!(error as Error).message.includes("hunter2"));
      return true;
    });
    await assert.rejects(createMysqlStorage({ url: "postgres://u:hunter2@h/db" }), configError("url"));
    await assert.rejects(createMysqlStorage(options({ tls: { ca: "/nonexistent/ca.pem" } })), configError("tls.ca"));
    await assert.rejects(
      createMysqlStorage(options({ tls: { verify: true } as MysqlStorageOptions["tls"] })),
      configError("tls.verify"),
    );
    await assert.rejects(createMysqlStorage(options({ tls: { cert: "/x.pem" } })), configError("tls.key"));
  });
});

// One MySQL protocol packet: 3-byte length, sequence id, payload.
function packet(sequence: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(4);
  header.writeUIntLE(payload.length, 0, 3);
  header[3] = sequence;
  return Buffer.concat([header, payload]);
}

// A server greeting offering TLS: LONG_PASSWORD, CONNECT_WITH_DB, PROTOCOL_41,
// SSL, TRANSACTIONS, SECURE_CONNECTION, PLUGIN_AUTH.
function greeting(): Buffer {
  const capabilities = 0x1 | 0x8 | 0x200 | 0x800 | 0x2000 | 0x8000 | 0x80000;
  const word = (n: number) => Buffer.from([n & 0xff, (n >> 8) & 0xff]);
  return packet(
    0,
    Buffer.concat([
      Buffer.from([10]),
      Buffer.from("8.0.0-fake\0"),
      Buffer.from([1, 0, 0, 0]),
      Buffer.from("abcdefgh\0"),
      word(capabilities & 0xffff),
      Buffer.from([45]),
      word(2),
      word(capabilities >>> 16),
      Buffer.from([21]),
      Buffer.alloc(10),
      Buffer.from("ijklmnopqrst\0"),
      Buffer.from("mysql_native_password\0"),
    ]),
  );
}

describe("mysql storage: tls", () => {
  const dir = mkdtempSync(join(tmpdir(), "stategate-mysql-tls-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const pem = (name: string, subject: string, san?: string) => {
    const args = ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    args.push("-keyout", join(dir, `${name}.key`), "-out", join(dir, `${name}.crt`), "-days", "2", "-subj", subject);
    if (san !== undefined) args.push("-addext", `subjectAltName=${san}`);
    execFileSync("openssl", args, { stdio: "ignore" });
    return { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
  };
  const serverPem = pem("server", "/CN=db.example.test", "DNS:db.example.test");
  const clientPem = pem("client", "/CN=stategate-client");

  interface Handshake {
    servername?: string | false;
    clientCertificate?: string;
    user?: string;
  }

  // Speaks just enough of the protocol to upgrade to TLS, then records what
  // the client sent over it and refuses the login.
  async function tlsServer(): Promise<{ addr: string; seen: Handshake[]; close(): void }> {
    const seen: Handshake[] = [];
    const key = readFileSync(serverPem.key);
    const cert = readFileSync(serverPem.cert);
    const srv = net.createServer((socket) => {
      socket.on("error", () => {});
      socket.write(greeting());
      let buffered = Buffer.alloc(0);
      const onData = (chunk: Buffer) => {
        buffered = Buffer.concat([buffered, chunk]);
        if (buffered.length < 36) return; // the 32-byte SSLRequest and its header
        socket.off("data", onData);
        // TLS reads a net.Socket's handle directly and would miss the bytes
        // already read past the SSLRequest: hand it a stream that has them.
        const raw = new Duplex({
          read() {},
          write: (chunk, _encoding, done) => socket.write(chunk, done),
          final: (done) => socket.end(done),
        });
        raw.push(buffered.subarray(36));
        socket.on("data", (chunk) => raw.push(chunk));
        socket.on("end", () => raw.push(null));
        const record: Handshake = {};
        seen.push(record);
        const secure = new tls.TLSSocket(raw, {
          isServer: true,
          key,
          cert,
          requestCert: true,
          rejectUnauthorized: false,
        });
        secure.on("error", () => socket.destroy());
        secure.on("secure", () => {
          record.servername = (secure as tls.TLSSocket & { servername?: string | false }).servername;
          record.clientCertificate = secure.getPeerCertificate().subject?.CN;
        });
        secure.once("data", (response: Buffer) => {
          // HandshakeResponse41: header, capabilities, max packet, charset, 23 filler bytes, user\0.
          record.user = response.subarray(36, response.indexOf(0, 36)).toString();
          const refusal = Buffer.concat([Buffer.from([0xff, 0x15, 0x04]), Buffer.from("#28000fake server")]);
          secure.end(packet(3, refusal));
        });
      };
      socket.on("data", onData);
    });
    await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
    return {
      addr: `127.0.0.1:${(srv.address() as net.AddressInfo).port}`,
      seen,
      close: () => srv.close(),
    };
  }

  const connect = (serverAddr: string, settings: MysqlStorageOptions["tls"]) =>
    createMysqlStorage({ ...server, addr: serverAddr, user: "tls-user", tls: settings, connectTimeoutMs: 3000 });

  it("refuses to fall back to plaintext when the server offers no TLS", () =>
    assert.rejects(createMysqlStorage(options({ tls: true })), (error) => {
      assert.ok(error instanceof ProviderUnavailableError);
      assert.match(error.message, /does not offer TLS/);
      return true;
    }));

  it("verifies the server against the given CA and name, and presents the client certificate", async () => {
    const fake = await tlsServer();
    try {
      const settings = { ca: serverPem.cert, servername: "db.example.test", ...clientPem };
      await assert.rejects(connect(fake.addr, settings), /refused the credentials/);
      assert.deepEqual(fake.seen, [
        { servername: "db.example.test", clientCertificate: "stategate-client", user: "tls-user" },
      ]);
    } finally {
      fake.close();
    }
  });

  it("sends nothing over TLS to a server whose certificate is untrusted or names another host", async () => {
    const fake = await tlsServer();
    try {
      const refused = (error: unknown) => {
        assert.ok(error instanceof ProviderUnavailableError);
        assert.match(error.message, /TLS handshake/);
        return true;
      };
      await assert.rejects(connect(fake.addr, { ca: serverPem.cert, servername: "other.example.test" }), refused);
      await assert.rejects(connect(fake.addr, { servername: "db.example.test" }), refused);
      await assert.rejects(connect(fake.addr, true), refused);
      assert.ok(
        fake.seen.every((h) => h.user === undefined),
        "no credentials were sent",
      );
      await assert.rejects(connect(fake.addr, { rejectUnauthorized: false }), /refused the credentials/);
      assert.equal(fake.seen.at(-1)?.user, "tls-user", "only when told to trust anything");
    } finally {
      fake.close();
    }
  });
});
