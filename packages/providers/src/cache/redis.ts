/**
 * The Redis cache: values and locks shared by every gateway that points at
 * the same server, through ioredis. Each value is stored as JSON together with
 * its exact expiry, and Redis is told the same instant (PXAT) so it frees the
 * key itself. Locks are `SET NX PXAT` with the owner's token as the value,
 * released by a compare-and-delete Lua script.
 *
 * @example
 * // STATEGATE_CACHE_PROVIDER={"name":"redis","addr":"127.0.0.1:6379"}
 * const cache = await createRedisCache({ addr: "127.0.0.1:6379" });
 * await cache.set("app", "greeting", { value: "hi", expiresAt: new Date(Date.now() + 60_000) });
 */
import { Redis } from "ioredis";
import { ProviderClosedError } from "../errors.js";
import type { Cache, CacheEntry, JsonValue } from "../types.js";
import { redisError, redisUnreachable } from "./redis-errors.js";
import { redisKey, redisPxat } from "./redis-keys.js";
import { type RedisCacheOptions, resolveRedisSettings } from "./redis-options.js";

export type { RedisCacheOptions, RedisTlsOptions } from "./redis-options.js";

const name = "redis";

/** What a value key holds: the value and its expiry in ms since the epoch, null for never. */
interface StoredValue {
  v: JsonValue;
  e: number | null;
}

/**
 * Deletes KEYS[1] only while it holds the token ARGV[1]; returns 1 when it
 * did. One script, so no other client can take the lock between the compare
 * and the delete. A lock Redis has expired reads as nil, so its old token
 * releases nothing.
 */
const unlockScript =
  "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

/** The client with the commands the adapter defines on it. */
type ScriptedRedis = Redis & {
  stategateUnlock(key: string, token: string): Promise<number>;
};

// Reconnect delays: quick at first for a blip, then one attempt a second
// while the server stays down.
const retryDelay = (attempt: number): number => Math.min(100 * 2 ** (attempt - 1), 1000);

// An invalid Date has a NaN time, which compares false with everything and
// would silently mean "never expires".
function millis(date: Date): number {
  const time = date.getTime();
  if (Number.isNaN(time)) {
    throw new TypeError("expiresAt is an invalid Date");
  }
  return time;
}

// Anything else under our prefix was not written by this adapter; reading it
// as a miss would hide a prefix shared with another application.
function unreadable(): Error {
  return new Error(`${name}: a key under this cache's prefix was not written by stategate`);
}

function readValue(text: string): StoredValue {
  let item: unknown;
  try {
    item = JSON.parse(text);
  } catch {
    throw unreadable();
  }
  if (
    typeof item !== "object" ||
    item === null ||
    Array.isArray(item) ||
    !("v" in item) ||
    !("e" in item) ||
    !(item.e === null || typeof item.e === "number")
  ) {
    throw unreadable();
  }
  return item as StoredValue;
}

/**
 * Creates a cache on Redis. Returns at once and connects in the background
 * (no connect at start-up to hang on), reconnecting on its own after a loss:
 * a server that is down makes calls (and ping) fail with
 * ProviderUnavailableError, at once after a failed connection attempt and
 * within `timeoutMs` at worst, so a gateway starts and answers UNAVAILABLE
 * until Redis is back. Throws ProviderConfigError for a bad option.
 */
