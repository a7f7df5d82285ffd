/**
 * The tables of one stategate install, their migrations, and the fixed SQL
 * the adapter runs on them. Table names carry a validated prefix so several
 * installs can share a database; nothing else is ever spliced into SQL.
 */
import type { Pool, PoolConnection, RowDataPacket } from "mysql2/promise";
import { ProviderUnavailableError } from "../errors.js";

/** Quoted table names of one install, plus the name of its migration lock. */
export interface MysqlTables {
  entities: string;
  events: string;
  position: string;
  schema: string;
  /** GET_LOCK name; server-wide, so it carries the prefix too. */
  migrationLock: string;
}

/** The tables of the install with this (already validated) prefix. */
export function mysqlTables(prefix: string): MysqlTables {
  return {
    entities: `\`${prefix}entities\``,
    events: `\`${prefix}events\``,
    position: `\`${prefix}position\``,
    schema: `\`${prefix}schema\``,
    migrationLock: `${prefix}migrate`,
  };
}

/** The columns of an event row, in the order toEvent reads them. */
export const eventColumns =
  "`position`, `id`, `domain`, `type`, `key`, `values`, `version`, `operation`, `method`, `claims`, `time`";

/** The columns of an entity row. */
export const entityColumns = "`domain`, `type`, `key`, `values`, `version`";

/** How many positions one markPublished statement carries; a short batch repeats its first position. */
export const publishBatch = 64;

/** The statements of one step of a commit, in order (see runMysqlCommit). */
function step(...statements: string[]): readonly string[] {
  return statements;
}

/**
 * The adapter's statements whose text does not depend on a query's shape, on
 * the tables `t`: what a Get, a commit, a stream read and the outbox send.
 */
export function mysqlStatements(t: MysqlTables) {
  const entity = "`domain` = ? AND `type` = ? AND `key` = ?";
  // A never-written entity gets a row (values NULL, version 0) inside the
  // commit's transaction so there is always a row to lock. An upsert locks
  // the row exclusively even when it exists; SELECT … FOR UPDATE on a
  // missing row would only take gap locks, which two creators can both
  // hold and then deadlock on when each inserts.
  const lockEntity = `INSERT INTO ${t.entities} (\`domain\`, \`type\`, \`key\`, \`values\`, \`version\`)
      VALUES (?, ?, ?, NULL, 0) ON DUPLICATE KEY UPDATE \`version\` = \`version\``;
  // See "positions" in mysql.ts for why this is a counter row and not AUTO_INCREMENT.
  const nextPosition = `UPDATE ${t.position} SET \`last\` = LAST_INSERT_ID(\`last\` + 1) WHERE \`id\` = 1`;
  // The event, at the position just taken and at the version the entity row
  // now holds; its values are the row's unless given (a delete records the
  // state before it), so a Set's JSON goes to the server once.
  const insertEvent = `INSERT INTO ${t.events} (${eventColumns})
      SELECT LAST_INSERT_ID(), ?, \`domain\`, \`type\`, \`key\`, COALESCE(?, \`values\`), \`version\`, ?, ?, ?, CAST(? AS SIGNED)
      FROM ${t.entities} WHERE ${entity}`;
  const selectCommitted = `SELECT LAST_INSERT_ID() AS \`position\`, \`version\` FROM ${t.entities} WHERE ${entity}`;
  return {
    /*
     * A commit is one or two steps, each one round trip: its statements go
     * as one multi-statement text (see runMysqlCommit, which sends large
     * values statement by statement instead). Every value in them is a
     * parameter.
     *
     * At the entity's next version (no expected version), one text: lock the
     * row, write the state at version + 1 (NULL values keep the row as a
     * tombstone, so a deleted entity keeps its delete event's version and a
     * re-created one continues its log), take the next position, insert the
     * event, read position and version back, commit.
     */
    commitAtNext: step(
      "START TRANSACTION",
      lockEntity,
      `UPDATE ${t.entities} SET \`values\` = ?, \`version\` = \`version\` + 1 WHERE ${entity}`,
      nextPosition,
      insertEvent,
      selectCommitted,
      "COMMIT",
    ),
    // At an expected version, two: the row locked and its version read (and
    // checked by the adapter), then the same writes at the version it names.
    lockForCommit: step(
      "START TRANSACTION",
      lockEntity,
      `SELECT \`version\` FROM ${t.entities} WHERE ${entity} FOR UPDATE`,
    ),
    writeAndCommit: step(
      `UPDATE ${t.entities} SET \`values\` = ?, \`version\` = ? WHERE ${entity}`,
      nextPosition,
      insertEvent,
      selectCommitted,
      "COMMIT",
    ),
    selectVersion: `SELECT \`version\` FROM ${t.entities} WHERE ${entity}`,
    // What the fence saw: the version of the entity's latest event.
    selectLogVersion: `SELECT COALESCE(MAX(\`version\`), 0) AS \`version\` FROM ${t.events} WHERE ${entity}`,
    selectEntity: `SELECT ${entityColumns} FROM ${t.entities} WHERE ${entity} AND \`values\` IS NOT NULL`,
    selectEvent: `SELECT ${eventColumns} FROM ${t.events} WHERE \`id\` = ? AND ${entity}`,
    selectEventsAfter: `SELECT ${eventColumns} FROM ${t.events} WHERE \`position\` > ? ORDER BY \`position\` LIMIT ?`,
    // MAX of the clustered key is one index dive, not a scan.
    selectLastPosition: `SELECT COALESCE(MAX(\`position\`), 0) AS \`last\` FROM ${t.events}`,
    selectUnpublished: `SELECT ${eventColumns} FROM ${t.events}
      WHERE \`published\` = 0 AND \`time\` <= CAST(? AS SIGNED) ORDER BY \`position\` LIMIT ?`,
    markPublished: `UPDATE ${t.events} SET \`published\` = 1
      WHERE \`published\` = 0 AND \`position\` IN (${Array(publishBatch).fill("?").join(", ")})`,
  };
}

