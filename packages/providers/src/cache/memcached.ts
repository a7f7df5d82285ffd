/**
 * The Memcached cache: values and locks shared by every gateway that points at
 * the same servers, through memjs. Each item holds its JSON value (or lock
 * token) together with its exact expiry, because memcached cannot report an
 * item's remaining time and counts it in whole seconds.
 *
 * @example
 * // STATEGATE_CACHE_PROVIDER={"name":"memcached","addr":"127.0.0.1:11211"}
 * const cache = await createMemcachedCache({ addr: "127.0.0.1:11211" });
 * await cache.set("app", "greeting", { value: "hi", expiresAt: new Date(Date.now() + 60_000) });
 */
import { Client, Server } from "memjs";
import { ProviderClosedError, ProviderConfigError, ProviderUnavailableError } from "../errors.js";
import { optionChecker } from "../options.js";
import type { Cache, CacheEntry, JsonValue } from "../types.js";
import { status, statusError } from "./memcached-errors.js";
import { maxPrefixBytes, memcachedExptime, memcachedKey, validKeyPrefix } from "./memcached-keys.js";
import { call, type MemcachedReply, type MemcachedRequest, opcode, stats, storeExtras } from "./memcached-protocol.js";

/** Options of {@link createMemcachedCache}; the keys of its JSON spec. */
export interface MemcachedCacheOptions {
  /** The server as "host:port" ("[::1]:11211" for IPv6; port 11211 when left out). Default "127.0.0.1:11211". */
  addr?: string;
  /**
   * Several servers instead of `addr`, comma-separated. Each key lives on one,
   * picked by hash, so every gateway must list the same servers in the same order.
   */
  servers?: string;
  /** SASL user name; needs `password`. */
  user?: string;
  /** SASL password; needs `user`. */
  password?: string;
  /** Starts every key, so other users of the servers stay apart; printable ASCII, no spaces. Default "stategate:". */
  prefix?: string;
  /** How long connecting, and then each request, may take before failing as unavailable, in ms. Default 1000. */
  timeoutMs?: number;
  /**
   * The largest item (value JSON plus expiry) sent, in bytes; a larger value
   * fails with ValueTooLargeError before it is sent. Default 1 MiB less 512
   * bytes of item header and key, the room memcached's default `-I 1m` leaves.
   */
  maxValueBytes?: number;
  /** memjs cannot speak TLS, so `true` is refused rather than ignored; use a TLS tunnel (stunnel) instead. */
  tls?: boolean;
}

/** The default {@link MemcachedCacheOptions.maxValueBytes}. */
export const defaultMaxValueBytes = 1024 * 1024 - 512;

const name = "memcached";

/** What a value item holds: the value and its expiry in ms since the epoch, null for never. */
interface StoredValue {
  v: JsonValue;
  e: number | null;
}

/** What a lock item holds: the owner's token and the lock's expiry in ms since the epoch. */
interface StoredLock {
  t: string;
  e: number;
}

// add/replace loops end once the item stops changing under us; past this many
// turns other clients are busy taking the lock, so it counts as held.
const maxLockTurns = 4;

const check = optionChecker(`cache provider "${name}"`);

