import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Entity } from "@stategate/api";
import { parseFilter, parsePath } from "./query.js";
import { entitySize, fieldSize } from "./size.js";
import { stringProblem } from "./string-problem.js";

/**
 * Every input rule of the API, in one table keyed by request message. The
 * validation interceptor applies it to every call on every door before a
 * handler runs, so a bad request is refused with INVALID_ARGUMENT naming the
 * field, and nothing is written.
 */

/** Longest domain, type or channel name, in characters. */
export const MAX_NAME_LENGTH = 128;
/** Longest key, in characters. */
export const MAX_KEY_LENGTH = 255;
/** Largest page a search returns. */
export const MAX_LIMIT = 1000;
/** Page size when a search names no limit. */
export const DEFAULT_LIMIT = 100;

type Check = (value: unknown) => string | undefined;

const noSpace = /^[^\s\p{Cc}]+$/u;
const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/iu;

function name(max: number, wildcards = true): Check {
  return (v) => {
    const s = v as string;
    if (s === "") return "must not be empty";
    if (!noSpace.test(s)) return "must not contain whitespace or control characters";
    if ([...s].length > max) return `must be at most ${max} characters`;
    // Streams select domains, types and channels by glob, which has no escape.
    if (!wildcards && /[*?]/.test(s)) return "must not contain * or ?";
    return undefined;
  };
}

const domainName = name(MAX_NAME_LENGTH, false);
const keyName = name(MAX_KEY_LENGTH);
/** Globs follow the same character rules as names; "*" alone matches everything. */
const glob = name(MAX_KEY_LENGTH);

/**
 * Deepest nesting of objects and arrays in a JSON value the gateway stores,
 * the value's own object or array being the first level. MariaDB's JSON
 * check and functions stop there (`JSON_VALID` of 32 nested arrays is 0),
 * so a deeper value would fail only on MariaDB, and only once written; every
 * backend refuses it alike instead. Binary protobuf readers, which stop at
 * 100 message levels and spend two per JSON level (Struct, Value) plus the
 * request's own, read back whatever is accepted.
 */
export const MAX_JSON_DEPTH = 31;

/**
 * What is wrong with a JSON tree, if anything: a number JSON cannot carry
 * (NaN, ±Infinity, which binary clients can send), or nesting deeper than
 * `maxLevels`, `level` being the level `v` is at if it is an object or array.
 */
function jsonProblem(v: unknown, level: number, maxLevels: number): string | undefined {
  if (typeof v === "number") return Number.isFinite(v) ? undefined : "must not contain NaN or Infinity";
  if (typeof v === "string") return stringProblem(v);
  if (v === null || typeof v !== "object" || v instanceof Uint8Array) return undefined;
  if (level > maxLevels) return `must not nest deeper than ${MAX_JSON_DEPTH} levels`;
  if (!Array.isArray(v)) {
    for (const key of Object.keys(v)) {
      const problem = stringProblem(key);
      if (problem) return problem;
    }
  }
  for (const x of Array.isArray(v) ? v : Object.values(v)) {
    const problem = jsonProblem(x, level + 1, maxLevels);
    if (problem) return problem;
  }
  return undefined;
}

/**
 * What is wrong with a plain JSON tree from a door that parses JSON itself
 * (a REST body, a GraphQL argument), if anything; a value inside it meets
 * the message's own rules next, so two levels of wrapping are allowed.
 */
export function checkJson(value: unknown): string | undefined {
  return jsonProblem(value, 1, MAX_JSON_DEPTH + 2);
}

/** What is wrong with JSON the gateway stores as it is (a token's claims, recorded on events), if anything. */
export function checkStoredJson(value: unknown): string | undefined {
  return jsonProblem(value, 1, MAX_JSON_DEPTH);
}

/** A JSON object (google.protobuf.Struct, already plain JSON). */
const jsonObject: Check = (v) => (v === undefined ? "is required" : checkStoredJson(v));

