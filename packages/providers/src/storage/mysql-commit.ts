/**
 * One commit's transaction on MySQL/MariaDB, in one round trip (a commit at
 * the entity's next version) or two (at an expected version, checked between
 * them), instead of one round trip per statement: seven before. Each round
 * trip costs both the gateway and the server a wake-up and a packet each
 * way, which on a busy machine was most of a Set's time (BENCHMARKS.md).
 *
 * The statements of a step go as one multi-statement text. A statement that
 * fails stops the text there, with the transaction still open: the caller
 * rolls it back, as after any failed commit. A step carrying large values
 * runs statement by statement instead (see runStep).
 */
import type { PoolConnection as CallbackConnection } from "mysql2";
import mysql, { type Pool, type PoolConnection, type PoolOptions, type RowDataPacket } from "mysql2/promise";
import { nextVersion } from "./commit-check.js";
import type { mysqlStatements } from "./mysql-schema.js";

/** The steps runMysqlCommit runs (from mysqlStatements). */
export type MysqlCommitStatements = Pick<
  ReturnType<typeof mysqlStatements>,
  "commitAtNext" | "lockForCommit" | "writeAndCommit"
>;

/** One commit as the MySQL adapter writes it: JSON already text, the time in nanoseconds as decimal digits. */
export interface MysqlCommitWrite {
  domain: string;
  type: string;
  key: string;
  /** The version the entity must be at; without it, the commit takes the next one. */
  expectedVersion?: number;
  /** The new current values; null deletes (keeps a tombstone row). */
  state: string | null;
  id: string;
  /** The event's values; null when they are `state` (a Set), which the server then copies from the row. */
  values: string | null;
  operation: string;
  method: string;
  claims: string;
  time: string;
}

/** The version and position a commit was given. */
export interface MysqlCommitted {
  version: number;
  position: number;
}

/**
 * Runs one commit's transaction on `conn` and commits it. A version the
 * entity is not at is a VersionConflictError; on that and on any failure,
 * the transaction may still be open and the caller must roll it back.
 * `packetLimit` is the most a text may weigh (the server's
 * max_allowed_packet, less a margin).
 */
export async function runMysqlCommit(
  conn: PoolConnection,
  sql: MysqlCommitStatements,
  write: MysqlCommitWrite,
  packetLimit: number,
): Promise<MysqlCommitted> {
  const { domain, type, key, state, id, values, operation, method, claims, time } = write;
  const ref = [domain, type, key];
  // The event's values (NULL: the row's), what it records, and the row the position and version are read from.
  const insertEvent = [id, values, operation, method, claims, time, ...ref];
  if (write.expectedVersion === undefined) {
    const results = await runStep(
      conn,
      sql.commitAtNext,
      [[], ref, [state, ...ref], [], insertEvent, ref, []],
      packetLimit,
    );
    return committed(results[5]);
  }
  const locked = await runStep(conn, sql.lockForCommit, [[], ref, ref], packetLimit);
  const [current] = locked[2] as RowDataPacket[];
  const version = nextVersion(write, Number(current?.version ?? 0));
  const results = await runStep(
    conn,
    sql.writeAndCommit,
    [[state, version, ...ref], [], insertEvent, ref, []],
    packetLimit,
  );
  return committed(results[3]);
}

type Param = string | number | null;

/** Values up to this size (all of a step's, before escaping) go inside one text; larger ones statement by statement. */
const inlineBytes = 64 * 1024;

/**
 * Runs a step's statements, each with its parameters, and answers their
 * results in order. Usually as one text, one round trip. Escaped for SQL
 * text, a value can take up to four times its size (a backslash, already
 * escaped once in JSON), and the text must fit in one packet; so a step
 * with large values runs statement by statement, prepared, its values sent
 * as they are, as every commit did before it became one text.
 */
async function runStep(
  conn: PoolConnection,
  statements: readonly string[],
  params: readonly (readonly Param[])[],
  packetLimit: number,
): Promise<unknown[]> {
  let bytes = 0;
  for (const list of params) for (const p of list) if (typeof p === "string") bytes += Buffer.byteLength(p);
  if (bytes <= inlineBytes) {
    const text = statements
      .map((statement, i) => (params[i]?.length ? mysql.format(statement, params[i] as Param[]) : statement))
      .join(";\n");
    if (Buffer.byteLength(text) <= packetLimit) {
      const [results] = await conn.query(text);
      return results as unknown as unknown[];
    }
  }
  const results: unknown[] = [];
  for (let i = 0; i < statements.length; i++) {
    const statement = statements[i] as string;
    const list = params[i] ?? [];
    const [result] = list.length > 0 ? await conn.execute(statement, list as Param[]) : await conn.query(statement);
    results.push(result);
  }
  return results;
}

function committed(rows: unknown): MysqlCommitted {
  const row = (rows as RowDataPacket[] | undefined)?.[0];
  if (row === undefined) throw new Error("the commit read no entity row back");
  return { version: Number(row.version), position: Number(row.position) };
}

/**
 * The adapter's mysql2 pool, from mysqlConfig's options. Commits send their
 * values inside SQL text, escaped by mysql2 with backslashes, so every
 * connection drops NO_BACKSLASH_ESCAPES from its sql_mode before its first
 * statement: under that mode a backslash would no longer escape a quote.
 */
export function createMysqlPool(options: PoolOptions): Pool {
  const pool = mysql.createPool(options);
  // mysql2 hands this event its callback-style connection, whatever its promise types say.
  pool.on("connection", (connection) => {
    const conn = connection as unknown as CallbackConnection;
    // Queued on the new connection before the statement it was opened for.
    conn.query(keepBackslashEscapes, (error) => {
      if (error) conn.destroy();
    });
  });
  return pool;
}

const keepBackslashEscapes = `SET SESSION sql_mode =
  TRIM(BOTH ',' FROM REPLACE(CONCAT(',', @@SESSION.sql_mode, ','), ',NO_BACKSLASH_ESCAPES,', ','))`;