export async function createRedisCache(options: RedisCacheOptions = {}): Promise<Cache> {
  const settings = resolveRedisSettings(options);
  const { prefix } = settings;
  const { onError } = options;
  const client = new Redis({
    ...settings.connection,
    // Every call, queued or sent, fails after timeoutMs.
    commandTimeout: settings.timeoutMs,
    connectTimeout: settings.connectTimeoutMs,
    // Calls made while (re)connecting wait in the offline queue, which a
    // failed connection attempt empties at once (maxRetriesPerRequest 0):
    // a blip is ridden out, a dead server answers within one retry delay.
    enableOfflineQueue: true,
    maxRetriesPerRequest: 0,
    // A command cut off by a lost connection may have run: fail it rather
    // than run it twice.
    autoResendUnfulfilledCommands: false,
    retryStrategy: retryDelay,
    // A connection that stops answering (a paused server, a black-holed
    // network) is dropped and replaced, rather than left to TCP keep-alive,
    // which takes minutes. Any incoming data resets the timer.
    socketTimeout: Math.max(3 * settings.timeoutMs, 5000),
  }) as ScriptedRedis;
  client.defineCommand("stategateUnlock", { numberOfKeys: 1, lua: unlockScript });

  // ioredis reports connection failures as 'error' events, which would crash
  // the process without a listener. The last one explains a call that only
  // learns the connection is gone (a refused password, a failed handshake).
  let connectionError: unknown;
  // Set when a connection attempt failed (as opposed to an established
  // connection breaking), cleared once one succeeds.
  let unreachable = false;
  client.on("error", (error: unknown) => {
    connectionError = error;
    if (client.status !== "ready") {
      unreachable = true;
    }
    try {
      onError?.(error);
    } catch {
      // A failing log hook must not break the client.
    }
  });
  client.on("ready", () => {
    connectionError = undefined;
    unreachable = false;
  });

  let closed = false;
  // Runs one Redis call, mapping its failures.
  const run = async <T>(call: () => Promise<T>): Promise<T> => {
    if (closed) {
      throw new ProviderClosedError(name);
    }
    // While ioredis waits to retry a failed attempt, a queued call would only
    // wait for the next attempt to fail: fail it now. A call made while an
    // attempt is under way still waits for its outcome.
    if (unreachable && client.status === "reconnecting") {
      throw redisUnreachable(connectionError);
    }
    try {
      return await call();
    } catch (error) {
      throw redisError(error, connectionError);
    }
  };

  const valueKey = (domain: string, key: string): string => redisKey(prefix, "value", domain, key);
  const lockKey = (domain: string, key: string): string => redisKey(prefix, "lock", domain, key);

  return {
    name,
    async get(domain, key) {
      const text = await run(() => client.get(valueKey(domain, key)));
      if (text === null) {
        return undefined;
      }
      const item = readValue(text);
      // Redis drops the key at this instant too; checking here keeps a read
      // in the last moments of the key's life from returning a past expiry.
      if (item.e !== null && item.e <= Date.now()) {
        return undefined;
      }
      const entry: CacheEntry = { value: item.v };
      if (item.e !== null) {
        entry.expiresAt = new Date(item.e);
      }
      return entry;
    },
    async set(domain, key, entry) {
      const json = JSON.stringify(entry.value);
      if (json === undefined) {
        throw new TypeError("cache values must be JSON values");
      }
      const expiresAt = entry.expiresAt === undefined ? undefined : millis(entry.expiresAt);
      const item = `{"v":${json},"e":${expiresAt ?? null}}`;
      const target = valueKey(domain, key);
      // A plain SET also clears the TTL a previous value had.
      await run(() =>
        expiresAt === undefined ? client.set(target, item) : client.set(target, item, "PXAT", redisPxat(expiresAt)),
      );
    },
    async del(domain, key) {
      // Redis itself no longer counts a key past its PXAT, so an expired
      // value is not there to delete.
      return (await run(() => client.del(valueKey(domain, key)))) === 1;
    },
    async lock(domain, key, token, expiresAt) {
      const until = redisPxat(millis(expiresAt));
      // SET NX is atomic: of many racing clients exactly one creates the key,
      // and Redis frees it at `until` without anyone's help.
      return (await run(() => client.set(lockKey(domain, key), token, "PXAT", until, "NX"))) === "OK";
    },
    async unlock(domain, key, token) {
      // defineCommand sends EVALSHA, and the script itself when Redis does
      // not know it (after a restart).
      return (await run(() => client.stategateUnlock(lockKey(domain, key), token))) === 1;
    },
    async ping() {
      await run(() => client.ping());
    },
    async close() {
      if (closed) {
        return;
      }
      closed = true;
      // QUIT lets the calls in flight finish; without a connection there is
      // nothing to wait for.
      if (client.status === "ready") {
        try {
          await client.quit();
          return;
        } catch {
          // fall through
        }
      }
      client.disconnect();
    },
  };
}