function positive(value: number | undefined, option: string, fallback: number): number {
  if (value === undefined) {
    return fallback;
  }
  if (!Number.isFinite(value) || value <= 0) {
    check.fail(option, "a positive number");
  }
  return value;
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

// Anything else under our prefix was not written by this adapter; reading it
// as a miss would hide a prefix shared with another application.
function unreadable(): Error {
  return new Error(`${name}: an item under this cache's prefix was not written by stategate`);
}

function parseItem(bytes: Buffer): Record<string, unknown> {
  let item: unknown;
  try {
    item = JSON.parse(bytes.toString("utf8"));
  } catch {
    throw unreadable();
  }
  if (typeof item !== "object" || item === null || Array.isArray(item)) {
    throw unreadable();
  }
  return item as Record<string, unknown>;
}

function readValue(bytes: Buffer): StoredValue {
  const item = parseItem(bytes);
  if (!("v" in item) || !(item.e === null || typeof item.e === "number")) {
    throw unreadable();
  }
  return item as unknown as StoredValue;
}

function readLock(bytes: Buffer): StoredLock {
  const item = parseItem(bytes);
  if (typeof item.t !== "string" || typeof item.e !== "number") {
    throw unreadable();
  }
  return item as unknown as StoredLock;
}

/**
 * Creates a cache on memcached. Connects lazily: a server that is down makes
 * calls (and ping) fail with ProviderUnavailableError, not start-up. Throws
 * ProviderConfigError for a bad option.
 */
export async function createMemcachedCache(options: MemcachedCacheOptions = {}): Promise<Cache> {
  if (options.tls !== undefined && options.tls !== false) {
    throw new ProviderConfigError(
      `cache provider "${name}": option "tls" cannot be honoured: memjs cannot speak TLS; connect through a TLS tunnel such as stunnel instead`,
      "tls",
    );
  }
  if (options.addr !== undefined && options.servers !== undefined) {
    throw new ProviderConfigError(`cache provider "${name}": give "addr" or "servers", not both`, "servers");
  }
  const [option, list] =
    options.servers === undefined ? ["addr", options.addr ?? "127.0.0.1:11211"] : ["servers", options.servers];
  const addresses = list.split(",").map((text) => check.address(option, text.trim(), 11211));
  if ((options.user === undefined) !== (options.password === undefined) || options.password === "") {
    // memjs skips SASL unless both are non-empty, which would silently connect unauthenticated.
    throw new ProviderConfigError(
      `cache provider "${name}": options "user" and "password" go together, both non-empty`,
      options.user === undefined ? "user" : "password",
    );
  }
  const prefix = options.prefix ?? "stategate:";
  if (!validKeyPrefix(prefix)) {
    check.fail("prefix", `printable ASCII without spaces, at most ${maxPrefixBytes} characters`);
  }
  const timeoutMs = positive(options.timeoutMs, "timeoutMs", 1000);
  const timeoutSeconds = timeoutMs / 1000;
  const maxValueBytes = positive(options.maxValueBytes, "maxValueBytes", defaultMaxValueBytes);

  const serverOptions = { timeout: timeoutSeconds, conntimeout: timeoutSeconds, keepAlive: true };
  const servers = addresses.map(({ host, port }) => {
    const server = new Server(host, port, options.user, options.password, serverOptions);
    // memjs falls back on MEMCACHIER_*/MEMCACHE_* credentials from the
    // environment; configuration is the spec alone, so drop them.
    return options.user === undefined ? Object.assign(server, { username: undefined, password: undefined }) : server;
  });
  // retries: 1 is a single attempt; the requests bypass memjs's retrying
  // commands anyway (see memcached-protocol.ts), and nothing should log.
  const client = new Client(servers, { retries: 1, failover: false, logger: { log() {} } });

  let closed = false;
  const send = async (request: MemcachedRequest): Promise<MemcachedReply> => {
    if (closed) {
      throw new ProviderClosedError(name);
    }
    const server = client.server(request.key);
    if (server === undefined || server === null) {
      throw new ProviderUnavailableError(name, "no server available");
    }
    return call(client, server, request, timeoutMs);
  };
  // Throws for any status but those the caller handles.
  const expect = (reply: MemcachedReply, ...handled: number[]): number => {
    if (!handled.includes(reply.status)) {
      throw statusError(reply.status);
    }
    return reply.status;
  };

  // The server's own item limit, to report when it refuses an item that
  // passed `maxValueBytes`.
  const serverItemLimit = async (key: string): Promise<number> => {
    const server = client.server(key);
    try {
      const limit = server
        ? Number((await stats(client, server, "settings", timeoutMs)).get("item_size_max"))
        : Number.NaN;
      return Number.isFinite(limit) ? limit : maxValueBytes;
    } catch {
      return maxValueBytes;
    }
  };

  // Stores an item with set or add (a CAS makes the set conditional) and
  // returns the status; refuses items over the limit before sending them.
  const store = async (
    op: number,
    key: string,
    json: string,
    expiresAt: number | undefined,
    cas?: Buffer,
  ): Promise<number> => {
    const value = Buffer.from(json, "utf8");
    if (value.length > maxValueBytes) {
      throw statusError(status.tooLarge, { limitBytes: maxValueBytes, actualBytes: value.length });
    }
    const extras = storeExtras(memcachedExptime(expiresAt, Date.now()));
    const reply = await send({ opcode: op, key, extras, value, ...(cas === undefined ? {} : { cas }) });
    if (reply.status === status.tooLarge) {
      throw statusError(status.tooLarge, { limitBytes: await serverItemLimit(key), actualBytes: value.length });
    }
    return expect(reply, status.ok, status.exists, status.notFound, status.notStored);
  };

  const valueKey = (domain: string, key: string): string => memcachedKey(prefix, "value", domain, key);
  const lockKey = (domain: string, key: string): string => memcachedKey(prefix, "lock", domain, key);

  // The live value item, or undefined when missing or past its stored expiry.
  const readLive = async (key: string): Promise<StoredValue | undefined> => {
    const reply = await send({ opcode: opcode.get, key });
    if (expect(reply, status.ok, status.notFound) === status.notFound) {
      return undefined;
    }
    const item = readValue(reply.value);
    return item.e !== null && item.e <= Date.now() ? undefined : item;
  };

  return {
    name,
    async get(domain, key) {
      const item = await readLive(valueKey(domain, key));
      if (item === undefined) {
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
      const result = await store(opcode.set, valueKey(domain, key), item, expiresAt);
      if (result !== status.ok) {
        throw statusError(result);
      }
    },
    async del(domain, key) {
      const item = valueKey(domain, key);
      // A value past its stored expiry is gone to readers, though memcached
      // may still hold it for up to two seconds; it is not there to delete.
      if ((await readLive(item)) === undefined) {
        return false;
      }
      // A plain delete is enough: whatever replaced the value since the read
      // was there when the delete ran.
      return expect(await send({ opcode: opcode.delete, key: item }), status.ok, status.notFound) === status.ok;
    },
    async lock(domain, key, token, expiresAt) {
      const until = millis(expiresAt);
      const item = lockKey(domain, key);
      const json = JSON.stringify({ t: token, e: until } satisfies StoredLock);
      for (let turn = 0; turn < maxLockTurns; turn++) {
        // add is atomic: of many racing clients exactly one creates the item.
        if ((await store(opcode.add, item, json, until)) === status.ok) {
          return true;
        }
        const held = await send({ opcode: opcode.get, key: item });
        if (expect(held, status.ok, status.notFound) === status.notFound) {
          continue; // released or dropped since the add: try again
        }
        if (readLock(held.value).e > Date.now()) {
          return false;
        }
        // Expired by its stored expiry but still on the server (memcached
        // counts whole seconds): take it over only if it is still that very
        // item, so one of several clients doing this wins.
        if ((await store(opcode.set, item, json, until, held.cas)) === status.ok) {
          return true;
        }
      }
      return false;
    },
    async unlock(domain, key, token) {
      const item = lockKey(domain, key);
      const held = await send({ opcode: opcode.get, key: item });
      if (expect(held, status.ok, status.notFound) === status.notFound) {
        return false;
      }
      const lock = readLock(held.value);
      // An expired lock is no longer held by anyone, so its old token releases nothing.
      if (lock.t !== token || lock.e <= Date.now()) {
        return false;
      }
      // The delete carries the CAS read above, so the server applies it only
      // if the item is unchanged: a new owner's lock (from add, or a takeover
      // by set) has a new CAS and makes this fail with "exists".
      const reply = await send({ opcode: opcode.delete, key: item, cas: held.cas });
      return expect(reply, status.ok, status.notFound, status.exists) === status.ok;
    },
    async ping() {
      if (closed) {
        throw new ProviderClosedError(name);
      }
      const replies = await Promise.all(
        client.servers.map((server) => call(client, server, { opcode: opcode.version, key: "" }, timeoutMs)),
      );
      for (const reply of replies) {
        expect(reply, status.ok);
      }
    },
    async close() {
      closed = true;
      client.close();
    },
  };
}