// Keys must compare exactly: binary, and NO PAD so "a" and "a " stay two keys
// (utf8mb4_bin pads). The first collation the server knows wins.
const keyCollations = ["utf8mb4_nopad_bin", "utf8mb4_0900_bin", "utf8mb4_bin"];

async function keyCollation(conn: PoolConnection): Promise<string> {
  const [rows] = await conn.execute<RowDataPacket[]>(
    "SELECT `COLLATION_NAME` AS name FROM information_schema.COLLATIONS WHERE `COLLATION_NAME` IN (?, ?, ?)",
    keyCollations,
  );
  const known = new Set(rows.map((row) => row.name as string));
  return keyCollations.find((name) => known.has(name)) ?? "utf8mb4_bin";
}

const table = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin";

// Step n brings the schema from version n - 1 to n. Every statement is
// idempotent, so a step cut short by a crash is simply run again.
const migrations: ((t: MysqlTables, collation: string) => string[])[] = [
  (t, c) => [
    `CREATE TABLE IF NOT EXISTS ${t.entities} (
      \`domain\` VARCHAR(255) COLLATE ${c} NOT NULL,
      \`type\` VARCHAR(255) COLLATE ${c} NOT NULL,
      \`key\` VARCHAR(255) COLLATE ${c} NOT NULL,
      \`values\` JSON NULL,
      \`version\` BIGINT UNSIGNED NOT NULL,
      PRIMARY KEY (\`domain\`, \`type\`, \`key\`)
    ) ${table}`,
    // position is the clustered key, so resuming a stream is a range scan;
    // the unique version index is the second fence against racing writers.
    `CREATE TABLE IF NOT EXISTS ${t.events} (
      \`position\` BIGINT UNSIGNED NOT NULL,
      \`id\` VARCHAR(255) COLLATE ${c} NOT NULL,
      \`domain\` VARCHAR(255) COLLATE ${c} NOT NULL,
      \`type\` VARCHAR(255) COLLATE ${c} NOT NULL,
      \`key\` VARCHAR(255) COLLATE ${c} NOT NULL,
      \`values\` JSON NOT NULL,
      \`version\` BIGINT UNSIGNED NOT NULL,
      \`operation\` VARCHAR(16) NOT NULL,
      \`method\` VARCHAR(255) NOT NULL,
      \`claims\` JSON NOT NULL,
      \`time\` BIGINT NOT NULL,
      \`published\` BOOLEAN NOT NULL DEFAULT FALSE,
      PRIMARY KEY (\`position\`),
      UNIQUE KEY \`events_id\` (\`id\`),
      UNIQUE KEY \`events_entity_version\` (\`domain\`, \`type\`, \`key\`, \`version\`),
      KEY \`events_entity_time\` (\`domain\`, \`type\`, \`key\`, \`time\`),
      KEY \`events_type_time\` (\`domain\`, \`type\`, \`time\`),
      -- InnoDB appends the primary key, so this is (domain, type, position):
      -- a type's events in position order, LIMIT without a sort.
      KEY \`events_type\` (\`domain\`, \`type\`),
      KEY \`events_unpublished\` (\`published\`, \`position\`)
    ) ${table}`,
    `CREATE TABLE IF NOT EXISTS ${t.position} (
      \`id\` TINYINT UNSIGNED NOT NULL,
      \`last\` BIGINT UNSIGNED NOT NULL,
      PRIMARY KEY (\`id\`)
    ) ${table}`,
    `INSERT IGNORE INTO ${t.position} (\`id\`, \`last\`) VALUES (1, 0)`,
  ],
];

