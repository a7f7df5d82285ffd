// The operations a load generator runs, on each path:
// - gateway: a gRPC call to the gateway through the Node SDK (createClient,
//   protocol "grpc"), which is what Node applications call;
// - floor: the same client, calling the floor server (floor-server.mjs), a
//   bare node:http2 gRPC server doing the direct path's backend work;
// - direct: the same work straight on the backend, in the load generator's own
//   process: memjs for Memcached, mysql2 for MySQL with the very pool options
//   and statements of the gateway's MySQL adapter (imported from
//   @stategate/providers), better-sqlite3 for SQLite with the
//   statements of the gateway's SQLite adapter.
import { randomUUID } from "node:crypto";
import { createMysqlPool, mysqlConfig, mysqlStatements, mysqlTables, runMysqlCommit } from "@stategate/providers";
import { createClient } from "@stategate/sdk-node";
import Database from "better-sqlite3";
import memjs from "memjs";

export const DOMAIN = "bench";
/** Entities read by Entity Get (keys r0…), written by Entity Set (keys w0…), cache values read by Cache Get (c0…). */
export const READ_TYPE = "user";
export const WRITE_TYPE = "write";
export const SET_METHOD = "/stategate.v1.EntityService/Set";

/** A small entity, like a user profile: about 150 bytes of JSON. */
export function entityValues(i) {
  return {
    name: `user ${i}`,
    email: `user${i}@example.com`,
    age: 20 + (i % 50),
    active: i % 3 !== 0,
    tags: ["bench", `group-${i % 10}`],
    address: { city: "Lyon", zip: `690${String(i % 100).padStart(2, "0")}` },
  };
}

export const cacheValue = (i) => ({ user: i, session: `s-${i}`, roles: ["reader"] });

/** Wall-clock milliseconds with sub-millisecond resolution, comparable between processes of one machine. */
export const wallNow = () => performance.timeOrigin + performance.now();

/** Nanoseconds since the epoch, as the gateway stamps events. */
const nowNs = () => BigInt(Math.round(wallNow() * 1000)) * 1000n;

/**
 * The SDK's client on one HTTP/2 connection (to a gateway or to the floor
 * server). `cache.get` answers plain JSON, `entity.get/set` messages. The
 * long idle timeout keeps one connection across a suite's phases, so no
 * reconnection lands inside a measured window.
 */
export function gatewayClients(baseUrl) {
  const client = createClient({ baseUrl, protocol: "grpc", idleTimeoutMs: 60_000 });
  return { entity: client.entity, cache: client.cache, close: () => client.close() };
}

/**
 * The pool options the gateway's MySQL adapter builds from the same storage
 * options (`{ addr, user, password, database }`): its own mysqlConfig, so the
 * direct path is like for like.
 */
export const mysqlPoolOptions = (options) => mysqlConfig(options).pool;

/**
 * Direct MySQL: Get is the adapter's one SELECT (JSON parsed); Set is the
 * adapter's own transaction for a Set without an expected version
 * (runMysqlCommit: lock the row, write the state at the next version, take
 * the next position, insert the event, commit, in one round trip), on the
 * adapter's pool (createMysqlPool).
 */
export function directMysql(options, prefix) {
  const config = mysqlConfig({ ...options, tablePrefix: prefix });
  const pool = createMysqlPool(config.pool);
  // The adapter's own statements, on the direct path's tables (same
  // definitions, created with CREATE TABLE … LIKE the gateway's).
  const sql = mysqlStatements(mysqlTables(config.tablePrefix));
  const get = async (type, key) => {
    const [rows] = await pool.execute(sql.selectEntity, [DOMAIN, type, key]);
    const row = rows[0];
    if (row === undefined) return undefined;
    return { ...row, values: JSON.parse(row.values), version: Number(row.version) };
  };
  const attempt = async (type, key, json) => {
    const conn = await pool.getConnection();
    try {
      const id = randomUUID();
      const time = nowNs();
      const { version, position } = await runMysqlCommit(
        conn,
        sql,
        {
          domain: DOMAIN,
          type,
          key,
          state: json,
          id,
          values: null,
          operation: "set",
          method: SET_METHOD,
          claims: "{}",
          time: time.toString(),
        },
        Number.MAX_SAFE_INTEGER,
      );
      return { id, time, position, version };
    } catch (error) {
      await conn.rollback().catch(() => {});
      throw error;
    } finally {
      conn.release();
    }
  };
  // As the gateway does: a deadlock the server rolled back is run again (mysql.ts, up to 4 times).
  const set = async (type, key, values) => {
    const json = JSON.stringify(values);
    for (let deadlocks = 0; ; deadlocks++) {
      try {
        return await attempt(type, key, json);
      } catch (error) {
        if (error?.errno !== 1213 || deadlocks === 3) throw error;
      }
    }
  };
  return { pool, get, set, close: () => pool.end() };
}

