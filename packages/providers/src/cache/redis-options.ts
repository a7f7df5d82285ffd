/**
 * The options of the Redis cache, checked once at start-up and turned into
 * ioredis connection settings. A bad option stops start-up with a
 * ProviderConfigError naming it; TLS files are read here, not per connection.
 * Messages never echo a url or password.
 */
import type { RedisOptions } from "ioredis";
import { optionChecker, type TlsFileOptions } from "../options.js";
import { redisConnection } from "../redis-connection.js";

/** TLS settings of {@link RedisCacheOptions.tls}. Paths are read once, at start-up. */
export type RedisTlsOptions = TlsFileOptions;

/**
 * Options of {@link createRedisCache}; the keys of its JSON spec. Give either
 * `url`, or `addr` with `user`, `password` and `db`; not both.
 */
export interface RedisCacheOptions {
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
  /** The database number to SELECT. Default 0. */
  db?: number;
  /**
   * Starts every key, so other users of the server stay apart; gateways of
   * one installation must use the same prefix. Default "stategate:".
   */
  prefix?: string;
  /**
   * How long each call may take, waiting for a connection included, before it
   * fails as unavailable, in ms. Default 1000.
   */
  timeoutMs?: number;
  /** How long one connection attempt (TCP and TLS) may take before it is abandoned and retried, in ms. Default 2000. */
  connectTimeoutMs?: number;
  /**
   * Connect with TLS: `true` with the system CAs, or settings. A `rediss://`
   * url turns TLS on by itself; `false` with one is refused.
   */
  tls?: boolean | RedisTlsOptions;
  /**
   * Told about errors the client handles itself: refused connections, lost
   * connections, failed reconnects. They may name hosts: log them, never send
   * them to clients. Without it they are dropped. Not settable from JSON.
   */
  onError?: (error: unknown) => void;
}

/** Everything the adapter connects with, resolved from the options. */
export interface RedisSettings {
  /** ioredis options, save the ones the adapter itself owns (timeouts, queueing, retries). */
  connection: RedisOptions;
  prefix: string;
  timeoutMs: number;
  connectTimeoutMs: number;
}

const check = optionChecker('cache provider "redis"');

/** Checks the options and resolves them into connection settings; throws ProviderConfigError naming a bad one. */
export function resolveRedisSettings(options: RedisCacheOptions): RedisSettings {
  const connection = redisConnection(check, options);
  const prefix = options.prefix ?? "stategate:";
  if (typeof prefix !== "string") {
    check.fail("prefix", "a string");
  }
  return {
    connection,
    prefix,
    timeoutMs: check.integer("timeoutMs", options.timeoutMs, 1000),
    connectTimeoutMs: check.integer("connectTimeoutMs", options.connectTimeoutMs, 2000),
  };
}
