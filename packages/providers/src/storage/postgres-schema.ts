/**
 * The tables of one stategate install, their migrations, and the fixed SQL
 * the adapter runs on them. Table names carry a validated schema and prefix
 * so several installs can share a database; nothing else is ever spliced into
 * SQL.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { Pool, PoolClient } from "pg";
import { ProviderUnavailableError } from "../errors.js";

/** Quoted, schema-qualified table names of one install, plus what its migration needs. */
export interface PostgresTables {
  entities: string;
  events: string;
  outbox: string;
  position: string;
  schema: string;
  /** The schema, unquoted (for catalog lookups) and quoted. */
  namespace: { name: string; quoted: string };
  /** Indexes and constraints are named per schema, so they carry the prefix too. */
  prefix: string;
  /** Hashed into the advisory lock key that serializes migrations of this install. */
  migrationLock: string;
}

/** The tables of the install with this (already validated) schema and prefix. */
export function postgresTables(schema: string, prefix: string): PostgresTables {
  const quoted = `"${schema}"`;
  const table = (name: string) => `${quoted}."${prefix}${name}"`;
  return {
    entities: table("entities"),
    events: table("events"),
    outbox: table("outbox"),
    position: table("position"),
    schema: table("schema"),
    namespace: { name: schema, quoted },
    prefix,
    migrationLock: `stategate:${schema}.${prefix}`,
  };
}

/** The name of the UNIQUE (domain, type, key, version) constraint on events: the second version fence. */
export const versionFence = "events_entity_version";

const eventColumnNames = [
  "position",
  "id",
  "domain",
  "type",
  "key",
  "values",
  "version",
  "operation",
  "method",
  "claims",
  "time",
];

/** The columns of an event row, in the order toEvent reads them, optionally qualified by a table alias. */
export function eventColumns(alias?: string): string {
  const from = alias === undefined ? "" : `${alias}.`;
  return eventColumnNames.map((c) => `${from}"${c}"`).join(", ");
}

/** The columns of an entity row. */
export const entityColumns = `"domain", "type", "key", "values", "version"`;

/** The statements whose text does not depend on a query's shape. */
export function postgresStatements(t: PostgresTables) {
  const entity = `"domain" = $1 AND "type" = $2 AND "key" = $3`;
  return {
    // A never-written entity gets a row (values NULL, version 0) inside the
    // commit's transaction so there is always a row to lock: a creator racing
    // it waits in ON CONFLICT until the first one commits or rolls back, then
    // both go through the same SELECT … FOR UPDATE below.
    lockEntity: `INSERT INTO ${t.entities} ("domain", "type", "key", "values", "version")
      VALUES ($1, $2, $3, NULL, 0) ON CONFLICT ("domain", "type", "key") DO NOTHING`,
    selectVersionForUpdate: `SELECT "version" FROM ${t.entities} WHERE ${entity} FOR UPDATE`,
    // NULL values keep the row as a tombstone: a deleted entity keeps its
    // delete event's version, so a re-created one continues its log.
    writeEntity: `UPDATE ${t.entities} SET "values" = $4::jsonb, "version" = $5 WHERE ${entity}`,
    // The last statement of a commit: takes the next position from the
    // counter row (see "positions" in postgres.ts), appends the event and
    // its outbox entry, in one round trip so the counter lock is held only
    // for this statement and the COMMIT.
    appendEvent: `WITH "next" AS (
        UPDATE ${t.position} SET "last" = "last" + 1 WHERE "id" = 1 RETURNING "last"
      ), "event" AS (
        INSERT INTO ${t.events} (${eventColumns()})
        VALUES ((SELECT "last" FROM "next"), $1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9::jsonb, $10::bigint)
        RETURNING "position", "time"
      )
      INSERT INTO ${t.outbox} ("position", "time") SELECT "position", "time" FROM "event" RETURNING "position"`,
    selectVersion: `SELECT "version" FROM ${t.entities} WHERE ${entity}`,
    // What the fence saw: the version of the entity's latest event.
    selectLogVersion: `SELECT COALESCE(MAX("version"), 0) AS "version" FROM ${t.events} WHERE ${entity}`,
    selectEntity: `SELECT ${entityColumns} FROM ${t.entities} WHERE ${entity} AND "values" IS NOT NULL`,
    selectEvent: `SELECT ${eventColumns()} FROM ${t.events} WHERE ${entity} AND "id" = $4`,
    selectEventsAfter: `SELECT ${eventColumns()} FROM ${t.events} WHERE "position" > $1 ORDER BY "position" LIMIT $2`,
    // MAX of the primary key is one backward index step, not a scan.
    selectLastPosition: `SELECT COALESCE(MAX("position"), 0) AS "last" FROM ${t.events}`,
    selectUnpublished: `SELECT ${eventColumns("e")} FROM ${t.outbox} o JOIN ${t.events} e ON e."position" = o."position"
      WHERE o."time" <= $1::bigint ORDER BY o."position" LIMIT $2`,
    markPublished: `DELETE FROM ${t.outbox} WHERE "position" = ANY($1::bigint[])`,
  };
}

// Keys compare and sort as bytes (code point order in UTF-8), whatever the
// database's collation: "a" and "A" or "a " are different keys everywhere.
const name = `text COLLATE "C" NOT NULL`;

