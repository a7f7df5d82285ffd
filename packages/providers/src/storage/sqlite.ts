/**
 * The embedded storage: one SQLite file, so a gateway runs with nothing
 * installed.
 *
 * @example
 * const storage = await createSqliteStorage({ path: "./data/stategate.db" });
 * const event = await storage.commit({ event, expectedVersion: 0, state: event.values });
 */
import type { Stats } from "node:fs";
import { accessSync, constants, mkdirSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import Database from "better-sqlite3";
import { ProviderClosedError } from "../errors.js";
import type {
  Commit,
  EntityQuery,
  EntityRecord,
  EntityRef,
  EventOperation,
  EventQuery,
  EventRecord,
  JsonObject,
  Storage,
} from "../types.js";
import { checkCommit, nextVersion } from "./commit-check.js";
import { createStatementCache, filterPart, orderPart, pageParams } from "./sqlite-search.js";

/** Options of {@link createSqliteStorage}. */
export interface SqliteStorageOptions {
  /** The database file; its parent directories are created. ":memory:" keeps everything in memory. */
  path: string;
}

// Bump together with a migration step when the schema changes.
const schemaVersion = 1;

// An entity's versions are unique in its log, and keep rising across deletes:
// the latest event's version is the entity's version, live or deleted.
const schema = `
CREATE TABLE IF NOT EXISTS entities (
  domain TEXT NOT NULL,
  type TEXT NOT NULL,
  key TEXT NOT NULL,
  "values" TEXT NOT NULL,
  version INTEGER NOT NULL,
  PRIMARY KEY (domain, type, key)
);
CREATE TABLE IF NOT EXISTS events (
  position INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  domain TEXT NOT NULL,
  type TEXT NOT NULL,
  key TEXT NOT NULL,
  "values" TEXT NOT NULL,
  version INTEGER NOT NULL,
  operation TEXT NOT NULL,
  method TEXT NOT NULL,
  claims TEXT NOT NULL,
  time INTEGER NOT NULL,
  published INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS events_entity_version ON events (domain, type, key, version);
CREATE INDEX IF NOT EXISTS events_entity_time ON events (domain, type, key, time);
CREATE INDEX IF NOT EXISTS events_type_time ON events (domain, type, time);
CREATE INDEX IF NOT EXISTS events_unpublished ON events (position) WHERE published = 0;
`;

const eventColumns = `position, id, domain, type, key, "values", version, operation, method, claims, time`;

interface EntityRow {
  domain: string;
  type: string;
  key: string;
  values: string;
  version: number;
}

// Read with safeIntegers so `time` keeps every nanosecond digit.
interface EventRow {
  position: bigint;
  id: string;
  domain: string;
  type: string;
  key: string;
  values: string;
  version: bigint;
  operation: string;
  method: string;
  claims: string;
  time: bigint;
}

function toEntity(row: EntityRow): EntityRecord {
  const { domain, type, key, version } = row;
  return { domain, type, key, values: JSON.parse(row.values) as JsonObject, version };
}

function toEvent(row: EventRow): EventRecord {
  return {
    id: row.id,
    domain: row.domain,
    type: row.type,
    key: row.key,
    values: JSON.parse(row.values) as JsonObject,
    version: Number(row.version),
    position: Number(row.position),
    operation: row.operation as EventOperation,
    method: row.method,
    claims: JSON.parse(row.claims) as JsonObject,
    time: row.time,
  };
}

/**
 * Creates `dir` and its missing parents one level at a time. Node 20's
 * recursive mkdir spins forever under /proc; this fails at the first level
 * that cannot be made, naming it.
 */
function makeDirectories(dir: string): void {
  const missing: string[] = [];
  for (let at = dir; ; at = dirname(at)) {
    let isDirectory: boolean | undefined;
    try {
      isDirectory = statSync(at).isDirectory();
    } catch {
      // missing: create it after its parent
    }
    if (isDirectory === false) throw new Error(`${at} exists and is not a directory`);
    if (isDirectory) break;
    missing.unshift(at);
    if (dirname(at) === at) break;
  }
  for (const at of missing) mkdirSync(at);
}

/** The stats of `path`, or undefined when nothing is there. */
function statOrMissing(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/** Throws, naming `what`, unless this process may read and write `path`. */
function mustBeWritable(path: string, what: string): void {
  try {
    accessSync(path, constants.R_OK | constants.W_OK);
  } catch {
    throw new Error(`${what} ${path} is not writable by this process`);
  }
}

/**
 * Checks, creating nothing, that {@link createSqliteStorage} would open `path`:
 * an existing file must be a SQLite database this process can write, in a
 * directory it can write (WAL mode keeps its -wal and -shm files beside it);
 * for a file not made yet, its directory must exist and be writable. A missing
 * directory is an error, though start-up would create it: a mistyped path
 * would otherwise start on a new, empty database.
 */
export async function checkSqliteStorage({ path }: SqliteStorageOptions): Promise<void> {
  if (path === ":memory:") return;
  const file = resolve(path);
  const dir = dirname(file);
  const dirStats = statOrMissing(dir);
  if (!dirStats) throw new Error(`directory ${dir} does not exist (start-up would create it, and an empty database)`);
  if (!dirStats.isDirectory()) throw new Error(`${dir} is not a directory`);
  mustBeWritable(dir, "directory");
  const fileStats = statOrMissing(file);
  if (!fileStats) return;
  if (!fileStats.isFile()) throw new Error(`${file} is not a file`);
  mustBeWritable(file, "database file");
  // Opened for writing but only read: SQLite never creates the file (fileMustExist), and
  // the last connection to close removes the -wal and -shm files it made. A read-only
  // connection would leave them behind on a WAL database.
  const db = new Database(file, { fileMustExist: true, timeout: 5000 });
  try {
    db.prepare("SELECT count(*) FROM sqlite_schema").get();
  } catch (err) {
    throw new Error(`${file}: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    db.close();
  }
}

/** Opens (creating if needed) a SQLite file as stategate storage. */
export async function createSqliteStorage({ path }: SqliteStorageOptions): Promise<Storage> {
  if (path !== ":memory:") {
    makeDirectories(dirname(resolve(path)));
  }
  const db = new Database(path, { timeout: 5000 });
  db.pragma("journal_mode = WAL");
  // FULL: a committed mutation survives power loss, not only a process kill.
  db.pragma("synchronous = FULL");
  db.exec(schema);
  db.pragma(`user_version = ${schemaVersion}`);

  const selectVersion = db.prepare<[string, string, string], { version: number | null }>(
    "SELECT max(version) AS version FROM events WHERE domain = ? AND type = ? AND key = ?",
  );
  const selectEntity = db.prepare<[string, string, string], EntityRow>(
    `SELECT domain, type, key, "values", version FROM entities WHERE domain = ? AND type = ? AND key = ?`,
  );
  const upsertEntity = db.prepare<[string, string, string, string, number]>(
    `INSERT INTO entities (domain, type, key, "values", version) VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (domain, type, key) DO UPDATE SET "values" = excluded."values", version = excluded.version`,
  );
  const deleteEntity = db.prepare<[string, string, string]>(
    "DELETE FROM entities WHERE domain = ? AND type = ? AND key = ?",
  );
  const insertEvent = db.prepare(
    `INSERT INTO events (id, domain, type, key, "values", version, operation, method, claims, time)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const selectEvent = db
    .prepare<[string, string, string, string], EventRow>(
      `SELECT ${eventColumns} FROM events WHERE id = ? AND domain = ? AND type = ? AND key = ?`,
    )
    .safeIntegers(true);
  const selectEventsAfter = db
    .prepare<[number, number], EventRow>(
      `SELECT ${eventColumns} FROM events WHERE position > ? ORDER BY position LIMIT ?`,
    )
    .safeIntegers(true);
  const selectUnpublished = db
    .prepare<[bigint, number], EventRow>(
      `SELECT ${eventColumns} FROM events WHERE published = 0 AND time <= ? ORDER BY position LIMIT ?`,
    )
    .safeIntegers(true);
  const updatePublished = db.prepare<[number]>("UPDATE events SET published = 1 WHERE position = ?");
  const markAll = db.transaction((positions: number[]) => {
    for (const position of positions) updatePublished.run(position);
  });
  const selectLastPosition = db.prepare<[], { last: number | null }>("SELECT max(position) AS last FROM events");
  const selectOne = db.prepare("SELECT 1");
  const entityStatement = createStatementCache((sql) => db.prepare<unknown[], EntityRow>(sql));
  const eventStatement = createStatementCache((sql) => db.prepare<unknown[], EventRow>(sql).safeIntegers(true));

  const applyCommit = db.transaction((commit: Commit): EventRecord => {
    const { event, state } = commit;
    const version = nextVersion(commit, selectVersion.get(event.domain, event.type, event.key)?.version ?? 0);
    const values = JSON.stringify(event.values);
    if (state === null) {
      deleteEntity.run(event.domain, event.type, event.key);
    } else {
      // A Set's state is its event's values: the same text, made once.
      upsertEntity.run(
        event.domain,
        event.type,
        event.key,
        state === event.values ? values : JSON.stringify(state),
        version,
      );
    }
    const claims = JSON.stringify(event.claims);
    const { lastInsertRowid } = insertEvent.run(
      event.id,
      event.domain,
      event.type,
      event.key,
      values,
      version,
      event.operation,
      event.method,
      claims,
      event.time,
    );
    // Parsed back so the caller sees exactly what a later read returns.
    return {
      ...event,
      version,
      values: JSON.parse(values) as JsonObject,
      claims: JSON.parse(claims) as JsonObject,
      position: Number(lastInsertRowid),
    };
  });

  let closed = false;
  const open = (): void => {
    if (closed) {
      throw new ProviderClosedError("sqlite");
    }
  };

  return {
    name: "sqlite",
    async commit(commit) {
      open();
      checkCommit(commit);
      // IMMEDIATE takes the write lock before the version is read, so another
      // process cannot slip a write in between the check and the insert.
      return applyCommit.immediate(commit);
    },
    async getEntity({ domain, type, key }: EntityRef) {
      open();
      const row = selectEntity.get(domain, type, key);
      return row === undefined ? undefined : toEntity(row);
    },
    async getVersion({ domain, type, key }: EntityRef) {
      open();
      return selectVersion.get(domain, type, key)?.version ?? 0;
    },
    async searchEntities(query: EntityQuery) {
      open();
      const where = ["domain = ?", "type = ?"];
      const params: unknown[] = [query.domain, query.type];
      for (const term of query.filter) {
        const part = filterPart(term, `"values"`);
        where.push(part.sql);
        params.push(...part.params);
      }
      const order = orderPart(query.sort, `"values"`, "key");
      const sql = `SELECT domain, type, key, "values", version FROM entities
        WHERE ${where.join(" AND ")} ${order.sql} LIMIT ? OFFSET ?`;
      const rows = entityStatement(sql).all(...params, ...order.params, ...pageParams(query.limit, query.offset));
      return rows.map(toEntity);
    },
    async getEvent({ domain, type, key, id }) {
      open();
      const row = selectEvent.get(id, domain, type, key);
      return row === undefined ? undefined : toEvent(row);
    },
    async searchEvents(query: EventQuery) {
      open();
      const where = ["domain = ?", "type = ?"];
      const params: unknown[] = [query.domain, query.type];
      if (query.key !== undefined) {
        where.push("key = ?");
        params.push(query.key);
      }
      if (query.minTime !== undefined) {
        where.push("time >= ?");
        params.push(query.minTime);
      }
      if (query.maxTime !== undefined) {
        where.push("time <= ?");
        params.push(query.maxTime);
      }
      for (const term of query.filter) {
        const part = filterPart(term, `"values"`);
        where.push(part.sql);
        params.push(...part.params);
      }
      const order = orderPart(query.sort, `"values"`, "position");
      const sql = `SELECT ${eventColumns} FROM events
        WHERE ${where.join(" AND ")} ${order.sql} LIMIT ? OFFSET ?`;
      const rows = eventStatement(sql).all(...params, ...order.params, ...pageParams(query.limit, query.offset));
      return rows.map(toEvent);
    },
    async eventsAfter(position, limit) {
      open();
      const [pageSize] = pageParams(limit, 0);
      return selectEventsAfter.all(position, pageSize).map(toEvent);
    },
    async lastPosition() {
      open();
      return selectLastPosition.get()?.last ?? 0;
    },
    async unpublishedEvents(before, limit) {
      open();
      const [pageSize] = pageParams(limit, 0);
      return selectUnpublished.all(before, pageSize).map(toEvent);
    },
    async markPublished(positions) {
      open();
      if (positions.length > 0) markAll(positions);
    },
    async ping() {
      open();
      selectOne.get();
    },
    async close() {
      // Idempotent: shutdown paths often close twice, and that is not a bug worth failing on.
      if (!closed) {
        closed = true;
        db.close();
      }
    },
  };
}
