/**
 * The options of the Redis channel, checked once at start-up and turned into
 * ioredis connection settings. A bad option stops start-up with a
 * ProviderConfigError naming it; TLS files are read here, not per connection.
 * Messages never echo a url or password.
 */
import type { ConnectionOptions } from "node:tls";
import type { RedisOptions } from "ioredis";
import { ProviderConfigError } from "../errors.js";
import type { TlsFileOptions } from "../tls-options.js";
import { readTlsOptions } from "../tls-options.js";

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

const defaultPort = 6379;

function fail(option: string, expected: string): never {
  throw new ProviderConfigError(`channel provider "redis": option "${option}" must be ${expected}`, option);
}

function integer(option: string, value: number | undefined, fallback: number, min = 1, max = 2 ** 31 - 1): number {
  if (value === undefined) {
    return fallback;
  }
  if (!Number.isInteger(value) || value < min || value > max) {
    fail(option, `an integer from ${min} to ${max}`);
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
  const match = /^\[([0-9a-fA-F:.]+)\](?::(.*))?$/.exec(addr) ?? /^([^\s:[\]@/]+)(?::(.*))?$/.exec(addr);
  if (match === null) {
    fail("addr", '"host:port", like "127.0.0.1:6379" or "[::1]:6379"');
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
    db: path === "" ? 0 : integer("url", Number(path), 0, 0),
    secure: url.protocol === "rediss:",
  };
}

function tlsConnection(tls: RedisChannelTlsOptions | true): ConnectionOptions {
  return readTlsOptions('channel provider "redis"', tls);
}

/** Checks the options and resolves them into connection settings; throws ProviderConfigError naming a bad one. */
export function resolveRedisSettings(options: RedisChannelOptions): RedisSettings {
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
          db: integer("db", options.db, 0, 0),
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
  const prefix = options.prefix ?? "stategate";
  if (typeof prefix !== "string" || prefix === "" || Buffer.byteLength(prefix) > 200) {
    fail("prefix", "a non-empty string of at most 200 bytes");
  }
  return {
    connection: {
      host: target.host,
      port: target.port,
      db: target.db,
      ...(target.user === undefined ? {} : { username: target.user }),
      ...(target.password === undefined || target.password === "" ? {} : { password: target.password }),
      ...(tls === undefined ? {} : { tls: tlsConnection(tls) }),
      connectTimeout: integer("connectTimeoutMs", options.connectTimeoutMs, 5000),
    },
    prefix,
    groupIdleMs: integer("groupIdleMs", options.groupIdleMs, 10_000, 100, 3_600_000),
    maxLen: integer("maxLen", options.maxLen, 10_000, 1),
    commandTimeoutMs: integer("commandTimeoutMs", options.commandTimeoutMs, 5000),
  };
}
