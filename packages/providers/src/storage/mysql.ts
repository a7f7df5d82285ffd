/**
 * MySQL and MariaDB storage: entities, their event log and the outbox in
 * tables of one database, shared by every gateway of an install. Values live
 * in JSON columns; MariaDB keeps the text as written, MySQL 8 a binary form
 * that returns equal values with object keys in its own order.
 *
 * @example
 * const storage = await createMysqlStorage({ addr: "127.0.0.1:3306", user: "root", password: "", database: "test" });
 * const event = await storage.commit({ event, expectedVersion: 0, state: event.values });
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { Pool, PoolConnection, RowDataPacket } from "mysql2/promise";
import { ProviderClosedError, ValueTooLargeError } from "../errors.js";
import type { TlsFileOptions } from "../options.js";
import type { Commit, EntityRecord, EntityRef, EventOperation, EventRecord, JsonObject, Storage } from "../types.js";
import { checkCommit } from "./commit-check.js";
import { createMysqlPool, runMysqlCommit } from "./mysql-commit.js";
import { mysqlConfig } from "./mysql-config.js";
import { type ErrorContext, isDeadlock, isFatal, isVersionFence, mysqlError } from "./mysql-errors.js";
import { type MysqlTables, migrate, mysqlStatements, mysqlTables, publishBatch } from "./mysql-schema.js";
import { entitySearch, eventSearch } from "./mysql-search.js";
import { pageParams } from "./sqlite-search.js";

/** TLS settings of {@link MysqlStorageOptions.tls}; files are read once, at start-up. */
export type MysqlTlsOptions = TlsFileOptions;

/**
 * Options of {@link createMysqlStorage}. A storage spec carries the same keys:
 * `{"name":"mysql","addr":"127.0.0.1:3306","user":"root","password":"","database":"test"}`.
 * Every key is optional except the database, given by `database` or by the path of `url`.
 */
export interface MysqlStorageOptions {
  /** `mysql://user:password@host:port/database`, percent-encoded; any key below overrides the part it names. No query string. */
  url?: string;
  /** `host:port` (`[v6]:port` for IPv6); the port defaults to 3306. Default `127.0.0.1:3306`. */
  addr?: string;
  /** Default `root`. */
  user?: string;
  /** Default empty. */
  password?: string;
  /** The database holding the tables; it must exist. */
  database?: string;
  /** Prepended to every table name so installs can share a database: 1-32 of [A-Za-z0-9_]. Default `stategate_`. */
  tablePrefix?: string;
  /** Most connections the pool opens. Default 10. */
  poolSize?: number;
  /** How long opening one connection may take before the call fails as unavailable. Default 10000. */
  connectTimeoutMs?: number;
  /** `true`: TLS, with the server's certificate checked against Node's CAs and the host name. Default off. */
  tls?: boolean | MysqlTlsOptions;
}

const provider = "mysql";
/** How long eventsAfter waits before each new read of a page with a gap in it. */
const gapRereadsMs = [0, 2, 10, 50];

/** Whether `rows` are the positions right after `position`, one by one. */
function denseFrom(rows: readonly { position: string }[], position: number): boolean {
  for (let i = 0; i < rows.length; i++) {
    if (Number((rows[i] as { position: string }).position) !== position + i + 1) return false;
  }
  return true;
}
// A few KiB cover the non-value parameters of the largest statement.
const packetOverhead = 16 * 1024;
const deadlockAttempts = 4;

interface EntityRow extends RowDataPacket {
  domain: string;
  type: string;
  key: string;
  values: unknown;
  version: string;
}

// BIGINT columns arrive as strings (bigNumberStrings) so `time` keeps every digit.
interface EventRow extends RowDataPacket {
  position: string;
  id: string;
  domain: string;
  type: string;
  key: string;
  values: unknown;
  version: string;
  operation: string;
  method: string;
  claims: unknown;
  time: string;
}

/**
 * Reads a JSON column: text (what the pool asks for), bytes, or a value a
 * driver or server already parsed all give the same object.
 */
export function parseJson(value: unknown): JsonObject {
  if (typeof value === "string") return JSON.parse(value) as JsonObject;
  if (Buffer.isBuffer(value)) return JSON.parse(value.toString("utf8")) as JsonObject;
  return value as JsonObject;
}

function toEntity(row: EntityRow): EntityRecord {
  const { domain, type, key } = row;
  return { domain, type, key, values: parseJson(row.values), version: Number(row.version) };
}

function toEvent(row: EventRow): EventRecord {
  return {
    id: row.id,
    domain: row.domain,
    type: row.type,
    key: row.key,
    values: parseJson(row.values),
    version: Number(row.version),
    position: Number(row.position),
    operation: row.operation as EventOperation,
    method: row.method,
    claims: parseJson(row.claims),
    time: BigInt(row.time),
  };
}

