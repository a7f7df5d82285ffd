import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import mysql, { type RowDataPacket } from "mysql2/promise";
import { draftEvent, put, uniqueDomain, using } from "../src/conformance/helpers.js";
import { createMysqlStorage } from "../src/storage/mysql.js";
import { mysqlTables } from "../src/storage/mysql-schema.js";
import type { JsonObject } from "../src/types.js";

// This test changes the shared server's global sql_mode (and puts it back):
// the test runner runs *.serial.test.ts files alone.
const addr = process.env.STATEGATE_TEST_MYSQL_ADDR ?? "127.0.0.1:3306";
const [bracketedHost = "127.0.0.1", port = "3306"] = addr.split(/:(?=\d+$)/);
const host = bracketedHost.replace(/^\[(.*)\]$/, "$1");

/**
 * A commit sends its values inside SQL text, escaped with backslashes; a
 * server whose default sql_mode has NO_BACKSLASH_ESCAPES would read those
 * backslashes as data (and a quote after one as the end of the string). The
 * adapter's connections drop that mode for themselves.
 */
describe("mysql storage on a server whose sql_mode has NO_BACKSLASH_ESCAPES", () => {
  it("stores quotes and backslashes exactly, on both commit paths", async () => {
    const admin = await mysql.createConnection({ host, port: Number(port), user: "root", database: "test" });
    const prefix = `t${randomBytes(4).toString("hex")}_`;
    const [[before]] = (await admin.query("SELECT @@GLOBAL.sql_mode AS mode")) as unknown as [RowDataPacket[]];
    await admin.query("SET GLOBAL sql_mode = TRIM(BOTH ',' FROM CONCAT(@@GLOBAL.sql_mode, ',NO_BACKSLASH_ESCAPES'))");
    try {
      await using(
        () => createMysqlStorage({ addr, user: "root", password: "", database: "test", tablePrefix: prefix }),
        async (storage) => {
          const ref = { domain: uniqueDomain("sqlmode"), type: "t\\'", key: "k\\" };
          const values: JsonObject = { quote: "it's", escaped: "\\'; SELECT 1; --", backslashes: "\\\\ \\" };
          const { version: _, ...blind } = draftEvent({ ...ref, version: 1, values });
          await storage.commit({ event: blind, state: values });
          const next = { ...values, more: '\\"' };
          const event = await put(storage, ref, 1, next);
          assert.deepEqual(await storage.getEntity(ref), { ...ref, values: next, version: 2 });
          assert.deepEqual((await storage.getEvent({ ...ref, id: event.id }))?.values, next);
          // What the server holds, read by a connection of its own.
          const [rows] = await admin.execute<RowDataPacket[]>(
            `SELECT \`values\` FROM ${mysqlTables(prefix).entities} WHERE \`domain\` = ? AND \`key\` = ?`,
            [ref.domain, ref.key],
          );
          const raw = rows[0]?.values;
          assert.deepEqual(typeof raw === "string" ? JSON.parse(raw) : raw, next);
        },
      );
    } finally {
      await admin.query("SET GLOBAL sql_mode = ?", [before?.mode]);
      const t = mysqlTables(prefix);
      await admin.query(`DROP TABLE IF EXISTS ${t.entities}, ${t.events}, ${t.position}, ${t.schema}`);
      await admin.end();
    }
  });
});
