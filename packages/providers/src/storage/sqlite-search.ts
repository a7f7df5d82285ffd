/**
 * SQL fragments for searches over JSON values in SQLite. Paths and values are
 * always bound parameters: the SQL text depends only on the shape of a query
 * (how many terms, which scalar kinds, sort direction), never on user text, so
 * each shape is prepared once and reused.
 */
import type { FilterTerm, SortSpec } from "../types.js";

/** One WHERE fragment and the parameters it binds, in order. */
export interface SqlPart {
  sql: string;
  params: unknown[];
}

// Control characters, quotes and backslashes have no escape in SQLite's JSON
// path syntax; the gateway refuses them already, this is the second fence.
// biome-ignore lint/suspicious/noControlCharactersInRegex: refusing them is the point
const unsafeSegment = /["\\\u0000-\u001f\u007f]/;

/** Builds a SQLite JSON path such as `$."address"."city"` that reads segments as object keys only. */
export function jsonPath(path: readonly string[]): string {
  if (path.length === 0) {
    throw new RangeError("a JSON path needs at least one segment");
  }
  let result = "$";
  for (const segment of path) {
    if (typeof segment !== "string" || unsafeSegment.test(segment)) {
      throw new RangeError(`JSON path segment ${JSON.stringify(segment)} is not allowed`);
    }
    result += `."${segment}"`;
  }
  return result;
}

/**
 * An exact-type equality on the JSON value at a term's path: json_type tells
 * "1" from 1, true from 1, and JSON null from a missing key, which a bare
 * json_extract comparison cannot.
 */
export function filterPart(term: FilterTerm, column: string): SqlPart {
  const path = jsonPath(term.path);
  const { value } = term;
  const type = `json_type(${column}, ?)`;
  const extract = `json_extract(${column}, ?)`;
  if (value === null) {
    return { sql: `${type} = 'null'`, params: [path] };
  }
  switch (typeof value) {
    case "boolean":
      return { sql: `${type} = '${value ? "true" : "false"}'`, params: [path] };
    case "string":
      return { sql: `${type} = 'text' AND ${extract} = ?`, params: [path, path, value] };
    case "number":
      if (!Number.isFinite(value)) {
        throw new RangeError(`filter value ${value} is not a JSON number`);
      }
      return { sql: `${type} IN ('integer', 'real') AND ${extract} = ?`, params: [path, path, value] };
    default:
      throw new RangeError(`filter value of type ${typeof value} is not a JSON scalar`);
  }
}

/** The ORDER BY clause: the sort path when given, then the tie-breaker so pages are stable. */
export function orderPart(sort: SortSpec | undefined, column: string, tieBreaker: string): SqlPart {
  if (sort === undefined) {
    return { sql: `ORDER BY ${tieBreaker}`, params: [] };
  }
  const direction = sort.desc ? "DESC" : "ASC";
  return {
    sql: `ORDER BY json_extract(${column}, ?) ${direction}, ${tieBreaker}`,
    params: [jsonPath(sort.path)],
  };
}

/** Checks limit and offset before they reach SQL, where a negative LIMIT means "no limit". */
export function pageParams(limit: number, offset: number): [number, number] {
  if (!Number.isSafeInteger(limit) || limit < 0) {
    throw new RangeError(`limit must be a non-negative integer, got ${limit}`);
  }
  if (!Number.isSafeInteger(offset) || offset < 0) {
    throw new RangeError(`offset must be a non-negative integer, got ${offset}`);
  }
  return [limit, offset];
}

/**
 * Keeps prepared statements per SQL text. The SQL text comes only from the
 * fragments above, so the number of shapes stays small; the cap only guards
 * against a pathological caller sending ever-longer filter lists.
 */
export function createStatementCache<S>(prepare: (sql: string) => S, max = 256): (sql: string) => S {
  const statements = new Map<string, S>();
  return (sql) => {
    let statement = statements.get(sql);
    if (statement === undefined) {
      if (statements.size >= max) {
        statements.clear();
      }
      statement = prepare(sql);
      statements.set(sql, statement);
    }
    return statement;
  };
}
