/**
 * How a cache's domain/key pairs become memcached keys, and how an absolute
 * expiry becomes memcached's exptime. Pure functions, so the rules that keep
 * names apart and values alive can be tested without a server.
 *
 * @example
 * memcachedKey("stategate:", "value", "app", "user 1"); // "stategate:v:YXBw:dXNlciAx"
 */
import { createHash } from "node:crypto";

/** Values and locks live in separate key spaces, so a value never replaces a lock. */
export type MemcachedKeyKind = "value" | "lock";

/** The longest key memcached accepts, in bytes. */
export const maxKeyBytes = 250;

/** The longest prefix that still leaves room for a hashed key. */
export const maxPrefixBytes = maxKeyBytes - "v#".length - 43;

/** Memcached's text protocol forbids spaces and control characters in keys; keep to printable ASCII. */
const printable = /^[\x21-\x7e]*$/;

// Lone surrogates would be replaced by U+FFFD in UTF-8, so "\uD800" and
// "\uFFFD" would share a key. Strings holding one are encoded from UTF-16
// instead, behind a "~" that base64url never produces.
const loneSurrogate = /\p{Cs}/u;

const kindMark: Record<MemcachedKeyKind, string> = { value: "v", lock: "l" };

function encodePart(text: string): string {
  return loneSurrogate.test(text)
    ? `~${Buffer.from(text, "utf16le").toString("base64url")}`
    : Buffer.from(text, "utf8").toString("base64url");
}

/** True when `prefix` may start every key: printable ASCII, short enough for a hashed key. */
export function validKeyPrefix(prefix: string): boolean {
  return printable.test(prefix) && prefix.length <= maxPrefixBytes;
}

/**
 * The memcached key of one value or lock. Domain and key are base64url-encoded
 * and joined with ":", which base64url never contains, so no two pairs share a
 * key. When that is longer than memcached allows, the key is a SHA-256 of the
 * same text behind "#" instead of ":", never a truncation.
 */
export function memcachedKey(prefix: string, kind: MemcachedKeyKind, domain: string, key: string): string {
  const name = `${encodePart(domain)}:${encodePart(key)}`;
  const plain = `${prefix}${kindMark[kind]}:${name}`;
  if (plain.length <= maxKeyBytes) {
    return plain;
  }
  return `${prefix}${kindMark[kind]}#${createHash("sha256").update(name).digest("base64url")}`;
}

/** Memcached reads an exptime above this many seconds (30 days) as a unix time, not a duration. */
export const maxRelativeExptime = 60 * 60 * 24 * 30;

/** The largest exptime the binary protocol's 32-bit field carries. */
const maxExptime = 0xffff_ffff;

/**
 * The exptime to store an item expiring at `expiresAtMs` (undefined: never)
 * with, at `nowMs`. Memcached keeps it at least that long; the exact instant is
 * enforced on read from the expiry stored in the item, since memcached counts
 * whole seconds.
 */
export function memcachedExptime(expiresAtMs: number | undefined, nowMs: number): number {
  if (expiresAtMs === undefined) {
    return 0;
  }
  // One extra second: memcached's clock ticks once a second and lags real
  // time by up to a second, so the bare remaining seconds could drop an item
  // early. An expiry already past still gets a positive exptime, because 0
  // would mean "never".
  const relative = Math.max(0, Math.ceil((expiresAtMs - nowMs) / 1000)) + 1;
  if (relative <= maxRelativeExptime) {
    return relative;
  }
  const absolute = Math.ceil(expiresAtMs / 1000) + 1;
  // Past 2106 the field overflows; "never" on the server is safe because the
  // stored expiry still ends the item on read.
  return absolute > maxExptime ? 0 : absolute;
}