/** A google.protobuf.Value message: set to some kind, finite and not too deep. */
const jsonValue: Check = (v) => {
  const value = v as { kind?: { case?: string; value?: unknown } } | undefined;
  if (value === undefined || value.kind?.case === undefined) return "is required";
  // Struct → fields → Value → kind → value: four object levels per JSON level.
  return jsonProblem(value.kind.value, 1, MAX_JSON_DEPTH * 4);
};

const eventId: Check = (v) => (uuid.test(v as string) ? undefined : "must be a UUID");

const token: Check = (v) => ((v as string) === "" ? "must not be empty" : undefined);

const nonNegative: Check = (v) => (v !== undefined && (v as bigint | number) < 0 ? "must not be negative" : undefined);

const limit: Check = (v) => {
  if (v === undefined) return undefined;
  const n = v as number;
  if (n <= 0) return "must be greater than 0";
  if (n > MAX_LIMIT) return `must be at most ${MAX_LIMIT}`;
  return undefined;
};

const filter: Check = (v) => {
  try {
    parseFilter(v as string);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
};

const sort: Check = (v) => {
  if (v === undefined) return undefined;
  const { field, desc } = v as { field: string; desc: boolean };
  if (field === "") return desc ? "field is required when desc is set" : undefined;
  try {
    parsePath((v as { field: string }).field);
    return undefined;
  } catch (err) {
    return `field ${(err as Error).message}`;
  }
};

/** 9999-12-31T23:59:59Z, the last second a google.protobuf.Timestamp can hold. */
const MAX_TIMESTAMP_SECONDS = 253_402_300_799n;

function future(optional: boolean): Check {
  return (v) => {
    if (v === undefined) return optional ? undefined : "is required";
    const t = v as Timestamp;
    if (t.nanos < 0 || t.nanos > 999_999_999) return "has invalid nanos";
    if (t.seconds > MAX_TIMESTAMP_SECONDS) return "must be before the year 10000";
    const ms = Number(t.seconds) * 1000 + t.nanos / 1e6;
    return ms <= Date.now() ? "must be in the future" : undefined;
  };
}

/** Field rules: [proto field name, local (camelCase) name, check]. */
type Rule = [field: string, local: string, check: Check];

const entityRef: Rule[] = [
  ["domain", "domain", domainName],
  ["type", "type", domainName],
  ["key", "key", keyName],
];
const cacheRef: Rule[] = [
  ["domain", "domain", domainName],
  ["key", "key", keyName],
];
const expectedVersion: Rule = ["expected_version", "expectedVersion", nonNegative];
const page: Rule[] = [
  ["filter", "filter", filter],
  ["sort", "sort", sort],
  ["limit", "limit", limit],
  ["offset", "offset", nonNegative],
];

const rules: Record<string, Rule[]> = {
  "stategate.v1.EntityServiceSetRequest": [...entityRef, ["values", "values", jsonObject], expectedVersion],
  "stategate.v1.EntityServiceEditRequest": [...entityRef, ["values", "values", jsonObject], expectedVersion],
  "stategate.v1.EntityServiceRevertRequest": [...entityRef, ["id", "id", eventId], expectedVersion],
  "stategate.v1.EntityServiceGetRequest": entityRef,
  "stategate.v1.EntityServiceDelRequest": [...entityRef, expectedVersion],
  "stategate.v1.EntityServiceSearchRequest": [["domain", "domain", domainName], ["type", "type", domainName], ...page],
  "stategate.v1.EventServiceStreamRequest": [
    ["domain", "domain", glob],
    ["type", "type", glob],
    ["consumer_group", "consumerGroup", (v) => ((v as string) === "" ? undefined : keyName(v))],
    ["after_position", "afterPosition", nonNegative],
  ],
  "stategate.v1.EventServiceSearchRequest": [
    ["domain", "domain", domainName],
    ["type", "type", domainName],
    ["key", "key", (v) => ((v as string) === "" ? undefined : keyName(v))],
    ["min_time", "minTime", nonNegative],
    ["max_time", "maxTime", nonNegative],
    ...page,
  ],
  "stategate.v1.EventServiceGetRequest": [...entityRef, ["id", "id", eventId]],
  "stategate.v1.PeerServiceBroadcastRequest": [
    ["domain", "domain", domainName],
    ["channel", "channel", domainName],
    ["type", "type", domainName],
    ["body", "body", jsonObject],
  ],
  "stategate.v1.PeerServiceStreamRequest": [
    ["domain", "domain", glob],
    ["channel", "channel", glob],
    ["type", "type", glob],
    ["consumer_group", "consumerGroup", (v) => ((v as string) === "" ? undefined : keyName(v))],
  ],
  "stategate.v1.CacheServiceSetRequest": [...cacheRef, ["value", "value", jsonValue], ["exp", "exp", future(true)]],
  "stategate.v1.CacheServiceGetRequest": cacheRef,
  "stategate.v1.CacheServiceDelRequest": cacheRef,
  "stategate.v1.MutexServiceLockRequest": [...cacheRef, ["exp", "exp", future(false)]],
  "stategate.v1.MutexServiceUnlockRequest": [...cacheRef, ["token", "token", token]],
};

/**
 * Checks a request message against its rules; throws INVALID_ARGUMENT naming
 * the first field that breaks one. A request type without rules fails closed
 * (INTERNAL): a method added to the contract must get its rules here before
 * it can be called, rather than run unchecked.
 */
export function validate(typeName: string, message: Record<string, unknown>): void {
  const list = Object.hasOwn(rules, typeName) ? rules[typeName] : undefined;
  if (!list) throw new ConnectError(`no input rules for ${typeName}`, Code.Internal);
  for (const [field, local, check] of list) {
    const problem = check(message[local]);
    if (problem !== undefined) {
      throw new ConnectError(`${field}: ${problem}`, Code.InvalidArgument);
    }
  }
}

/** Whether a request type has rules; lets a test prove every request is covered. */
export function hasRules(typeName: string): boolean {
  return Object.hasOwn(rules, typeName);
}

/**
 * Size rules. Sizes are those of the binary protobuf encoding (services/size.ts),
 * the one gRPC clients receive and limit, whatever door a call used.
 */

/**
 * The state every mutation (Set, Edit, Revert) would write, refused with
 * RESOURCE_EXHAUSTED when the entity, as Get returns it, would be larger than
 * STATEGATE_MAX_REQUEST_BYTES: what a client may send, it can read back.
 */
export function checkEntitySize(entity: Entity, maxBytes: number): void {
  const size = fieldSize(entitySize(entity));
  if (size > maxBytes) {
    throw new ConnectError(
      `entity ${entity.domain}/${entity.type}/${entity.key} would be ${size} bytes, more than STATEGATE_MAX_REQUEST_BYTES (${maxBytes} bytes); nothing was written`,
      Code.ResourceExhausted,
    );
  }
}

/**
 * A search page, refused with RESOURCE_EXHAUSTED as soon as its rows add up
 * to more than STATEGATE_MAX_RESPONSE_BYTES; the message says how many fit,
 * so the caller can ask for a smaller limit.
 */
export function checkPageSize<T>(rows: readonly T[], sizeOf: (row: T) => number, maxBytes: number, noun: string): void {
  let total = 0;
  for (let i = 0; i < rows.length; i++) {
    total += fieldSize(sizeOf(rows[i] as T));
    if (total > maxBytes) {
      const fit =
        i === 0 ? "not even the first fits; read it with Get" : `the first ${i} fit: ask for a limit of at most ${i}`;
      throw new ConnectError(
        `the ${rows.length} ${noun} found are more than STATEGATE_MAX_RESPONSE_BYTES (${maxBytes} bytes) in one response; ${fit}`,
        Code.ResourceExhausted,
      );
    }
  }
}
