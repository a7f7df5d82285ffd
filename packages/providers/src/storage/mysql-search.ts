/**
 * SQL for searches over JSON values in MySQL and MariaDB. Paths and values are
 * always bound parameters (JSON_EXTRACT with a bound path): the SQL text
 * depends only on the shape of a query (how many terms, which scalar kinds,
 * sort direction), never on user text.
 */
import type { EntityQuery, EventQuery, FilterTerm, SortSpec } from "../types.js";
import { entityColumns, eventColumns, type MysqlTables } from "./mysql-schema.js";
// MySQL, MariaDB and SQLite share the `$."member"` path syntax and the limits
// on it, so the path builder and page checks are the SQLite adapter's.
import { jsonPath, pageParams, type SqlPart } from "./sqlite-search.js";

// MySQL 8 reports all four; MariaDB only INTEGER and DOUBLE.
const numericTypes = "('INTEGER', 'UNSIGNED INTEGER', 'DOUBLE', 'DECIMAL')";

// MariaDB keeps JSON as text and JSON_EXTRACT returns text, so comparing or
// sorting it directly would compare "100" < "25". Every expression below
// first asks JSON_TYPE, then compares in that type's own terms.
function jsonAt(column: string) {
  const extract = `JSON_EXTRACT(${column}, ?)`;
  return { type: `JSON_TYPE(${extract})`, text: `JSON_UNQUOTE(${extract})` };
}

/**
 * An exact-type equality on the JSON value at a term's path: "1" is not 1,
 * true is not 1, and null matches JSON null only, not a missing member (whose
 * JSON_TYPE is SQL NULL). Strings compare as bytes, because the utf8mb4_bin
 * collation pads: it would find "a " equal to "a".
 */
export function filterPart(term: FilterTerm, column: string): SqlPart {
  const path = jsonPath(term.path);
  const { type, text } = jsonAt(column);
  const { value } = term;
  if (value === null) {
    return { sql: `${type} = 'NULL'`, params: [path] };
  }
  switch (typeof value) {
    case "boolean":
      return { sql: `(${type} = 'BOOLEAN' AND ${text} = ?)`, params: [path, path, value ? "true" : "false"] };
    case "string":
      return {
        sql: `(${type} = 'STRING' AND CAST(${text} AS BINARY) = CAST(? AS BINARY))`,
        params: [path, path, value],
      };
    case "number":
      if (!Number.isFinite(value)) {
        throw new RangeError(`filter value ${value} is not a JSON number`);
      }
      return { sql: `(${type} IN ${numericTypes} AND ${text} + 0e0 = ?)`, params: [path, path, value] };
    default:
      throw new RangeError(`filter value of type ${typeof value} is not a JSON scalar`);
  }
}

/**
 * The ORDER BY clause. A rank puts missing and JSON null first (rank 0) so the
 * direction carries them to the front ascending and the back descending; then
 * numbers compare as doubles and strings as UTF-8 bytes (code point order,
 * like SQLite); the tie-breaker keeps pages stable.
 */
export function orderPart(sort: SortSpec | undefined, column: string, tieBreaker: string): SqlPart {
  if (sort === undefined) {
    return { sql: `ORDER BY ${tieBreaker}`, params: [] };
  }
  const path = jsonPath(sort.path);
  const { type, text } = jsonAt(column);
  const direction = sort.desc ? "DESC" : "ASC";
  const rank = `CASE COALESCE(${type}, 'NULL') WHEN 'NULL' THEN 0 WHEN 'BOOLEAN' THEN 1
    WHEN 'INTEGER' THEN 2 WHEN 'UNSIGNED INTEGER' THEN 2 WHEN 'DOUBLE' THEN 2 WHEN 'DECIMAL' THEN 2
    WHEN 'STRING' THEN 3 ELSE 4 END`;
  const number = `CASE WHEN ${type} IN ${numericTypes} THEN ${text} + 0e0 END`;
  // Booleans have their own rank; as text, false sorts before true.
  const string = `CASE WHEN ${type} IN ('STRING', 'BOOLEAN') THEN CAST(${text} AS BINARY) END`;
  return {
    sql: `ORDER BY ${rank} ${direction}, ${number} ${direction}, ${string} ${direction}, ${tieBreaker}`,
    params: [path, path, path, path, path],
  };
}

function timeParam(time: bigint, name: string): string {
  if (typeof time !== "bigint") {
    throw new RangeError(`${name} must be a bigint of nanoseconds`);
  }
  return time.toString();
}

function filterParts(filter: FilterTerm[], where: string[], params: unknown[]): void {
  for (const term of filter) {
    const part = filterPart(term, "`values`");
    where.push(part.sql);
    params.push(...part.params);
  }
}

/** The SELECT behind searchEntities; live entities only (a tombstone's values are NULL). */
export function entitySearch(t: MysqlTables, query: EntityQuery): SqlPart {
  const where = ["`domain` = ?", "`type` = ?", "`values` IS NOT NULL"];
  const params: unknown[] = [query.domain, query.type];
  filterParts(query.filter, where, params);
  const order = orderPart(query.sort, "`values`", "`key`");
  return {
    sql: `SELECT ${entityColumns} FROM ${t.entities} WHERE ${where.join(" AND ")} ${order.sql} LIMIT ? OFFSET ?`,
    params: [...params, ...order.params, ...pageParams(query.limit, query.offset)],
  };
}

/**
 * The SELECT behind searchEvents. Times are bound as decimal text and cast to
 * BIGINT in SQL: a bigint parameter arrives as a string, and comparing an
 * integer column with a string compares doubles, which loses nanoseconds.
 */
export function eventSearch(t: MysqlTables, query: EventQuery): SqlPart {
  const where = ["`domain` = ?", "`type` = ?"];
  const params: unknown[] = [query.domain, query.type];
  if (query.key !== undefined) {
    where.push("`key` = ?");
    params.push(query.key);
  }
  if (query.minTime !== undefined) {
    where.push("`time` >= CAST(? AS SIGNED)");
    params.push(timeParam(query.minTime, "minTime"));
  }
  if (query.maxTime !== undefined) {
    where.push("`time` <= CAST(? AS SIGNED)");
    params.push(timeParam(query.maxTime, "maxTime"));
  }
  filterParts(query.filter, where, params);
  const order = orderPart(query.sort, "`values`", "`position`");
  return {
    sql: `SELECT ${eventColumns} FROM ${t.events} WHERE ${where.join(" AND ")} ${order.sql} LIMIT ? OFFSET ?`,
    params: [...params, ...order.params, ...pageParams(query.limit, query.offset)],
  };
}
