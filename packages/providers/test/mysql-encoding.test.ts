import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, describe, it } from "node:test";
import mysql, { type RowDataPacket } from "mysql2/promise";
import { put, uniqueDomain, using } from "../src/conformance/helpers.js";
import { createMysqlStorage, parseJson } from "../src/storage/mysql.js";
import { mysqlTables } from "../src/storage/mysql-schema.js";
import type { JsonObject } from "../src/types.js";

// STATEGATE_TEST_MYSQL_ADDR points the tests at another server.
const addr = process.env.STATEGATE_TEST_MYSQL_ADDR ?? "127.0.0.1:3306";
const server = { addr, user: "root", password: "", database: "test" };
const [bracketedHost = "127.0.0.1", port = "3306"] = addr.split(/:(?=\d+$)/);
const host = bracketedHost.replace(/^\[(.*)\]$/, "$1");
// Tables of this file's own, dropped at the end.
const prefix = `t${randomBytes(4).toString("hex")}_`;
const tables = mysqlTables(prefix);
const tableNames = [tables.entities, tables.events, tables.position, tables.schema].map((t) => t.replaceAll("`", ""));

const admin = (more: mysql.ConnectionOptions = {}) =>
  mysql.createConnection({ host, port: Number(port), user: server.user, database: server.database, ...more });

after(async () => {
  const conn = await admin();
  try {
    await conn.query(`DROP TABLE IF EXISTS ${tables.entities}, ${tables.events}, ${tables.position}, ${tables.schema}`);
  } finally {
    await conn.end();
  }
});

// Keys in an order MySQL 8 does not keep (it sorts them by length, then
// bytes): values are maps, so only the keys and their values count.
const values: JsonObject = {
  zebra: "🦓",
  b: [1, "two", { "🔑": null, nested: { deeper: [true, false, {}] } }],
  a: 9007199254740991,
  "é clé": "e\u0301 \u00e9",
  tiny: -1.25e-7,
  none: [],
  empty: {},
};

describe("mysql storage: JSON columns", () => {
  it("reads text, bytes and an already parsed value as identical objects", () => {
    const text = JSON.stringify(values);
    const forms: [string, unknown][] = [
      ["text", text],
      ["bytes", Buffer.from(text, "utf8")],
      ["parsed", JSON.parse(text)],
    ];
    for (const [form, input] of forms) {
      assert.deepEqual(parseJson(input), values, form);
    }
    // Key order is not part of a value: the same map in another order is equal.
    const reordered = Object.fromEntries(Object.entries(values).reverse());
    assert.deepEqual(parseJson(JSON.stringify(reordered)), values);
  });

  it("gives identical objects for the forms a server can hand back: JSON text, bytes, or parsed by the driver", async () => {
    const ref = { domain: uniqueDomain("json-forms"), type: "t", key: "k" };
    await using(
      () => createMysqlStorage({ ...server, tablePrefix: prefix }),
      async (storage) => {
        await put(storage, ref, 0, values);
        assert.deepEqual((await storage.getEntity(ref))?.values, values);
      },
    );
    const select = `SELECT \`values\` AS v, CAST(\`values\` AS BINARY) AS bytes FROM ${tables.entities} WHERE \`domain\` = ? AND \`type\` = ? AND \`key\` = ?`;
    // jsonStrings off: MySQL 8 hands over a parsed object, MariaDB (JSON is LONGTEXT there) a string.
    for (const jsonStrings of [true, false]) {
      const conn = await admin({ jsonStrings, charset: "UTF8MB4_BIN" });
      try {
        const [rows] = await conn.execute<RowDataPacket[]>(select, [ref.domain, ref.type, ref.key]);
        const row = rows[0] as { v: unknown; bytes: unknown };
        assert.ok(Buffer.isBuffer(row.bytes), "CAST AS BINARY gives bytes");
        assert.deepEqual(parseJson(row.v), values, `the column with jsonStrings ${jsonStrings}`);
        assert.deepEqual(parseJson(row.bytes), values, "the column as bytes");
      } finally {
        await conn.end();
      }
    }
  });
});

describe("mysql storage: utf8mb4", () => {
  it("creates every table and every text column as utf8mb4", async () => {
    await using(
      () => createMysqlStorage({ ...server, tablePrefix: prefix }),
      async () => {},
    );
    const conn = await admin();
    try {
      const [found] = await conn.execute<RowDataPacket[]>(
        `SELECT TABLE_NAME AS name, TABLE_COLLATION AS collation FROM information_schema.TABLES
          WHERE TABLE_SCHEMA = ? AND TABLE_NAME IN (?, ?, ?, ?) ORDER BY TABLE_NAME`,
        [server.database, ...tableNames],
      );
      assert.deepEqual(
        found.map((t) => t.name),
        [...tableNames].sort(),
        "the adapter's tables",
      );
      for (const t of found) {
        assert.match(String(t.collation), /^utf8mb4_/, `table ${t.name}: default collation ${t.collation}`);
      }
      const [columns] = await conn.execute<RowDataPacket[]>(
        `SELECT TABLE_NAME AS tableName, COLUMN_NAME AS name, DATA_TYPE AS type,
            CHARACTER_SET_NAME AS charset, COLLATION_NAME AS collation
          FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME IN (?, ?, ?, ?)`,
        [server.database, ...tableNames],
      );
      const textTypes = ["char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set", "json"];
      const text = columns.filter((c) => textTypes.includes(String(c.type).toLowerCase()));
      // Not vacuous: the key columns, the event's text fields and the JSON values are all there.
      const names = new Set(text.map((c) => `${String(c.tableName).slice(prefix.length)}.${c.name}`));
      for (const expected of [
        "entities.domain",
        "entities.type",
        "entities.key",
        "entities.values",
        "events.id",
        "events.key",
        "events.values",
        "events.operation",
        "events.method",
        "events.claims",
      ]) {
        assert.ok(names.has(expected), `${expected} is a text column (found: ${[...names].join(", ")})`);
      }
      for (const c of text) {
        const where = `${c.tableName}.${c.name} (${c.type})`;
        // MySQL 8 stores JSON in a binary format with no character set: always utf8mb4 inside.
        if (String(c.type).toLowerCase() === "json" && c.charset === null) continue;
        assert.equal(c.charset, "utf8mb4", `${where}: character set`);
        assert.match(String(c.collation), /^utf8mb4_/, `${where}: collation`);
      }
    } finally {
      await conn.end();
    }
  });
});