async function rollback(conn: PoolConnection): Promise<boolean> {
  try {
    await conn.rollback();
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
export async function createMysqlStorage(options: MysqlStorageOptions): Promise<Storage> {
  const config = mysqlConfig(options);
  const pool = createMysqlPool(config.pool);
  const tables = mysqlTables(config.tablePrefix);
  let packetLimit: number;
  try {
    await migrate(pool, tables);
    const [rows] = await pool.query<RowDataPacket[]>("SELECT @@max_allowed_packet AS max");
    packetLimit = Number(rows[0]?.max) - packetOverhead;
  } catch (error) {
    await pool.end().catch(() => {});
    throw mysqlError(error);
  }
  return mysqlStorage(pool, tables, packetLimit);
}

function mysqlStorage(pool: Pool, tables: MysqlTables, packetLimit: number): Storage {
  const sql = mysqlStatements(tables);
  let closed = false;

  // Every method runs through here: refuse after close, map driver errors once.
  async function run<R>(body: () => Promise<R>, context?: () => ErrorContext): Promise<R> {
    if (closed) {
      throw new ProviderClosedError(provider);
    }
    try {
      return await body();
    } catch (error) {
      throw mysqlError(error, context?.());
    }
  }

  // Parameters come from our own builders, which bind only scalars.
  async function select<T extends RowDataPacket>(text: string, params: unknown[]): Promise<T[]> {
    const [rows] = await pool.execute<T[]>(text, params as (string | number | null)[]);
    return rows;
  }

  async function version({ domain, type, key }: EntityRef): Promise<number> {
    const [row] = await select<RowDataPacket>(sql.selectVersion, [domain, type, key]);
    return row === undefined ? 0 : Number(row.version);
  }

  /*
   * Positions. An AUTO_INCREMENT is handed out at insert time, so under
   * concurrency event 8 can commit while event 7 is still in flight; a reader
   * resuming after 8 would then never see 7. Instead every commit takes the
   * next number from a one-row counter with UPDATE … LAST_INSERT_ID(last + 1),
   * as its last step before inserting the event: the row lock is held until
   * COMMIT, so positions are committed in exactly the order they were given
   * out, and a rolled-back commit gives its number back: committed positions
   * have no gaps. The cost is that commits serialize for that final stretch
   * (the event insert and the commit itself).
   *
   * Committed in order is not quite seen in order: MariaDB builds a read
   * view by walking its active transactions while others commit, so a view
   * can miss a commit that finished just before a later one it does see
   * (seen under load once a commit became one round trip). eventsAfter
   * therefore reads again when a page has a gap; see there.
   */
  async function apply(commit: Commit, state: string | null, values: string, claims: string): Promise<EventRecord> {
    const { event, expectedVersion } = commit;
    const conn = await pool.getConnection();
    let reusable = true;
    try {
      const { version, position } = await runMysqlCommit(
        conn,
        sql,
        {
          domain: event.domain,
          type: event.type,
          key: event.key,
          ...(expectedVersion === undefined ? {} : { expectedVersion }),
          state,
          id: event.id,
          // A Set's event records its new state: the server copies it from the row.
          values: state === values ? null : values,
          operation: event.operation,
          method: event.method,
          claims,
          time: event.time.toString(),
        },
        packetLimit,
      );
      // Parsed back so the caller sees exactly what a later read returns.
      return { ...event, version, values: JSON.parse(values), claims: JSON.parse(claims), position };
    } catch (error) {
      reusable = !isFatal(error) && (await rollback(conn));
      if (isVersionFence(error)) {
        const [row] = await select<RowDataPacket>(sql.selectLogVersion, [event.domain, event.type, event.key]);
        const actual = Number(row?.version ?? 0);
        // A commit that expected nothing met a racing writer despite the row lock: as if it had expected what it read.
        throw mysqlError(error, { conflict: { expected: expectedVersion ?? actual - 1, actual } });
      }
      throw error;
    } finally {
      if (reusable) conn.release();
      else conn.destroy();
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
          // Refused here, before the server drops the connection over it. A commit
          // this large goes statement by statement (runMysqlCommit): one packet
          // carries the state, another the claims and (but for a Set) the event's values.
          bytes = Math.max(
            Buffer.byteLength(state ?? ""),
            (state === values ? 0 : Buffer.byteLength(values)) + Buffer.byteLength(claims),
          );
          if (bytes > packetLimit) {
            throw new ValueTooLargeError(packetLimit, bytes);
          }
          for (let attempt = 1; ; attempt++) {
            try {
              return await apply(commit, state, values, claims);
            } catch (error) {
              // The server rolled the whole transaction back: running it again
              // re-checks the version, so a retry cannot apply a stale write.
              if (!isDeadlock(error) || attempt === deadlockAttempts) throw error;
              await sleep(attempt * 5 * Math.random());
            }
          }
        },
        () => ({ size: { limitBytes: packetLimit, actualBytes: bytes } }),
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
        const [row] = await select<EventRow>(sql.selectEvent, [id, domain, type, key]);
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
        // Committed positions have no gaps (see "Positions" above), so a gap in
        // a page is a commit this read view missed: read again, and soon it is
        // there. A gap that stays (events deleted by hand) is let through after
        // a few tries, so that a reader never waits on it for ever.
        for (let attempt = 0; ; attempt++) {
          const rows = await select<EventRow>(sql.selectEventsAfter, [position, pageSize]);
          const delay = gapRereadsMs[attempt];
          if (delay === undefined || denseFrom(rows, position)) return rows.map(toEvent);
          if (delay > 0) await sleep(delay);
        }
      }),
    lastPosition: () =>
      run(async () => {
        const [row] = await select<RowDataPacket>(sql.selectLastPosition, []);
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
        // One statement text for every batch size: a short batch repeats a position.
        for (let start = 0; start < positions.length; start += publishBatch) {
          const batch = positions.slice(start, start + publishBatch);
          const padded = [...batch, ...Array(publishBatch - batch.length).fill(batch[0])];
          await pool.execute(sql.markPublished, padded);
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
