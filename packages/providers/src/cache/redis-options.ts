/**
 * The options of the Redis cache, checked once at start-up and turned into
 * ioredis connection settings. A bad option stops start-up with a
 * ProviderConfigError naming it; TLS files are read here, not per connection.
 * Messages never echo a url or password.
 */
import type { ConnectionOptions } from "node:tls";
import type { RedisOptions } from "ioredis";
import { ProviderConfigError } from "../errors.js";
import type { TlsFileOptions } from "../tls-options.js";
import { readTlsOptions } from "../tls-options.js";

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

const name = "redis";
const defaultPort = 6379;

function fail(option: string, expected: string): never {
  throw new ProviderConfigError(`cache provider "${name}": option "${option}" must be ${expected}`, option);
}

function positive(option: string, value: number | undefined, fallback: number): number {
  if (value === undefined) {
    return fallback;
  }
  // Node timers hold at most 2^31-1 ms; longer ones fire at once.
  if (!Number.isInteger(value) || value < 1 || value > 2 ** 31 - 1) {
    fail(option, "a positive whole number of milliseconds");
  }
  return value;
}

function database(option: string, value: number): number {
  if (!Number.isInteger(value) || value < 0 || value > 2 ** 31 - 1) {
    fail(option, "a database number, 0 or more");
  }
  return value;
}

function parsePort(text: string, option: string): number {
  const port = Number(text);
  if (!/^\d{1,5}$/.test(text) || port < 1 || port > 65535) {
    fail(option, "a port between 1 and 65535");
  }
  return port;
}

/** "host", "host:port", "[v6]" or "[v6]:port". A bare v6 address is refused: its colons are ambiguous. */
function parseAddr(addr: string): { host: string; port: number } {
  const usage = '"host:port", like "127.0.0.1:6379" or "[::1]:6379"';
  const match = /^\[([0-9a-fA-F:.]+)\](?::(.*))?$/.exec(addr) ?? /^([^\s:[\]@/]+)(?::(.*))?$/.exec(addr);
  if (match === null) {
    fail("addr", usage);
  }
  const [, host = "", port] = match;
  return { host, port: port === undefined ? defaultPort : parsePort(port, "addr") };
}

interface Target {
  host: string;
  port: number;
  user: string | undefined;
  password: string | undefined;
  db: number;
  secure: boolean;
}

function parseUrl(text: string): Target {
  const usage = "a URL like redis://user:password@host:6379/0 or rediss://… (TLS)";
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    fail("url", usage);
  }
  if ((url.protocol !== "redis:" && url.protocol !== "rediss:") || url.hostname === "") {
    fail("url", usage);
  }
  // Silently ignored URL parameters are how settings get lost: refuse them.
  if (url.search !== "" || url.hash !== "") {
    fail("url", `${usage}, with no query or fragment (use the other options)`);
  }
  const path = url.pathname.replace(/^\//, "");
  if (path !== "" && !/^\d+$/.test(path)) {
    fail("url", `${usage}; the path is the database number`);
  }
  let user: string | undefined;
  let password: string | undefined;
  try {
    user = url.username === "" ? undefined : decodeURIComponent(url.username);
    password = url.password === "" ? undefined : decodeURIComponent(url.password);
  } catch {
    fail("url", `${usage}, with a percent-encoded user and password`);
  }
  return {
    host: url.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: url.port === "" ? defaultPort : parsePort(url.port, "url"),
    user,
    password,
    db: path === "" ? 0 : database("url", Number(path)),
    secure: url.protocol === "rediss:",
  };
}

function tlsConnection(tls: RedisTlsOptions | true): ConnectionOptions {
  return readTlsOptions('cache provider "redis"', tls);
}

/** Checks the options and resolves them into connection settings; throws ProviderConfigError naming a bad one. */
export function resolveRedisSettings(options: RedisCacheOptions): RedisSettings {
  if (options.url !== undefined) {
    for (const option of ["addr", "user", "password", "db"] as const) {
      if (options[option] !== undefined) {
        fail(option, 'left out when "url" is given (the url carries it)');
      }
    }
  }
  const target: Target =
    options.url !== undefined
      ? parseUrl(options.url)
      : {
          ...parseAddr(options.addr ?? `127.0.0.1:${defaultPort}`),
          user: options.user,
          password: options.password,
          db: options.db === undefined ? 0 : database("db", options.db),
          secure: false,
        };
  // ioredis sends AUTH only with a non-empty password, so a user without one
  // would silently connect as the default user.
  if (target.user !== undefined && (target.password === undefined || target.password === "")) {
    fail(options.url === undefined ? "password" : "url", "given with a user (a non-empty password)");
  }
  if (options.tls === false && target.secure) {
    fail("tls", "true or left out with a rediss:// url");
  }
  const tls = options.tls === undefined || options.tls === false ? (target.secure ? true : undefined) : options.tls;
  const prefix = options.prefix ?? "stategate:";
  if (typeof prefix !== "string") {
    fail("prefix", "a string");
  }
  return {
    connection: {
      host: target.host,
      port: target.port,
      db: target.db,
      ...(target.user === undefined ? {} : { username: target.user }),
      ...(target.password === undefined || target.password === "" ? {} : { password: target.password }),
      ...(tls === undefined ? {} : { tls: tlsConnection(tls) }),
    },
    prefix,
    timeoutMs: positive("timeoutMs", options.timeoutMs, 1000),
    connectTimeoutMs: positive("connectTimeoutMs", options.connectTimeoutMs, 2000),
  };
}
