/**
 * PostgreSQL storage: entities, their event log and the outbox in tables of
 * one schema, shared by every gateway of an install. Values live in JSONB
 * columns, which return equal values with object keys in their own order.
 *
 * @example
 * const storage = await createPostgresStorage({ addr: "127.0.0.1:5432", user: "postgres", password: "", database: "test" });
 * const event = await storage.commit({ event, expectedVersion: 0, state: event.values });
 */
import { setTimeout as sleep } from "node:timers/promises";
import { Pool, type PoolClient } from "pg";
import { ProviderClosedError, ValueTooLargeError } from "../errors.js";
import type { TlsFileOptions } from "../options.js";
import type { Commit, EntityRecord, EntityRef, EventOperation, EventRecord, JsonObject, Storage } from "../types.js";
import { checkCommit, nextVersion } from "./commit-check.js";
import { postgresConfig } from "./postgres-config.js";
import { type ErrorContext, isFatal, isRetryable, isVersionFence, postgresError } from "./postgres-errors.js";
import { migrate, type PostgresTables, postgresStatements, postgresTables } from "./postgres-schema.js";
import { entitySearch, eventSearch } from "./postgres-search.js";
import { pageParams } from "./sqlite-search.js";

/** TLS settings of {@link PostgresStorageOptions.tls}; files are read once, at start-up. */
export type PostgresTlsOptions = TlsFileOptions;

/**
 * Options of {@link createPostgresStorage}. A storage spec carries the same keys:
 * `{"name":"postgres","addr":"127.0.0.1:5432","user":"postgres","password":"","database":"test"}`.
 * Every key is optional except the database, given by `database` or by the path of `url`.
 */
export interface PostgresStorageOptions {
  /** `postgres://user:password@host:port/database` (or `postgresql://`), percent-encoded; any key below overrides the part it names. No query string. */
  url?: string;
  /** `host:port` (`[v6]:port` for IPv6); the port defaults to 5432. Default `127.0.0.1:5432`. */
  addr?: string;
  /** Default `postgres`. */
  user?: string;
  /** Default empty. PGPASSWORD and ~/.pgpass are never read. */
  password?: string;
  /** The database holding the tables; it must exist. */
  database?: string;
  /** The schema holding the tables, created when missing: 1-63 of [A-Za-z0-9_], not starting with a digit or `pg_`. Default `public`. */
  schema?: string;
  /** Prepended to every table name so installs can share a schema: 1-32 of [A-Za-z0-9_]. Default `stategate_`. */
  tablePrefix?: string;
  /** Most connections the pool opens. Default 10. */
  poolSize?: number;
  /** How long opening a connection, or waiting for a free one, may take before the call fails as unavailable. Default 10000. */
  connectTimeoutMs?: number;
  /**
   * How long one statement may run (the server's statement_timeout) before the call fails with
   * ProviderTimeoutError (DEADLINE_EXCEEDED at the gateway); a session idle this long inside a
   * transaction is ended by the server. Default 30000.
   */
  statementTimeoutMs?: number;
  /** `true`: TLS, with the server's certificate checked against Node's CAs and the host name. Default off. */
  tls?: boolean | PostgresTlsOptions;
}

const provider = "postgres";
// PostgreSQL's own ceiling for one JSONB value: offsets inside it have 28 bits.
const jsonbLimit = 0x0fffffff;
const retryAttempts = 4;

// BIGINT columns arrive as exact decimal text (see postgres-config.ts), JSONB parsed.
interface EntityRow {
  domain: string;
  type: string;
  key: string;
  values: JsonObject;
  version: string;
}

interface EventRow {
  position: string;
  id: string;
  domain: string;
  type: string;
  key: string;
  values: JsonObject;
  version: string;
  operation: string;
  method: string;
  claims: JsonObject;
  time: string;
}

function toEntity(row: EntityRow): EntityRecord {
  const { domain, type, key, values } = row;
  return { domain, type, key, values, version: Number(row.version) };
}

function toEvent(row: EventRow): EventRecord {
  return {
    id: row.id,
    domain: row.domain,
    type: row.type,
    key: row.key,
    values: row.values,
    version: Number(row.version),
    position: Number(row.position),
    operation: row.operation as EventOperation,
    method: row.method,
    claims: row.claims,
    time: BigInt(row.time),
  };
}

async function rollback(client: PoolClient): Promise<boolean> {
  try {
    await client.query("ROLLBACK");
    return true;
  } catch {
    return false;
  }
}

