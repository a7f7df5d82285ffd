import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Duplex } from "node:stream";
import { after, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import tls from "node:tls";
import pg, { DatabaseError } from "pg";
import { put, uniqueDomain, using } from "../src/conformance/helpers.js";
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
import { createPostgresStorage, type PostgresStorageOptions } from "../src/storage/postgres.js";
import { isFatal, isRetryable, postgresError } from "../src/storage/postgres-errors.js";
import {
  eventColumns,
  type PostgresTables,
  postgresStatements,
  postgresTables,
  schemaVersion,
} from "../src/storage/postgres-schema.js";
import { entitySearch, eventSearch } from "../src/storage/postgres-search.js";
import type { EventRecord, JsonObject, Storage } from "../src/types.js";

// STATEGATE_TEST_POSTGRES_ADDR points the tests at another server; an
// unreachable one fails every test (scripts/services.mjs checks it before the
// run, too).
const addr = process.env.STATEGATE_TEST_POSTGRES_ADDR ?? "127.0.0.1:5432";
const server = { addr, user: "postgres", password: "", database: "test" };
const [bracketedHost = "127.0.0.1", port = "5432"] = addr.split(/:(?=\d+$)/);
const host = bracketedHost.replace(/^\[(.*)\]$/, "$1");

// A prefix per run keeps runs apart on a shared server; every prefix (and
// schema) made here is dropped at the end.
const newPrefix = () => `t${randomBytes(4).toString("hex")}_`;
const prefix = newPrefix();
const prefixes = [prefix];
const schemas: string[] = [];
const options = (more: PostgresStorageOptions = {}): PostgresStorageOptions => ({
  ...server,
  tablePrefix: prefix,
  ...more,
});

async function admin(): Promise<pg.Client> {
  const client = new pg.Client({ host, port: Number(port), user: server.user, database: server.database });
  await client.connect();
  return client;
}

async function asAdmin<R>(body: (client: pg.Client) => Promise<R>): Promise<R> {
  const client = await admin();
  try {
    return await body(client);
  } finally {
    await client.end();
  }
}

const dropTables = (t: PostgresTables) =>
  `DROP TABLE IF EXISTS ${t.entities}, ${t.events}, ${t.outbox}, ${t.position}, ${t.schema}`;

after(() =>
  asAdmin(async (client) => {
    for (const p of prefixes) await client.query(dropTables(postgresTables("public", p)));
    for (const s of schemas) await client.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
  }),
);

runStorageConformance(() => createPostgresStorage(options()));

const scope = (domain: string, type: string) => ({ domain, type, filter: [], limit: 1000, offset: 0 });

describe("postgres storage: values", () => {
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
    third: 1 / 3,
    yes: true,
    no: false,
    nothing: null,
    emptyObject: {},
    emptyList: [],
    escapes: 'say "hi" \\ \n\t\u0001',
  };

  it("returns identical values from getEntity, searchEntities and searchEvents", () =>
    using(
      () => createPostgresStorage(options()),
      async (storage) => {
        const ref = { domain: uniqueDomain("values"), type: "doc", key: "🔑clé键ключ👩‍👩‍👧" };
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
        const byHuge = [{ path: ["huge"], value: values.huge as number }];
        assert.deepEqual(await storage.searchEntities({ ...scope(ref.domain, ref.type), filter: byHuge }), [entity]);

        // Exact code points: the combining form does not match the precomposed one.
        const combining = { ...scope(ref.domain, ref.type), filter: [{ path: ["combining"], value: "\u00e9 \u00e5" }] };
        assert.deepEqual(await storage.searchEntities(combining), []);
        const nested = [{ path: ["🔑", "nested", "deeper"], value: null }];
        assert.deepEqual(await storage.searchEntities({ ...scope(ref.domain, ref.type), filter: nested }), []);

        // Stored as JSONB, not as a JSON-encoded string.
        const { rows } = await asAdmin((client) =>
          client.query(
            `SELECT pg_typeof("values")::text AS type, jsonb_typeof("values" -> '🔑' -> 'nested') AS kind
             FROM ${postgresTables("public", prefix).entities} WHERE "domain" = $1 AND "key" = $2`,
            [ref.domain, ref.key],
          ),
        );
        assert.deepEqual({ ...rows[0] }, { type: "jsonb", kind: "object" });
      },
    ));

  it("keeps keys apart that differ only by case, accent, composition or trailing space", () =>
    using(
      () => createPostgresStorage(options()),
      async (storage) => {
        const domain = uniqueDomain("keys");
        const keys = ["a", "A", "\u00e1", "a\u0301", "a ", "ä", "b"];
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
          "ordered by code point, whatever the database's collation",
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
      () => createPostgresStorage(options()),
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

  it("parses BIGINT per pool, neither changing pg's global parsers nor following them", async () => {
    const before = pg.types.getTypeParser(20, "text");
    await using(
      () => createPostgresStorage(options()),
      async (storage) => {
        assert.equal(pg.types.getTypeParser(20, "text"), before, "the global int8 parser is untouched");
        // What another library in the gateway's process might do.
        pg.types.setTypeParser(20, "text", (text: string) => Number.parseInt(text, 10));
        try {
          const ref = { domain: uniqueDomain("parsers"), type: "t", key: "k" };
          const event = await put(storage, ref, 0, {}, 1733250000123456789n);
          assert.equal((await storage.getEvent({ ...ref, id: event.id }))?.time, 1733250000123456789n);
        } finally {
          pg.types.setTypeParser(20, "text", before);
        }
      },
    );
  });

  it("refuses a string holding U+0000, which JSONB cannot store, and writes nothing", () =>
    using(
      () => createPostgresStorage(options()),
      async (storage) => {
        const ref = { domain: uniqueDomain("nul"), type: "t", key: "k" };
        await assert.rejects(put(storage, ref, 0, { text: "a\u0000b" }), (error) => {
          assert.ok(!(error instanceof ProviderUnavailableError), "a refusal of the value, not an outage");
          assert.equal((error as DatabaseError).code, "22P05");
          return true;
        });
        assert.equal(await storage.getVersion(ref), 0);
      },
    ));
});

describe("postgres storage: search", () => {
  it("sorts numbers numerically and strings by code point, missing and null first ascending, last descending", () =>
    using(
      () => createPostgresStorage(options()),
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

  // The shared conformance group (storage-search) covers the names the gateway lets through; these are the
  // ones only storage sees, which PostgreSQL, unlike the `$."member"` path syntax, can carry too.
  it("reads path segments as literal member names, never as array indexes, quotes and backslashes included", () =>
    using(
      () => createPostgresStorage(options()),
      async (storage) => {
        const domain = uniqueDomain("paths");
        // Array-literal syntax (" \ and the empty element) included: the path travels as one text[] parameter.
        const odd = { '"': 11, "\\": 12, "": 14 };
        await put(storage, { domain, type: "p", key: "odd" }, 0, odd);
        await put(storage, { domain, type: "p", key: "list" }, 0, { list: [7, { b: 8 }], "0": "zero" });
        await put(storage, { domain, type: "p", key: "map" }, 0, { list: { "0": 7, "1": { b: 8 } } });
        const match = async (path: string[], value: string | number) =>
          (await storage.searchEntities({ ...scope(domain, "p"), filter: [{ path, value }] })).map((e) => e.key);
        for (const [name, value] of Object.entries(odd)) {
          assert.deepEqual(await match([name], value), ["odd"], name);
        }
        assert.deepEqual(await match(["list", "-1", "b"], 8), []);
        const byList = await storage.searchEntities({
          ...scope(domain, "p"),
          sort: { path: ["list", "0"], desc: true },
        });
        assert.equal(byList[0]?.key, "map", "sorting reads members the same way");
        await assert.rejects(match(["a\u0000"], 1), RangeError);
      },
    ));
});

describe("postgres storage: transactions and positions", () => {
  it("makes positions visible in commit order, so a tailing reader skips nothing", async () => {
    const storages = await Promise.all([1, 2, 3].map(() => createPostgresStorage(options())));
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

  it("lets two gateways start at once on new tables, and exactly one of their racing commits win", async () => {
    const fresh = newPrefix();
    prefixes.push(fresh);
    const gateways = await Promise.all(
      [1, 2, 3, 4].map(() => createPostgresStorage(options({ tablePrefix: fresh, poolSize: 4 }))),
    );
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
    const { rows } = await asAdmin((client) =>
      client.query(`SELECT "version" FROM ${postgresTables("public", fresh).schema} ORDER BY "version"`),
    );
    assert.deepEqual(
      rows.map((r) => r.version),
      Array.from({ length: schemaVersion }, (_, i) => i + 1),
      "each migration step recorded once",
    );
    // Starting again on existing tables changes nothing and keeps the data.
    await using(
      () => createPostgresStorage(options({ tablePrefix: fresh })),
      async (storage) => assert.ok((await storage.lastPosition()) >= 1),
    );
  });

  it("refuses a version the event log already holds, even past the entity row (the second fence)", async () => {
    const fresh = newPrefix();
    prefixes.push(fresh);
    await using(
      () => createPostgresStorage(options({ tablePrefix: fresh })),
      async (storage) => {
        const ref = { domain: uniqueDomain("fence"), type: "t", key: "k" };
        const first = await put(storage, ref, 0, { n: 1 });
        // A writer that bypassed the row lock (say, a buggy older gateway) already logged version 2.
        await asAdmin((client) =>
          client.query(
            `INSERT INTO ${postgresTables("public", fresh).events} (${eventColumns()})
             VALUES (1000000, gen_random_uuid()::text, $1, $2, $3, '{}', 2, 'set', 'm', '{}', 0)`,
            [ref.domain, ref.type, ref.key],
          ),
        );
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

  it("uses an index, never a sequential scan, for gets, searches, resuming, positions and the outbox", async () => {
    const t = postgresTables("public", prefix);
    const sql = postgresStatements(t);
    const domain = uniqueDomain("explain");
    const seeded: EventRecord[] = [];
    await using(
      () => createPostgresStorage(options()),
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
    const searched = (query: ReturnType<typeof entitySearch>): [string, unknown[]] => [query.sql, query.params];
    const byValue = { ...scope(domain, "a"), sort: { path: ["i"], desc: true }, limit: 10 };
    const queries: [string, string, unknown[]][] = [
      ["entity get", sql.selectEntity, [domain, "a", "k1"]],
      ["entity version", sql.selectVersion, [domain, "a", "k1"]],
      ["entity lock", sql.selectVersionForUpdate, [domain, "a", "k1"]],
      ["entity search", ...searched(entitySearch(t, { ...scope(domain, "a"), limit: 100 }))],
      ["entity search sorted by a value", ...searched(entitySearch(t, byValue))],
      ["event get", sql.selectEvent, [known.domain, known.type, known.key, known.id]],
      ["events of a type", ...searched(eventSearch(t, { ...scope(domain, "a"), limit: 100 }))],
      ["events of a type by time", ...searched(eventSearch(t, { ...scope(domain, "a"), minTime: 1n, maxTime: 2n }))],
      ["events of a key", ...searched(eventSearch(t, { ...scope(domain, "a"), key: "k1" }))],
      [
        "events of a key by time",
        ...searched(eventSearch(t, { ...scope(domain, "a"), key: "k1", minTime: 1n, maxTime: 2n })),
      ],
      ["log version (the fence)", sql.selectLogVersion, [domain, "a", "k1"]],
      ["resume after a position", sql.selectEventsAfter, [10, 100]],
      ["last position", sql.selectLastPosition, []],
      ["take a position and append", sql.appendEvent, ["x", domain, "a", "k1", "{}", 9, "set", "m", "{}", time]],
      ["outbox", sql.selectUnpublished, [time, 100]],
      ["mark published", sql.markPublished, [[known.position]]],
    ];
    await asAdmin(async (client) => {
      await client.query(`ANALYZE ${t.entities}, ${t.events}, ${t.outbox}, ${t.position}`);
      // A few hundred rows fit in a page or two, where a sequential scan is
      // cheapest and the planner rightly takes it. Discouraging it is the
      // standard way to ask "is there an index that serves this query?": a
      // query no index serves still gets a Seq Scan, and fails below.
      await client.query("SET enable_seqscan = off");
      for (const [label, text, params] of queries) {
        const { rows } = await client.query(`EXPLAIN (FORMAT JSON) ${text}`, params);
        const nodes: { type: string; index?: string }[] = [];
        const walk = (plan: { "Node Type": string; "Index Name"?: string; Plans?: unknown[] }) => {
          nodes.push({ type: plan["Node Type"], ...(plan["Index Name"] ? { index: plan["Index Name"] } : {}) });
          for (const child of plan.Plans ?? []) walk(child as typeof plan);
        };
        walk(rows[0]["QUERY PLAN"][0].Plan);
        console.log(
          `EXPLAIN ${label}: ${nodes.map((n) => (n.index ? `${n.type} using ${n.index}` : n.type)).join(" > ")}`,
        );
        assert.ok(!nodes.some((n) => n.type === "Seq Scan"), `${label}: no sequential scan`);
        assert.ok(
          nodes.some((n) => n.index?.startsWith(prefix)),
          `${label}: uses one of the install's indexes`,
        );
      }
    });
  });
});

describe("postgres storage: errors", () => {
  const secret = "pa55-w0rd-s3cret";
  const hidesDetails = (error: unknown) => {
    assert.ok(error instanceof ProviderUnavailableError, `a ProviderUnavailableError, got ${error}`);
    for (const leak of [secret, "SELECT", "INSERT", "CREATE", "advisory", "127.0.0.1", "postgres://"]) {
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

  // A forwarder to the real server whose upstream connections the test can see and cut.
  async function proxy(listenPort = 0) {
    const links = new Set<net.Socket>();
    const forward = (client: net.Socket) => {
      const upstream = net.connect(Number(port), host);
      upstream.on("error", () => client.destroy());
      upstream.on("close", () => {
        links.delete(upstream);
        client.destroy();
      });
      client.on("close", () => upstream.destroy());
      links.add(upstream);
      client.pipe(upstream).pipe(client);
    };
    const fake = await fakeServer(forward, listenPort);
    return { ...fake, links };
  }

  it("fails with ProviderUnavailableError within seconds when nothing listens, without leaking details", () =>
    timed(5000, () =>
      assert.rejects(
        createPostgresStorage(options({ addr: "127.0.0.1:1", password: secret, connectTimeoutMs: 2000 })),
        hidesDetails,
      ),
    ));

  it("fails the same way for a host name that resolves to several addresses", () =>
    timed(5000, () =>
      assert.rejects(createPostgresStorage(options({ addr: "localhost:1", connectTimeoutMs: 2000 })), (error) => {
        hidesDetails(error);
        assert.match((error as Error).message, /cannot reach the server/);
        return true;
      }),
    ));

  it("times out a server that accepts but never answers", async () => {
    const silent = await fakeServer(() => {});
    try {
      await timed(3000, () =>
        assert.rejects(createPostgresStorage(options({ addr: silent.addr, connectTimeoutMs: 300 })), hidesDetails),
      );
    } finally {
      silent.close();
    }
  });

  it("maps a server refusing with too many connections", async () => {
    const full = await fakeServer((socket) => {
      socket.once("data", () => socket.end(errorResponse("53300", "sorry, too many clients already")));
    });
    try {
      await assert.rejects(createPostgresStorage(options({ addr: full.addr })), (error) => {
        hidesDetails(error);
        assert.match((error as Error).message, /too many connections/);
        return true;
      });
    } finally {
      full.close();
    }
  });

  it("maps an unknown role without echoing it", () =>
    assert.rejects(createPostgresStorage(options({ user: "stategate_nobody", password: secret })), (error) => {
      hidesDetails(error);
      assert.match((error as Error).message, /refused the credentials/);
      assert.ok(!(error as Error).message.includes("stategate_nobody"));
      return true;
    }));

  it("maps a missing database", () =>
    assert.rejects(createPostgresStorage(options({ database: "stategate_no_such_db" })), (error) => {
      hidesDetails(error);
      assert.match((error as Error).message, /database does not exist/);
      return true;
    }));

  it("turns a lost server into ProviderUnavailableError, and recovers when it is back", async () => {
    let link = await proxy();
    let storage: Storage | undefined;
    try {
      storage = await createPostgresStorage(options({ addr: link.addr, connectTimeoutMs: 1000 }));
      await storage.ping();
      for (const upstream of link.links) upstream.destroy();
      link.close();
      await assert.rejects(storage.ping(), hidesDetails);
      await assert.rejects(storage.getEntity({ domain: "d", type: "t", key: "k" }), hidesDetails);
      await assert.rejects(put(storage, { domain: uniqueDomain("lost"), type: "t", key: "k" }, 0, {}), hidesDetails);
      link = await proxy(Number(link.addr.split(":")[1]));
      await storage.ping();
      assert.equal(await storage.getVersion({ domain: uniqueDomain("back"), type: "t", key: "k" }), 0);
    } finally {
      link.close();
      await storage?.close();
    }
  });

  it("survives the server ending its idle connections, and connects again", async () => {
    const link = await proxy();
    const crashes: unknown[] = [];
    const onCrash = (error: unknown) => crashes.push(error);
    process.on("uncaughtException", onCrash);
    try {
      await using(
        () => createPostgresStorage(options({ addr: link.addr, poolSize: 4 })),
        async (storage) => {
          await Promise.all([1, 2, 3, 4].map(() => storage.ping()));
          const ports = [...link.links].map((s) => s.localPort);
          assert.ok(ports.length >= 2, "several idle connections");
          // What a fast shutdown, a failover or an administrator sends idle sessions: FATAL 57P01.
          const { rows } = await asAdmin((client) =>
            client.query(
              "SELECT pg_terminate_backend(pid) AS ended FROM pg_stat_activity WHERE client_port = ANY($1::int[])",
              [ports],
            ),
          );
          assert.equal(rows.length, ports.length);
          for (let i = 0; i < 100 && link.links.size > 0; i++) await sleep(20);
          assert.equal(link.links.size, 0, "the server closed them");
          const ref = { domain: uniqueDomain("terminated"), type: "t", key: "k" };
          await put(storage, ref, 0, { again: true });
          assert.equal(await storage.getVersion(ref), 1);
        },
      );
      assert.deepEqual(crashes, [], "no error escaped the pool");
    } finally {
      process.off("uncaughtException", onCrash);
      link.close();
    }
  });

  it("fails a commit whose session the server ends mid-transaction, and keeps serving", async () => {
    const link = await proxy();
    const locker = await admin();
    try {
      await using(
        () => createPostgresStorage(options({ addr: link.addr, poolSize: 2 })),
        async (storage) => {
          const ref = { domain: uniqueDomain("mid"), type: "t", key: "k" };
          await put(storage, ref, 0, { n: 1 });
          const t = postgresTables("public", prefix);
          // Hold the entity's row lock, so the commit waits inside its transaction.
          await locker.query("BEGIN");
          await locker.query(`SELECT 1 FROM ${t.entities} WHERE "domain" = $1 AND "key" = $2 FOR UPDATE`, [
            ref.domain,
            ref.key,
          ]);
          const blocked = put(storage, ref, 1, { n: 2 });
          const ports = () => [...link.links].map((s) => s.localPort);
          let waiting: number[] = [];
          for (let i = 0; i < 100 && waiting.length === 0; i++) {
            await sleep(20);
            const { rows } = await locker.query(
              "SELECT pid FROM pg_stat_activity WHERE client_port = ANY($1::int[]) AND wait_event_type = 'Lock'",
              [ports()],
            );
            waiting = rows.map((r) => r.pid as number);
          }
          assert.equal(waiting.length, 1, "the commit waits for the row lock");
          await locker.query("SELECT pg_terminate_backend($1)", [waiting[0]]);
          await assert.rejects(blocked, hidesDetails);
          await locker.query("ROLLBACK");
          assert.deepEqual(await storage.getEntity(ref), { ...ref, values: { n: 1 }, version: 1 }, "nothing applied");
          await put(storage, ref, 1, { n: 2 });
        },
      );
    } finally {
      await locker.end();
      link.close();
    }
  });

  it("gives up on a statement after statementTimeoutMs, and the connection stays usable", async () => {
    const locker = await admin();
    try {
      await using(
        () => createPostgresStorage(options({ statementTimeoutMs: 300, poolSize: 1 })),
        async (storage) => {
          const ref = { domain: uniqueDomain("slow"), type: "t", key: "k" };
          await put(storage, ref, 0, { n: 1 });
          await locker.query("BEGIN");
          await locker.query(
            `SELECT 1 FROM ${postgresTables("public", prefix).entities} WHERE "domain" = $1 AND "key" = $2 FOR UPDATE`,
            [ref.domain, ref.key],
          );
          await timed(2000, () =>
            assert.rejects(put(storage, ref, 1, { n: 2 }), (error) => {
              hidesDetails(error);
              assert.ok(error instanceof ProviderTimeoutError, `the server's own time limit, got ${error}`);
              assert.match((error as Error).message, /timed out/);
              return true;
            }),
          );
          await locker.query("ROLLBACK");
          await put(storage, ref, 1, { n: 2 });
        },
      );
    } finally {
      await locker.end();
    }
  });

  it("refuses a value over JSONB's limit with ValueTooLargeError, writing nothing", () =>
    using(
      () => createPostgresStorage(options()),
      async (storage) => {
        const ref = { domain: uniqueDomain("large"), type: "doc", key: "k" };
        const values = { blob: "x".repeat(256 * 1024 * 1024) };
        await assert.rejects(put(storage, ref, 0, values), (error) => {
          assert.ok(error instanceof ValueTooLargeError, String(error));
          assert.equal(error.limitBytes, 0x0fffffff);
          assert.ok(error.actualBytes > error.limitBytes);
          return true;
        });
        assert.equal(await storage.getVersion(ref), 0);
        await put(storage, ref, 0, { small: true });
      },
    ));

  it("maps driver errors in one place", () => {
    const server = (code: string, more: object = {}) =>
      Object.assign(new DatabaseError(`${code} at SELECT 1`, 0, "error"), { code }, more);
    const driver = (message: string, more: object = {}) => Object.assign(new Error(message), more);
    for (const error of [
      driver("connect ECONNREFUSED 127.0.0.1:5432", { code: "ECONNREFUSED" }),
      driver("read ECONNRESET", { code: "ECONNRESET" }),
      driver("Connection terminated unexpectedly"),
      driver("Query read timeout"),
      driver("timeout exceeded when trying to connect"),
      driver("self-signed certificate", { code: "DEPTH_ZERO_SELF_SIGNED_CERT" }),
      server("57P01"),
      server("57P03"),
      server("08006"),
      server("53300"),
      server("57014"),
      server("28P01"),
    ]) {
      assert.ok(postgresError(error) instanceof ProviderUnavailableError, error.message);
    }
    assert.ok(isFatal(server("57P01")) && isFatal(driver("Query read timeout")));
    assert.ok(!isFatal(server("57014")), "a statement the server cancelled leaves the session usable");
    // The server ending a statement at its own time limit is a timeout (DEADLINE_EXCEEDED at the gateway);
    // a server we cannot reach or that stopped answering stays merely unavailable.
    for (const state of ["57014", "55P03"])
      assert.ok(postgresError(server(state)) instanceof ProviderTimeoutError, state);
    for (const error of [driver("Query read timeout"), driver("timeout expired"), server("57P01"), server("08006")]) {
      assert.ok(!(postgresError(error) instanceof ProviderTimeoutError), error.message);
    }
    assert.ok(isRetryable(server("40001")) && isRetryable(server("40P01")) && !isRetryable(server("23505")));
    const tooLarge = postgresError(server("54000"), { size: { limitBytes: 10, actualBytes: 20 } });
    assert.deepEqual(
      [tooLarge instanceof ValueTooLargeError, (tooLarge as ValueTooLargeError).actualBytes],
      [true, 20],
    );
    const fence = server("23505", { constraint: "t1_events_entity_version" });
    assert.ok(postgresError(fence, { conflict: { expected: 1, actual: 2 } }) instanceof VersionConflictError);
    const otherDuplicate = server("23505", { constraint: "t1_events_id" });
    assert.equal(postgresError(otherDuplicate, { conflict: { expected: 1, actual: 2 } }), otherDuplicate);
    const syntax = server("42601");
    assert.equal(postgresError(syntax), syntax, "a bug stays itself, for the internal log");
    assert.ok(postgresError(driver("Cannot use a pool after calling end on the pool")) instanceof ProviderClosedError);
  });

  it("refuses every call after close, and tolerates a second close", async () => {
    const storage = await createPostgresStorage(options());
    await storage.close();
    await storage.close();
    await assert.rejects(storage.ping(), ProviderClosedError);
    await assert.rejects(storage.lastPosition(), ProviderClosedError);
    await assert.rejects(storage.markPublished([1]), ProviderClosedError);
    await assert.rejects(storage.unpublishedEvents(1n, 1), ProviderClosedError);
    await assert.rejects(put(storage, { domain: "d", type: "t", key: "k" }, 0, {}), ProviderClosedError);
  });
});

describe("postgres storage: configuration", () => {
  const configError = (option: string) => (error: unknown) => {
    assert.ok(error instanceof ProviderConfigError, `a ProviderConfigError, got ${error}`);
    assert.equal(error.option, option);
    return true;
  };

  it("accepts the url form, with separate keys overriding its parts", async () => {
    for (const scheme of ["postgres", "postgresql"]) {
      await using(
        () =>
          createPostgresStorage({ url: `${scheme}://${server.user}:@${addr}/${server.database}`, tablePrefix: prefix }),
        (storage) => storage.ping(),
      );
    }
    await using(
      () => createPostgresStorage({ url: `postgres://nobody:wrong@${addr}/nodb`, ...server, tablePrefix: prefix }),
      (storage) => storage.ping(),
    );
  });

  it("is selected by the JSON spec of the registry, empty password included", async () => {
    const spec = {
      name: "postgres",
      ...server,
      tablePrefix: prefix,
      poolSize: 2,
      connectTimeoutMs: 2000,
      statementTimeoutMs: 5000,
    };
    const storage = await createStorage(spec, { dataDir: tmpdir() });
    assert.equal(storage.name, "postgres");
    await storage.close();
    await assert.rejects(createStorage({ ...spec, tls: "yes" }, { dataDir: tmpdir() }), configError("tls"));
    await assert.rejects(createStorage({ ...spec, prefix: "x" }, { dataDir: tmpdir() }), configError("prefix"));
  });

  it("keeps an install in its own schema, creating the schema when missing", async () => {
    const schema = `s${randomBytes(4).toString("hex")}`;
    schemas.push(schema);
    const ref = { domain: uniqueDomain("schema"), type: "t", key: "k" };
    await using(
      () => createPostgresStorage(options({ schema, tablePrefix: "sg_" })),
      (storage) => put(storage, ref, 0, { here: true }),
    );
    const { rows } = await asAdmin((client) =>
      client.query("SELECT table_name AS name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1", [
        schema,
      ]),
    );
    assert.deepEqual(
      rows.map((r) => r.name),
      ["sg_entities", "sg_events", "sg_outbox", "sg_position", "sg_schema"],
    );
    await using(
      () => createPostgresStorage(options({ schema, tablePrefix: "sg_" })),
      async (storage) => assert.deepEqual((await storage.getEntity(ref))?.values, { here: true }),
    );
    await using(
      () => createPostgresStorage(options()),
      async (storage) => assert.equal(await storage.getEntity(ref), undefined, "another install sees nothing"),
    );
  });

  it("refuses bad options at start-up, naming them and never echoing a password", async () => {
    await assert.rejects(createPostgresStorage(options({ tablePrefix: "bad-prefix" })), configError("tablePrefix"));
    await assert.rejects(createPostgresStorage(options({ tablePrefix: "x".repeat(33) })), configError("tablePrefix"));
    await assert.rejects(createPostgresStorage(options({ schema: "pg_mine" })), configError("schema"));
    await assert.rejects(createPostgresStorage(options({ schema: 'a"b' })), configError("schema"));
    await assert.rejects(createPostgresStorage(options({ poolSize: 0 })), configError("poolSize"));
    await assert.rejects(createPostgresStorage(options({ statementTimeoutMs: 0 })), configError("statementTimeoutMs"));
    await assert.rejects(createPostgresStorage(options({ connectTimeoutMs: 1.5 })), configError("connectTimeoutMs"));
    await assert.rejects(createPostgresStorage(options({ addr: "::1:5432" })), configError("addr"));
    await assert.rejects(createPostgresStorage({ addr }), configError("database"));
    await assert.rejects(createPostgresStorage({ url: "postgres://u:hunter2@h/db?sslmode=require" }), (error) => {
      configError("url")(error);
      assert.ok(!(error as Error).message.includes("hunter2"));
      return true;
    });
    await assert.rejects(createPostgresStorage({ url: "mysql://u:hunter2@h/db" }), configError("url"));
    await assert.rejects(createPostgresStorage(options({ tls: { ca: "/nonexistent/ca.pem" } })), configError("tls.ca"));
    await assert.rejects(
      createPostgresStorage(options({ tls: { verify: true } as PostgresStorageOptions["tls"] })),
      configError("tls.verify"),
    );
    await assert.rejects(createPostgresStorage(options({ tls: { cert: "/x.pem" } })), configError("tls.key"));
  });
});

// One backend ErrorResponse: severity, SQLSTATE and message fields.
function errorResponse(code: string, message: string): Buffer {
  const field = (type: string, value: string) => Buffer.from(`${type}${value}\0`);
  const body = Buffer.concat([field("S", "FATAL"), field("V", "FATAL"), field("C", code), field("M", message)]);
  const header = Buffer.alloc(5);
  header.write("E", 0);
  header.writeInt32BE(body.length + 1 + 4, 1);
  return Buffer.concat([header, body, Buffer.from([0])]);
}

describe("postgres storage: tls", () => {
  const dir = mkdtempSync(join(tmpdir(), "stategate-postgres-tls-"));
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

  // Speaks just enough of the protocol to accept the SSLRequest, then records
  // what the client sent over TLS (its StartupMessage names the user) and
  // refuses the login.
  async function tlsServer(): Promise<{ addr: string; seen: Handshake[]; close(): void }> {
    const seen: Handshake[] = [];
    const key = readFileSync(serverPem.key);
    const cert = readFileSync(serverPem.cert);
    const srv = net.createServer((socket) => {
      socket.on("error", () => {});
      let buffered = Buffer.alloc(0);
      const onData = (chunk: Buffer) => {
        buffered = Buffer.concat([buffered, chunk]);
        if (buffered.length < 8) return; // SSLRequest: length 8, code 80877103
        socket.off("data", onData);
        assert.equal(buffered.readInt32BE(4), 80877103, "the client asks for TLS first");
        socket.write("S");
        // TLS reads a net.Socket's handle directly and would miss bytes
        // already read past the SSLRequest: hand it a stream that has them.
        const raw = new Duplex({
          read() {},
          write: (chunk, _encoding, done) => socket.write(chunk, done),
          final: (done) => socket.end(done),
        });
        raw.push(buffered.subarray(8));
        socket.on("data", (more) => raw.push(more));
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
        secure.once("data", (startup: Buffer) => {
          // StartupMessage: length, protocol 3.0, then name\0value\0 pairs.
          const pairs = startup.subarray(8).toString().split("\0");
          record.user = pairs[pairs.indexOf("user") + 1];
          secure.end(errorResponse("28P01", "fake server"));
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

  const connect = (serverAddr: string, settings: PostgresStorageOptions["tls"]) =>
    createPostgresStorage({ ...server, addr: serverAddr, user: "tls-user", tls: settings, connectTimeoutMs: 3000 });

  it("refuses to fall back to plaintext when the server offers no TLS", () =>
    assert.rejects(createPostgresStorage(options({ tls: true })), (error) => {
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
        assert.ok(error instanceof ProviderUnavailableError, String(error));
        assert.match(error.message, /TLS handshake/);
        return true;
      };
      await assert.rejects(connect(fake.addr, { ca: serverPem.cert, servername: "other.example.test" }), refused);
      await assert.rejects(connect(fake.addr, { servername: "db.example.test" }), refused);
      await assert.rejects(connect(fake.addr, true), refused);
      await assert.rejects(connect(fake.addr, { ca: serverPem.cert }), refused, "127.0.0.1 is not db.example.test");
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
