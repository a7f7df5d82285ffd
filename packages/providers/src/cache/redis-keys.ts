/**
 * How a cache's domain/key pairs become Redis keys, and how an absolute expiry
 * becomes a PXAT argument. Pure functions, so the rules that keep names apart
 * can be tested without a server.
 *
 * @example
 * redisKey("stategate:", "value", "app", "user 1"); // 'stategate:v:["app","user 1"]'
 */

/** Values and locks live in separate key spaces, so a value never replaces a lock. */
export type RedisKeyKind = "value" | "lock";

// Every key this adapter writes is `<prefix><mark>:<pair>`. A later kind of
// internal key takes a new mark, so it can never meet a value or a lock.
const kindMark: Record<RedisKeyKind, string> = { value: "v", lock: "l" };

/**
 * The Redis key of one value or lock. The pair is written as a JSON array,
 * which is injective: quotes, colons and backslashes inside names are escaped,
 * so domain "a:b" with key "c" and domain "a" with key "b:c" stay apart.
 * JSON.stringify also escapes lone surrogates (as `\ud800`), which UTF-8 would
 * otherwise turn into U+FFFD and merge with a real U+FFFD. Redis keys are
 * binary-safe and may be long, so nothing is hashed or truncated.
 */
export function redisKey(prefix: string, kind: RedisKeyKind, domain: string, key: string): string {
  return `${prefix}${kindMark[kind]}:${JSON.stringify([domain, key])}`;
}

/**
 * The PXAT argument for an expiry at `expiresAtMs`. Redis refuses 0 and
 * negative times, yet an expiry at or before the epoch is just as past as
 * any other: 1 makes Redis drop the key at once, as it does for any past time.
 */
export function redisPxat(expiresAtMs: number): number {
  return Math.max(1, expiresAtMs);
}
