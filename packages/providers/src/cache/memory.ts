/**
 * The embedded cache: values and locks in this process's memory, so a single
 * gateway runs with nothing installed. Gateways that scale out need a shared
 * cache (Memcached, Redis) instead, or their locks would not exclude each other.
 *
 * @example
 * const cache = await createMemoryCache();
 * await cache.set("app", "greeting", { value: "hi", expiresAt: new Date(Date.now() + 60_000) });
 */
import { ProviderClosedError } from "../errors.js";
import type { Cache, CacheEntry, JsonValue } from "../types.js";

/** Options of {@link createMemoryCache}. */
export interface MemoryCacheOptions {
  /** How often expired values and locks are dropped, in ms; lazy expiry alone would let unread keys pile up. */
  sweepIntervalMs?: number;
}

interface Slot {
  /** Kept as JSON text so callers never share (and mutate) the cached object, as with a networked cache. */
  json: string;
  /** ms since the epoch; undefined for never. */
  expiresAt: number | undefined;
}

interface Lock {
  token: string;
  expiresAt: number;
}

// domain → key → item. Nesting, rather than joining domain and key into one
// string, means no choice of separator can make two pairs collide.
type Table<T> = Map<string, Map<string, T>>;

function read<T>(table: Table<T>, domain: string, key: string): T | undefined {
  return table.get(domain)?.get(key);
}

function write<T>(table: Table<T>, domain: string, key: string, item: T): void {
  let keys = table.get(domain);
  if (keys === undefined) {
    keys = new Map();
    table.set(domain, keys);
  }
  keys.set(key, item);
}

function remove<T>(table: Table<T>, domain: string, key: string): boolean {
  const keys = table.get(domain);
  if (keys === undefined || !keys.delete(key)) {
    return false;
  }
  if (keys.size === 0) {
    table.delete(domain);
  }
  return true;
}

function sweep<T extends { expiresAt: number | undefined }>(table: Table<T>, now: number): void {
  for (const [domain, keys] of table) {
    for (const [key, item] of keys) {
      if (item.expiresAt !== undefined && item.expiresAt <= now) {
        keys.delete(key);
      }
    }
    if (keys.size === 0) {
      table.delete(domain);
    }
  }
}

// An invalid Date has a NaN time, which compares false with everything and
// would silently mean "never expires".
function millis(date: Date): number {
  const time = date.getTime();
  if (Number.isNaN(time)) {
    throw new TypeError("expiresAt is an invalid Date");
  }
  return time;
}

const expired = (expiresAt: number | undefined, now: number): boolean => expiresAt !== undefined && expiresAt <= now;

/** Creates an empty in-process cache. */
export async function createMemoryCache(options: MemoryCacheOptions = {}): Promise<Cache> {
  const values: Table<Slot> = new Map();
  const locks: Table<Lock> = new Map();
  const timer = setInterval(() => {
    const now = Date.now();
    sweep(values, now);
    sweep(locks, now);
  }, options.sweepIntervalMs ?? 30_000);
  // The sweep is housekeeping; it must never keep the process alive.
  timer.unref();

  let closed = false;
  const open = (): void => {
    if (closed) {
      throw new ProviderClosedError("memory");
    }
  };

  // Returns the live value slot, dropping it first if it has expired.
  const live = (domain: string, key: string): Slot | undefined => {
    const slot = read(values, domain, key);
    if (slot !== undefined && expired(slot.expiresAt, Date.now())) {
      remove(values, domain, key);
      return undefined;
    }
    return slot;
  };

  return {
    name: "memory",
    async get(domain, key) {
      open();
      const slot = live(domain, key);
      if (slot === undefined) {
        return undefined;
      }
      const entry: CacheEntry = { value: JSON.parse(slot.json) as JsonValue };
      if (slot.expiresAt !== undefined) {
        entry.expiresAt = new Date(slot.expiresAt);
      }
      return entry;
    },
    async set(domain, key, entry) {
      open();
      const json = JSON.stringify(entry.value);
      if (json === undefined) {
        throw new TypeError("cache values must be JSON values");
      }
      write(values, domain, key, {
        json,
        expiresAt: entry.expiresAt === undefined ? undefined : millis(entry.expiresAt),
      });
    },
    async del(domain, key) {
      open();
      return live(domain, key) !== undefined && remove(values, domain, key);
    },
    async lock(domain, key, token, expiresAt) {
      open();
      const until = millis(expiresAt);
      const held = read(locks, domain, key);
      if (held !== undefined && !expired(held.expiresAt, Date.now())) {
        return false;
      }
      write(locks, domain, key, { token, expiresAt: until });
      return true;
    },
    async unlock(domain, key, token) {
      open();
      const held = read(locks, domain, key);
      // An expired lock is no longer held by anyone, so its old token releases nothing.
      if (held === undefined || held.token !== token || expired(held.expiresAt, Date.now())) {
        return false;
      }
      return remove(locks, domain, key);
    },
    async ping() {
      open();
    },
    async close() {
      closed = true;
      clearInterval(timer);
      values.clear();
      locks.clear();
    },
  };
}
