/**
 * The options of the Redis channel, checked once at start-up and turned into
 * ioredis connection settings. A bad option stops start-up with a
 * ProviderConfigError naming it; TLS files are read here, not per connection.
 * Messages never echo a url or password.
 */
import type { RedisOptions } from "ioredis";
import { optionChecker, type TlsFileOptions } from "../options.js";
import { redisConnection } from "../redis-connection.js";

/** TLS settings of {@link RedisChannelOptions.tls}. Paths are read once, at start-up. */
export type RedisChannelTlsOptions = TlsFileOptions;

/**
 * Options of {@link createRedisChannel}; the keys of its JSON spec. Give
 * either `url`, or `addr` with `user`, `password` and `db`; not both.
 */
export interface RedisChannelOptions {
  /**
   * `redis://[user:password@]host[:port][/db]`, or `rediss://…` for TLS.
   * Percent-encode reserved characters in the user and password.
   */
  url?: string;
  /** The server as "host:port" ("[::1]:6379" for IPv6; port 6379 when left out). Default "127.0.0.1:6379". */
  addr?: string;
  /** ACL user name (Redis 6+); needs `password`. Default: the `default` user. */
  user?: string;
  /** The password (`requirepass`, or the ACL user's). Empty or left out: no AUTH. */
  password?: string;
  /**
   * The database of the group streams. Pub/sub ignores databases, so
   * installations that share a server must differ in `prefix`. Default 0.
   */
  db?: number;
  /**
   * Starts every pub/sub channel and key (`<prefix>:events`,
   * `<prefix>:events:stream` …), so several installations can share one
   * server. Gateways of one installation must use the same prefix. Default
   * "stategate".
   */
  prefix?: string;
  /**
   * Connect with TLS: `true` with the system CAs, or settings. A `rediss://`
   * url turns TLS on by itself; `false` with one is refused.
   */
  tls?: boolean | RedisChannelTlsOptions;
  /**
   * How long a group member may stay silent (no heartbeat) before it counts
   * as dead: the payloads it held are then handed to live members, and a
   * payload it took longer than this to finish may be too. Live members check
   * for such payloads every quarter of it. Default 10000.
   */
  groupIdleMs?: number;
  /**
   * About how many payloads a topic's group stream keeps (approximate
   * `XADD MAXLEN ~`). A member that falls further behind loses the oldest.
   * Default 10000.
   */
  maxLen?: number;
  /** How long one connection attempt (TCP, TLS and handshake) may take, in ms. Default 5000. */
  connectTimeoutMs?: number;
  /** How long publish(), ping() and group bookkeeping wait for the server's answer before failing, in ms. Default 5000. */
  commandTimeoutMs?: number;
  /**
   * Told about errors the channel handles itself: handler failures, lost
   * connections, failed reconnects. They may name hosts: log them, never send
   * them to clients. Without it they are dropped. Not settable from JSON.
   */
  onError?: (error: unknown) => void;
  /**
   * Told when the instance's connections (publishing and pub/sub) are lost
   * (false) and all back (true). Not settable from JSON.
   */
  onConnectionChange?: (connected: boolean) => void;
}

/** Everything the adapter connects with, resolved from the options. */
export interface RedisSettings {
  /** ioredis options shared by every connection, save the ones each role sets itself. */
  connection: RedisOptions;
  prefix: string;
  groupIdleMs: number;
  maxLen: number;
  commandTimeoutMs: number;
}

const check = optionChecker('channel provider "redis"');

/** Checks the options and resolves them into connection settings; throws ProviderConfigError naming a bad one. */
export function resolveRedisSettings(options: RedisChannelOptions): RedisSettings {
  const connection = redisConnection(check, options);
  const prefix = options.prefix ?? "stategate";
  if (typeof prefix !== "string" || prefix === "" || Buffer.byteLength(prefix) > 200) {
    check.fail("prefix", "a non-empty string of at most 200 bytes");
  }
  return {
    connection: {
      ...connection,
      connectTimeout: check.integer("connectTimeoutMs", options.connectTimeoutMs, 5000),
    },
    prefix,
    groupIdleMs: check.integer("groupIdleMs", options.groupIdleMs, 10_000, 100, 3_600_000),
    maxLen: check.integer("maxLen", options.maxLen, 10_000, 1),
    commandTimeoutMs: check.integer("commandTimeoutMs", options.commandTimeoutMs, 5000),
  };
}