/** Direct SQLite, with the pragmas and statements of packages/providers/src/storage/sqlite.ts. */
export function directSqlite(path) {
  const db = new Database(path, { timeout: 5000 });
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = FULL");
  const selectVersion = db.prepare(
    "SELECT max(version) AS version FROM events WHERE domain = ? AND type = ? AND key = ?",
  );
  const selectEntity = db.prepare(
    `SELECT domain, type, key, "values", version FROM entities WHERE domain = ? AND type = ? AND key = ?`,
  );
  const upsertEntity = db.prepare(
    `INSERT INTO entities (domain, type, key, "values", version) VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (domain, type, key) DO UPDATE SET "values" = excluded."values", version = excluded.version`,
  );
  const insertEvent = db.prepare(
    `INSERT INTO events (id, domain, type, key, "values", version, operation, method, claims, time)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const get = (type, key) => {
    const row = selectEntity.get(DOMAIN, type, key);
    return row === undefined ? undefined : { ...row, values: JSON.parse(row.values) };
  };
  // The gateway's Set without an expected version: the version is read inside the write transaction.
  const commit = db.transaction((type, key, json) => {
    const version = (selectVersion.get(DOMAIN, type, key)?.version ?? 0) + 1;
    upsertEntity.run(DOMAIN, type, key, json, version);
    const id = randomUUID();
    const time = nowNs();
    const { lastInsertRowid } = insertEvent.run(id, DOMAIN, type, key, json, version, "set", SET_METHOD, "{}", time);
    return { id, time, position: Number(lastInsertRowid), version };
  });
  const set = (type, key, values) => commit.immediate(type, key, JSON.stringify(values));
  return { db, get, set, close: () => db.close() };
}

/** Direct Memcached through memjs: items in the gateway's own format ({"v":value,"e":expiry}). */
export function directMemcached(addr, prefix) {
  const client = memjs.Client.create(addr, {
    retries: 1,
    failover: false,
    timeout: 1,
    conntimeout: 1,
    keepAlive: true,
    logger: { log() {} },
  });
  const itemKey = (key) => `${prefix}${key}`;
  return {
    client,
    async set(key, value) {
      await client.set(itemKey(key), JSON.stringify({ v: value, e: null }), {});
    },
    async get(key) {
      const { value } = await client.get(itemKey(key));
      if (value === null) throw new Error(`memcached miss for ${key}`);
      const item = JSON.parse(value.toString("utf8"));
      return item.e !== null && item.e <= Date.now() ? undefined : item.v;
    },
    close: () => client.close(),
  };
}

/**
 * The operation `name` on `path`, as `op(i)` (i picks the key), plus `close`.
 * ctx: { baseUrl, floorBaseUrl, mysql, mysqlPrefix, memcachedAddr, memcachedPrefix, sqlitePath, keys }.
 */
export function createOperation(path, name, ctx) {
  const keys = ctx.keys;
  const readKey = (i) => `r${i % keys}`;
  const writeKey = (i) => `w${i % keys}`;
  // The floor path uses the gateway path's client, so the two differ only in the server.
  if (path === "gateway" || path === "floor") {
    const clients = gatewayClients(path === "gateway" ? ctx.baseUrl : ctx.floorBaseUrl);
    const ops = {
      "cache.get": (i) => clients.cache.get({ domain: DOMAIN, key: `c${i % keys}` }),
      "entity.get": (i) => clients.entity.get({ domain: DOMAIN, type: READ_TYPE, key: readKey(i) }),
      "entity.set": (i) =>
        clients.entity.set({ domain: DOMAIN, type: WRITE_TYPE, key: writeKey(i), values: entityValues(i) }),
    };
    const op = ops[name.replace(/^(mysql|sqlite|memcached)\./, "")];
    if (!op) throw new Error(`unknown ${path} operation ${name}`);
    return { op, close: async () => clients.close() };
  }
  const [backend, ...rest] = name.split(".");
  const what = rest.join(".");
  if (backend === "memcached" && what === "cache.get") {
    const cache = directMemcached(ctx.memcachedAddr, ctx.memcachedPrefix);
    return { op: (i) => cache.get(`c${i % keys}`), close: async () => cache.close() };
  }
  if (backend === "mysql") {
    const store = directMysql(ctx.mysql, ctx.mysqlPrefix);
    if (what === "entity.get") return { op: (i) => store.get(READ_TYPE, readKey(i)), close: store.close };
    if (what === "entity.set")
      return { op: (i) => store.set(WRITE_TYPE, writeKey(i), entityValues(i)), close: store.close };
  }
  if (backend === "sqlite") {
    const store = directSqlite(ctx.sqlitePath);
    if (what === "entity.get") return { op: (i) => store.get(READ_TYPE, readKey(i)), close: async () => store.close() };
    if (what === "entity.set")
      return { op: (i) => store.set(WRITE_TYPE, writeKey(i), entityValues(i)), close: async () => store.close() };
  }
  throw new Error(`unknown direct operation ${name}`);
}
