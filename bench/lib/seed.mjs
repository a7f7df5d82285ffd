// Puts the data the scenarios read in place, on both paths, and creates the
// direct path's tables with the gateway's own definitions.
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { createClient } from "@stategate/sdk-node";
import Database from "better-sqlite3";
import mysql from "mysql2/promise";
import {
  cacheValue,
  DOMAIN,
  directMemcached,
  directMysql,
  directSqlite,
  entityValues,
  mysqlPoolOptions,
  READ_TYPE,
  WRITE_TYPE,
} from "./ops.mjs";

/** Runs `fn(i)` for i in [0, n) with `concurrency` in flight. */
export async function forEachLimit(n, concurrency, fn) {
  let next = 0;
  const worker = async () => {
    while (next < n) await fn(next++);
  };
  await Promise.all(Array.from({ length: Math.min(n, concurrency) }, worker));
}

/** Direct tables `<direct>entities` … as copies of the gateway's (`CREATE TABLE … LIKE`), emptied. */
export async function createDirectMysqlTables(options, gatewayPrefix, directPrefix) {
  const conn = await mysql.createConnection(mysqlPoolOptions(options));
  try {
    for (const table of ["entities", "events", "position"]) {
      await conn.query(`DROP TABLE IF EXISTS \`${directPrefix}${table}\``);
      await conn.query(`CREATE TABLE \`${directPrefix}${table}\` LIKE \`${gatewayPrefix}${table}\``);
    }
    await conn.query(`INSERT INTO \`${directPrefix}position\` (\`id\`, \`last\`) VALUES (1, 0)`);
  } finally {
    await conn.end();
  }
}

/** Drops the tables of the given prefixes (the bench's own, never the default `stategate_`). */
export async function dropMysqlTables(options, prefixes) {
  const conn = await mysql.createConnection(mysqlPoolOptions(options));
  try {
    for (const prefix of prefixes) {
      if (!prefix.startsWith("sgb")) throw new Error(`refusing to drop tables of prefix ${prefix}`);
      for (const table of ["entities", "events", "position", "schema"]) {
        await conn.query(`DROP TABLE IF EXISTS \`${prefix}${table}\``);
      }
    }
  } finally {
    await conn.end();
  }
}

/** A SQLite file with the schema the gateway created in its own file. */
function createDirectSqlite(gatewayDb, directDb) {
  mkdirSync(dirname(directDb), { recursive: true });
  const source = new Database(gatewayDb, { readonly: true, fileMustExist: true, timeout: 5000 });
  const ddl = source
    .prepare("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY rowid")
    .all()
    .map((row) => row.sql);
  source.close();
  const target = new Database(directDb, { timeout: 5000 });
  target.pragma("journal_mode = WAL");
  for (const statement of ddl) target.exec(statement);
  target.close();
}

/**
 * job: { backends: ["mysql" | "sqlite" | "memcached", …], ctx }. Writes
 * `ctx.keys` read entities and write entities (or cache values) through the
 * gateway and through the direct path.
 */
export async function seed({ backends, ctx }) {
  const client = createClient({ baseUrl: ctx.baseUrl, protocol: "grpc" });
  const n = ctx.keys;
  try {
    for (const backend of backends) {
      if (backend === "memcached") {
        const direct = directMemcached(ctx.memcachedAddr, ctx.memcachedPrefix);
        await forEachLimit(n, 16, async (i) => {
          await client.cache.set({ domain: DOMAIN, key: `c${i}`, value: cacheValue(i) });
          await direct.set(`c${i}`, cacheValue(i));
        });
        direct.close();
        continue;
      }
      let direct;
      if (backend === "mysql") {
        await createDirectMysqlTables(ctx.mysql, ctx.gatewayMysqlPrefix, ctx.mysqlPrefix);
        direct = directMysql(ctx.mysql, ctx.mysqlPrefix);
      } else if (backend === "sqlite") {
        createDirectSqlite(ctx.gatewaySqlitePath, ctx.sqlitePath);
        direct = directSqlite(ctx.sqlitePath);
      } else {
        throw new Error(`unknown backend ${backend}`);
      }
      await forEachLimit(n, 16, async (i) => {
        for (const [type, key] of [
          [READ_TYPE, `r${i}`],
          [WRITE_TYPE, `w${i}`],
        ]) {
          await client.entity.set({ domain: DOMAIN, type, key, values: entityValues(i) });
          await direct.set(type, key, entityValues(i));
        }
      });
      await direct.close();
    }
    return { backends, keys: n };
  } finally {
    client.close();
  }
}
