/**
 * SQL for searches over JSONB values in PostgreSQL. Paths and values are
 * always bound parameters (a path is one text[] parameter): the SQL text
 * depends only on the shape of a query (how many terms, how deep each path,
 * sort direction), never on user text.
 */
import type { EntityQuery, EventQuery, FilterTerm, SortSpec } from "../types.js";
import { entityColumns, eventColumns, type PostgresTables } from "./postgres-schema.js";
// The page checks are the SQLite adapter's, so every backend refuses the same pages.
import { pageParams, type SqlPart } from "./sqlite-search.js";

/** Appends a parameter and returns its placeholder (`$3`). */
function bind(params: unknown[], value: unknown): string {
  params.push(value);
  return `$${params.length}`;
}

function segments(path: readonly string[]): string[] {
  if (!Array.isArray(path) || path.length === 0) {
    throw new RangeError("a JSON path needs at least one segment");
  }
  for (const segment of path) {
    // PostgreSQL text cannot hold NUL; the gateway refuses control characters already.
    if (typeof segment !== "string" || segment.includes("\u0000")) {
      throw new RangeError(`JSON path segment ${JSON.stringify(segment)} is not allowed`);
    }
  }
  return [...path];
}

/**
 * The JSONB value at `path`, or SQL NULL when it is missing. Each segment is
 * read with `->` and a text operand, which looks up object members only (on
 * an array or a scalar it yields NULL), so `["list", "0"]` never indexes an
 * array: the member semantics of SQLite's and MySQL's `$."list"."0"`. (`#>`
 * would read "0" as an array index.)
 */
function jsonAt(column: string, path: readonly string[], params: unknown[]): string {
  const list = segments(path);
  const ref = `${bind(params, list)}::text[]`;
  return `(${column}${list.map((_, i) => ` -> (${ref})[${i + 1}]`).join("")})`;
}

/**
 * An exact-type equality on the JSONB value at a term's path. JSONB equality
 * is type-exact: "1" is not 1, true is not 1, and null matches JSON null
 * only, since a missing member is SQL NULL, which equals nothing. Numbers
 * compare as numerics (41.5 = 41.50), strings by code point.
 */
export function filterPart(term: FilterTerm, column: string, params: unknown[]): string {
  const at = jsonAt(column, term.path, params);
  const { value } = term;
  if (value === null) {
    return `${at} = 'null'::jsonb`;
  }
  switch (typeof value) {
    case "number":
      if (!Number.isFinite(value)) {
        throw new RangeError(`filter value ${value} is not a JSON number`);
      }
      return `${at} = ${bind(params, JSON.stringify(value))}::jsonb`;
    case "boolean":
    case "string":
      return `${at} = ${bind(params, JSON.stringify(value))}::jsonb`;
    default:
      throw new RangeError(`filter value of type ${typeof value} is not a JSON scalar`);
  }
}

/**
 * The ORDER BY clause. JSONB's own order would sort strings by the database's
 * collation and put null between types, so a rank puts missing and JSON null
 * first (rank 0): ascending they lead, descending they trail (the NULLS
 * clauses say the same for the typed keys). Then numbers compare as numerics
 * and strings by code point (COLLATE "C", like SQLite and MySQL); the
 * tie-breaker keeps pages stable.
 */
export function orderPart(sort: SortSpec | undefined, column: string, tieBreaker: string, params: unknown[]): string {
  if (sort === undefined) {
    return `ORDER BY ${tieBreaker}`;
  }
  const at = jsonAt(column, sort.path, params);
  const kind = `jsonb_typeof(${at})`;
  const direction = sort.desc ? "DESC NULLS LAST" : "ASC NULLS FIRST";
  const rank = `CASE COALESCE(${kind}, 'null') WHEN 'null' THEN 0 WHEN 'boolean' THEN 1
    WHEN 'number' THEN 2 WHEN 'string' THEN 3 ELSE 4 END`;
  const number = `CASE WHEN ${kind} = 'number' THEN (${at})::numeric END`;
  // Booleans have their own rank; as text, false sorts before true.
  const string = `CASE WHEN ${kind} IN ('string', 'boolean') THEN (${at} #>> '{}') COLLATE "C" END`;
  return `ORDER BY ${rank} ${direction}, ${number} ${direction}, ${string} ${direction}, ${tieBreaker}`;
}

function timeParam(time: bigint, name: string): string {
  if (typeof time !== "bigint") {
    throw new RangeError(`${name} must be a bigint of nanoseconds`);
  }
  return time.toString();
}

function filterParts(filter: FilterTerm[], where: string[], params: unknown[]): void {
  for (const term of filter) {
    where.push(filterPart(term, `"values"`, params));
  }
}

function page(limit: number, offset: number, params: unknown[]): string {
  const [pageSize, skip] = pageParams(limit, offset);
  return `LIMIT ${bind(params, pageSize)} OFFSET ${bind(params, skip)}`;
}

/** The SELECT behind searchEntities; live entities only (a tombstone's values are NULL). */
export function entitySearch(t: PostgresTables, query: EntityQuery): SqlPart {
  const params: unknown[] = [];
  const where = [`"domain" = ${bind(params, query.domain)}`, `"type" = ${bind(params, query.type)}`];
  where.push(`"values" IS NOT NULL`);
  filterParts(query.filter, where, params);
  const order = orderPart(query.sort, `"values"`, `"key"`, params);
  return {
    sql: `SELECT ${entityColumns} FROM ${t.entities} WHERE ${where.join(" AND ")} ${order} ${page(query.limit, query.offset, params)}`,
    params,
  };
}

/**
 * The SELECT behind searchEvents. Times are bound as decimal text and cast to
 * BIGINT in SQL, so no nanosecond passes through a double.
 */
export function eventSearch(t: PostgresTables, query: EventQuery): SqlPart {
  const params: unknown[] = [];
  const where = [`"domain" = ${bind(params, query.domain)}`, `"type" = ${bind(params, query.type)}`];
  if (query.key !== undefined) {
    where.push(`"key" = ${bind(params, query.key)}`);
  }
  if (query.minTime !== undefined) {
    where.push(`"time" >= ${bind(params, timeParam(query.minTime, "minTime"))}::bigint`);
  }
  if (query.maxTime !== undefined) {
    where.push(`"time" <= ${bind(params, timeParam(query.maxTime, "maxTime"))}::bigint`);
  }
  filterParts(query.filter, where, params);
  const order = orderPart(query.sort, `"values"`, `"position"`, params);
  return {
    sql: `SELECT ${eventColumns()} FROM ${t.events} WHERE ${where.join(" AND ")} ${order} ${page(query.limit, query.offset, params)}`,
    params,
  };
}