/** The schema version this code writes. */
export const schemaVersion = migrations.length;

// Long enough for another gateway's migration, short enough to fail a start.
const lockWaitSeconds = 30;

async function applyMigrations(conn: PoolConnection, t: MysqlTables): Promise<void> {
  await conn.query(`CREATE TABLE IF NOT EXISTS ${t.schema} (
    \`version\` INT UNSIGNED NOT NULL,
    \`applied_at\` TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (\`version\`)
  ) ${table}`);
  const [rows] = await conn.query<RowDataPacket[]>(`SELECT COALESCE(MAX(\`version\`), 0) AS version FROM ${t.schema}`);
  const current = Number(rows[0]?.version ?? 0);
  if (current > schemaVersion) {
    throw new Error(`mysql: the tables are at schema version ${current}, newer than this gateway's ${schemaVersion}`);
  }
  if (current === schemaVersion) {
    return;
  }
  const collation = await keyCollation(conn);
  for (let version = current + 1; version <= schemaVersion; version++) {
    for (const sql of migrations[version - 1]?.(t, collation) ?? []) {
      // DDL commits implicitly in MySQL, so steps are not transactions: the
      // migration lock and idempotent statements make them safe instead.
      await conn.query(sql);
    }
    await conn.execute(`INSERT INTO ${t.schema} (\`version\`) VALUES (?)`, [version]);
  }
}

/**
 * Creates or upgrades the tables. Gateways starting together take turns
 * through a server-wide named lock; a late one finds the work done.
 */
export async function migrate(pool: Pool, t: MysqlTables): Promise<void> {
  const conn = await pool.getConnection();
  let reusable = true;
  try {
    const [rows] = await conn.execute<RowDataPacket[]>("SELECT GET_LOCK(?, ?) AS acquired", [
      t.migrationLock,
      lockWaitSeconds,
    ]);
    if (Number(rows[0]?.acquired) !== 1) {
      throw new ProviderUnavailableError("mysql", "timed out waiting for another gateway's schema migration");
    }
    try {
      await applyMigrations(conn, t);
    } finally {
      // A pooled session that kept the lock would block every later start.
      await conn.execute("SELECT RELEASE_LOCK(?)", [t.migrationLock]).catch(() => {
        reusable = false;
      });
    }
  } catch (error) {
    reusable = false;
    throw error;
  } finally {
    if (reusable) conn.release();
    else conn.destroy();
  }
}