// Step n brings the schema from version n - 1 to n. A step runs in the
// migration's transaction (PostgreSQL DDL is transactional), so a step cut
// short by a crash leaves nothing behind; IF NOT EXISTS lets it adopt tables
// an interrupted older tool left.
const migrations: ((t: PostgresTables) => string[])[] = [
  (t) => {
    const p = t.prefix;
    return [
      `CREATE TABLE IF NOT EXISTS ${t.entities} (
        "domain" ${name},
        "type" ${name},
        "key" ${name},
        "values" jsonb NULL,
        "version" bigint NOT NULL,
        CONSTRAINT "${p}entities_pkey" PRIMARY KEY ("domain", "type", "key")
      )`,
      // Insert-only: being published is recorded in the outbox table, so no
      // event row is ever updated (an UPDATE writes a new row version and new
      // entries in every index). The unique version index is the second fence
      // against racing writers.
      `CREATE TABLE IF NOT EXISTS ${t.events} (
        "position" bigint NOT NULL,
        "id" ${name},
        "domain" ${name},
        "type" ${name},
        "key" ${name},
        "values" jsonb NOT NULL,
        "version" bigint NOT NULL,
        "operation" text NOT NULL,
        "method" text NOT NULL,
        "claims" jsonb NOT NULL,
        "time" bigint NOT NULL,
        CONSTRAINT "${p}events_pkey" PRIMARY KEY ("position"),
        CONSTRAINT "${p}events_id" UNIQUE ("id"),
        CONSTRAINT "${p}${versionFence}" UNIQUE ("domain", "type", "key", "version")
      )`,
      `CREATE INDEX IF NOT EXISTS "${p}events_entity_time" ON ${t.events} ("domain", "type", "key", "time")`,
      `CREATE INDEX IF NOT EXISTS "${p}events_type_time" ON ${t.events} ("domain", "type", "time")`,
      // A type's events in position order: LIMIT without a sort.
      `CREATE INDEX IF NOT EXISTS "${p}events_type_position" ON ${t.events} ("domain", "type", "position")`,
      // Events not yet handed to the channel; rows are deleted once they are.
      `CREATE TABLE IF NOT EXISTS ${t.outbox} (
        "position" bigint NOT NULL,
        "time" bigint NOT NULL,
        CONSTRAINT "${p}outbox_pkey" PRIMARY KEY ("position")
      )`,
      `CREATE TABLE IF NOT EXISTS ${t.position} (
        "id" smallint NOT NULL CHECK ("id" = 1),
        "last" bigint NOT NULL,
        CONSTRAINT "${p}position_pkey" PRIMARY KEY ("id")
      )`,
      `INSERT INTO ${t.position} ("id", "last") VALUES (1, 0) ON CONFLICT ("id") DO NOTHING`,
    ];
  },
];

/** The schema version this code writes. */
export const schemaVersion = migrations.length;

// Long enough for another gateway's migration, short enough to fail a start.
const lockWaitMs = 30_000;

// Polled rather than waited for, so no statement outlives statement_timeout.
async function takeMigrationLock(client: PoolClient, t: PostgresTables): Promise<void> {
  const deadline = Date.now() + lockWaitMs;
  for (;;) {
    const { rows } = await client.query<{ acquired: boolean }>(
      "SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0)) AS acquired",
      [t.migrationLock],
    );
    if (rows[0]?.acquired === true) return;
    if (Date.now() > deadline) {
      throw new ProviderUnavailableError("postgres", "timed out waiting for another gateway's schema migration");
    }
    await sleep(50 + 50 * Math.random());
  }
}

async function applyMigrations(client: PoolClient, t: PostgresTables): Promise<void> {
  // DDL only when something is missing: a gateway whose role may read and
  // write but not create starts fine on tables that are already there.
  const { rows: present } = await client.query<{ found: boolean }>("SELECT to_regclass($1) IS NOT NULL AS found", [
    t.schema,
  ]);
  if (present[0]?.found !== true) {
    const { rowCount } = await client.query("SELECT 1 FROM pg_namespace WHERE nspname = $1", [t.namespace.name]);
    if (rowCount === 0) {
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${t.namespace.quoted}`);
    }
    await client.query(`CREATE TABLE IF NOT EXISTS ${t.schema} (
      "version" integer NOT NULL PRIMARY KEY,
      "applied_at" timestamptz NOT NULL DEFAULT now()
    )`);
  }
  const { rows } = await client.query<{ version: number }>(
    `SELECT COALESCE(MAX("version"), 0)::integer AS "version" FROM ${t.schema}`,
  );
  const current = rows[0]?.version ?? 0;
  if (current > schemaVersion) {
    throw new Error(
      `postgres: the tables are at schema version ${current}, newer than this gateway's ${schemaVersion}`,
    );
  }
  for (let version = current + 1; version <= schemaVersion; version++) {
    for (const sql of migrations[version - 1]?.(t) ?? []) {
      await client.query(sql);
    }
    await client.query(`INSERT INTO ${t.schema} ("version") VALUES ($1)`, [version]);
  }
}

/**
 * Creates or upgrades the tables in one transaction. Gateways starting
 * together take turns through a transaction-scoped advisory lock, which the
 * server releases at COMMIT or ROLLBACK, or when the session dies: a pooled
 * connection can never keep it. A late gateway finds the work done.
 */
export async function migrate(pool: Pool, t: PostgresTables): Promise<void> {
  const client = await pool.connect();
  let reusable = true;
  try {
    await client.query("BEGIN");
    await takeMigrationLock(client, t);
    await applyMigrations(client, t);
    await client.query("COMMIT");
  } catch (error) {
    reusable = await client.query("ROLLBACK").then(
      () => true,
      () => false,
    );
    throw error;
  } finally {
    client.release(!reusable);
  }
}