/**
 * Connects, creates or upgrades the tables, and returns the storage. Throws
 * ProviderConfigError for bad options and ProviderUnavailableError when the
 * server cannot be reached.
 */
export async function createPostgresStorage(options: PostgresStorageOptions): Promise<Storage> {
  const config = postgresConfig(options);
  const pool = new Pool(config.pool);
  // An idle connection the server closes (a restart, failover, pg_terminate_backend)
  // is dropped by the pool, which then emits "error": without a listener Node
  // would end the gateway. The next call opens a new connection, or fails as
  // unavailable, so there is nothing to do here.
  pool.on("error", () => {});
  // A connection in use emits "error" too when it dies between two statements
  // of a transaction; the statement that follows fails and reports it.
  pool.on("connect", (client) => client.on("error", () => {}));
  const tables = postgresTables(config.schema, config.tablePrefix);
  try {
    await migrate(pool, tables);
  } catch (error) {
    await pool.end().catch(() => {});
    throw postgresError(error);
  }
  return postgresStorage(pool, tables);
}

function postgresStorage(pool: Pool, tables: PostgresTables): Storage {
  const sql = postgresStatements(tables);
  let closed = false;

  // Every method runs through here: refuse after close, map driver errors once.
  async function run<R>(body: () => Promise<R>, context?: () => ErrorContext): Promise<R> {
    if (closed) {
      throw new ProviderClosedError(provider);
    }
    try {
      return await body();
    } catch (error) {
      throw postgresError(error, context?.());
    }
  }

  async function select<T extends object>(text: string, params: unknown[]): Promise<T[]> {
    return (await pool.query<T & Record<string, unknown>>(text, params)).rows;
  }

  async function version({ domain, type, key }: EntityRef): Promise<number> {
    const [row] = await select<{ version: string }>(sql.selectVersion, [domain, type, key]);
    return row === undefined ? 0 : Number(row.version);
  }

  /*
   * Positions. A sequence (or IDENTITY) hands out its value when the insert
   * runs, not when the transaction commits, so under concurrency event 11
   * can commit while event 10 is still in flight; a reader resuming after 11
   * would then never see 10. Instead every commit takes the next number from
   * a one-row counter, UPDATE … SET last = last + 1 RETURNING last, as its
   * last statement before COMMIT. The row lock is held until COMMIT (and the
   * server makes a commit visible before it releases the locks), so a second
   * writer gets 11 only after 10 is visible: positions become visible in
   * exactly the order they were given out, and a rolled-back commit returns
   * its number. The cost is that commits serialize for that final stretch
   * (one statement and the COMMIT).
   *
   * Versions. INSERT … ON CONFLICT DO NOTHING makes sure the entity has a
   * row, SELECT … FOR UPDATE locks it and reads its version: concurrent
   * commits of one entity queue on that lock, and each sees the version the
   * one before it committed. The UNIQUE (domain, type, key, version) index
   * of the events table is the second fence. Locks are always taken in the
   * same order (entity, then counter), so commits cannot deadlock on them.
   */
  /**
   * A pooled connection inside a new transaction. A connection the server
   * ended while it sat idle in the pool (a restart, pg_terminate_backend) can
   * be handed out before its socket reports the end: BEGIN then fails having
   * written nothing, so another connection is tried, up to one more than the
   * pool holds.
   */
  async function begin(): Promise<PoolClient> {
    for (let attempt = 0; ; attempt++) {
      const client = await pool.connect();
      try {
        // Explicit, so a server-wide default of SERIALIZABLE cannot change the locking below.
        await client.query("BEGIN ISOLATION LEVEL READ COMMITTED");
        return client;
      } catch (error) {
        client.release(true);
        if (!isFatal(error) || attempt >= (pool.options.max ?? 10)) throw error;
      }
    }
  }

  async function apply(commit: Commit, state: string | null, values: string, claims: string): Promise<EventRecord> {
    const { event, expectedVersion } = commit;
    const ref = [event.domain, event.type, event.key];
    const client = await begin();
    let reusable = true;
    try {
      await client.query(sql.lockEntity, ref);
      const { rows } = await client.query<{ version: string }>(sql.selectVersionForUpdate, ref);
      const version = nextVersion(commit, Number(rows[0]?.version ?? 0));
      await client.query(sql.writeEntity, [...ref, state, version]);
      const appended = await client.query<{ position: string }>(sql.appendEvent, [
        event.id,
        ...ref,
        values,
        version,
        event.operation,
        event.method,
        claims,
        event.time.toString(),
      ]);
      const position = Number(appended.rows[0]?.position);
      if (!Number.isSafeInteger(position)) {
        throw new Error("postgres: the position counter row is missing");
      }
      await client.query("COMMIT");
      // Parsed back so the caller sees exactly what a later read returns.
      return { ...event, version, values: JSON.parse(values), claims: JSON.parse(claims), position };
    } catch (error) {
      reusable = !isFatal(error) && (await rollback(client));
      if (isVersionFence(error)) {
        const [row] = await select<{ version: string }>(sql.selectLogVersion, ref);
        const actual = Number(row?.version ?? 0);
        // A commit that expected nothing met a racing writer despite the row lock: as if it had expected what it read.
        throw postgresError(error, { conflict: { expected: expectedVersion ?? actual - 1, actual } });
      }
      throw error;
    } finally {
      client.release(!reusable);
    }
  }

  return {
    name: provider,
    commit(commit) {
      let bytes = 0;
      return run(
        async () => {
          checkCommit(commit);
          const values = JSON.stringify(commit.event.values);
          const claims = JSON.stringify(commit.event.claims);
          // A Set's state is its event's values: the same text, made once.
          const state =
            commit.state === null ? null : commit.state === commit.event.values ? values : JSON.stringify(commit.state);
          // Refused here, before a value the server cannot store crosses the network.
          bytes = Math.max(Buffer.byteLength(values), Buffer.byteLength(claims), Buffer.byteLength(state ?? ""));
          if (bytes > jsonbLimit) {
            throw new ValueTooLargeError(jsonbLimit, bytes);
          }
          for (let attempt = 1; ; attempt++) {
            try {
              return await apply(commit, state, values, claims);
            } catch (error) {
              // The server rolled the whole transaction back: running it again
              // re-checks the version, so a retry cannot apply a stale write.
              if (!isRetryable(error) || attempt === retryAttempts) throw error;
              await sleep(attempt * 5 * Math.random());
            }
          }
        },
        () => ({ size: { limitBytes: jsonbLimit, actualBytes: bytes } }),
      );
    },
    getEntity: ({ domain, type, key }) =>
      run(async () => {
        const [row] = await select<EntityRow>(sql.selectEntity, [domain, type, key]);
        return row === undefined ? undefined : toEntity(row);
      }),
    getVersion: (ref) => run(() => version(ref)),
    searchEntities: (query) =>
      run(async () => {
        const { sql: text, params } = entitySearch(tables, query);
        return (await select<EntityRow>(text, params)).map(toEntity);
      }),
    getEvent: ({ domain, type, key, id }) =>
      run(async () => {
        const [row] = await select<EventRow>(sql.selectEvent, [domain, type, key, id]);
        return row === undefined ? undefined : toEvent(row);
      }),
    searchEvents: (query) =>
      run(async () => {
        const { sql: text, params } = eventSearch(tables, query);
        return (await select<EventRow>(text, params)).map(toEvent);
      }),
    eventsAfter: (position, limit) =>
      run(async () => {
        if (!Number.isSafeInteger(position)) {
          throw new RangeError(`position must be an integer, got ${position}`);
        }
        const [pageSize] = pageParams(limit, 0);
        return (await select<EventRow>(sql.selectEventsAfter, [position, pageSize])).map(toEvent);
      }),
    lastPosition: () =>
      run(async () => {
        const [row] = await select<{ last: string }>(sql.selectLastPosition, []);
        return Number(row?.last ?? 0);
      }),
    unpublishedEvents: (before, limit) =>
      run(async () => {
        if (typeof before !== "bigint") {
          throw new RangeError("before must be a bigint of nanoseconds");
        }
        const [pageSize] = pageParams(limit, 0);
        return (await select<EventRow>(sql.selectUnpublished, [before.toString(), pageSize])).map(toEvent);
      }),
    markPublished: (positions) =>
      run(async () => {
        for (const position of positions) {
          if (!Number.isSafeInteger(position)) {
            throw new RangeError(`positions must be integers, got ${position}`);
          }
        }
        if (positions.length > 0) {
          await pool.query(sql.markPublished, [positions]);
        }
      }),
    ping: () =>
      run(async () => {
        await pool.query("SELECT 1");
      }),
    async close() {
      // Idempotent: shutdown paths often close twice, and that is not a bug worth failing on.
      if (!closed) {
        closed = true;
        await pool.end();
      }
    },
  };
}
