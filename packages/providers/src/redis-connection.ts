/**
 * How both Redis adapters (cache and channel) reach the server: the url, or
 * addr with user, password and db, and TLS, checked once at start-up.
 */
import type { RedisOptions } from "ioredis";
import type { OptionChecker, TlsFileOptions } from "./options.js";

/** The keys of a Redis spec that say where the server is and how to log in. */
export interface RedisServerOptions {
  url?: string;
  addr?: string;
  user?: string;
  password?: string;
  db?: number;
  tls?: boolean | TlsFileOptions;
}

const defaultPort = 6379;

/**
 * ioredis' host, port, db, credentials and TLS from a spec; `check` names
 * the adapter in errors.
 *
 * @example
 * const connection = redisConnection(optionChecker('cache provider "redis"'), { addr: "127.0.0.1:6379" });
 */
export function redisConnection(check: OptionChecker, options: RedisServerOptions): RedisOptions {
  check.notWithUrl(options, ["addr", "user", "password", "db"]);
  let target: { host: string; port: number; user?: string | undefined; password?: string | undefined; db: number };
  let secure = false;
  if (options.url !== undefined) {
    const url = check.url(options.url, ["redis", "rediss"], "redis://user:password@host:6379/0 or rediss://… (TLS)");
    if (url.path !== "" && !/^\d+$/.test(url.path)) {
      check.fail("url", "a redis:// URL whose path is the database number");
    }
    const db = url.path === "" ? 0 : check.integer("url", Number(url.path), 0, 0);
    target = { host: url.host, port: url.port ?? defaultPort, user: url.user, password: url.password, db };
    secure = url.scheme === "rediss";
  } else {
    target = {
      ...check.address("addr", options.addr ?? `127.0.0.1:${defaultPort}`, defaultPort),
      user: options.user,
      password: options.password,
      db: check.integer("db", options.db, 0, 0),
    };
  }
  // ioredis sends AUTH only with a non-empty password, so a user without one
  // would silently connect as the default user.
  if (target.user !== undefined && (target.password === undefined || target.password === "")) {
    check.fail(options.url === undefined ? "password" : "url", "given with a user (a non-empty password)");
  }
  if (options.tls === false && secure) {
    check.fail("tls", "true or left out with a rediss:// url");
  }
  const tls = options.tls === undefined || options.tls === false ? (secure ? true : undefined) : options.tls;
  return {
    host: target.host,
    port: target.port,
    db: target.db,
    ...(target.user === undefined ? {} : { username: target.user }),
    ...(target.password === undefined || target.password === "" ? {} : { password: target.password }),
    ...(tls === undefined ? {} : { tls: check.tls(tls) }),
  };
}
