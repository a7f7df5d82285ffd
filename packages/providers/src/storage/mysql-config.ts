/**
 * Turns MysqlStorageOptions into mysql2 pool options, once, at start-up: a bad
 * value stops the gateway with a ProviderConfigError naming the option, and
 * TLS files are read here so a missing certificate fails the start, not the
 * first request. Messages never echo a URL or password.
 */
import { readFile } from "node:fs/promises";
import net from "node:net";
import type { PoolOptions, SslOptions } from "mysql2/promise";
import { ProviderConfigError } from "../errors.js";
import type { MysqlStorageOptions, MysqlTlsOptions } from "./mysql.js";

/** Everything createMysqlStorage needs, checked. */
export interface MysqlConfig {
  pool: PoolOptions;
  tablePrefix: string;
}

const defaultPort = 3306;
const prefixPattern = /^[A-Za-z0-9_]{1,32}$/;
const tlsKeys = new Set(["ca", "cert", "key", "rejectUnauthorized", "servername"]);

function fail(option: string, message: string): never {
  throw new ProviderConfigError(`storage provider "mysql": option "${option}" ${message}`, option);
}

function parsePort(text: string, option: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port < 1 || port > 65535) {
    fail(option, "needs a port between 1 and 65535");
  }
  return port;
}

/** "host", "host:port", "[v6]" or "[v6]:port". */
function parseAddr(addr: string): { host: string; port: number } {
  const bracketed = /^\[([^\]]+)\](?::(.*))?$/.exec(addr);
  if (bracketed !== null) {
    const [, host = "", port] = bracketed;
    return { host, port: port === undefined ? defaultPort : parsePort(port, "addr") };
  }
  const colon = addr.lastIndexOf(":");
  if (colon === -1) {
    return { host: addr, port: defaultPort };
  }
  if (addr.indexOf(":") !== colon) {
    fail("addr", 'must be "host:port"; write an IPv6 address in brackets, like "[::1]:3306"');
  }
  const host = addr.slice(0, colon);
  if (host === "") {
    fail("addr", 'must be "host:port"');
  }
  return { host, port: parsePort(addr.slice(colon + 1), "addr") };
}

interface UrlParts {
  host?: string;
  port?: number;
  user?: string;
  password?: string;
  database?: string;
}

function parseUrl(text: string): UrlParts {
  const usage = "must be a URL like mysql://user:password@host:3306/database";
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    fail("url", usage);
  }
  if (url.protocol !== "mysql:" || url.hostname === "") {
    fail("url", usage);
  }
  // Silently ignored URL parameters are how TLS got lost before: refuse them.
  if (url.search !== "" || url.hash !== "") {
    fail("url", "takes no query or fragment; use the tls, poolSize … options instead");
  }
  const parts: UrlParts = { host: url.hostname.replace(/^\[(.*)\]$/, "$1") };
  if (url.port !== "") parts.port = parsePort(url.port, "url");
  try {
    if (url.username !== "") parts.user = decodeURIComponent(url.username);
    if (url.password !== "") parts.password = decodeURIComponent(url.password);
    const database = decodeURIComponent(url.pathname.replace(/^\//, ""));
    if (database !== "") parts.database = database;
  } catch {
    fail("url", "has a malformed percent-encoding");
  }
  return parts;
}

function integer(value: number | undefined, fallback: number, option: string, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min || value > max) {
    fail(option, `must be an integer from ${min} to ${max}, got ${value}`);
  }
  return value;
}

async function readPem(path: unknown, option: string): Promise<string | undefined> {
  if (path === undefined) return undefined;
  if (typeof path !== "string" || path === "") {
    fail(option, "must be the path of a PEM file");
  }
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    fail(option, `cannot read ${JSON.stringify(path)}: ${(error as NodeJS.ErrnoException).code ?? "error"}`);
  }
}

/**
 * mysql2 verifies the certificate's host name only with verifyIdentity, and
 * takes the SNI name from the host it connects to: both are set here so that
 * `tls: true` really means "encrypted and authenticated".
 */
async function sslOptions(tls: boolean | MysqlTlsOptions | undefined): Promise<SslOptions | undefined> {
  if (tls === undefined || tls === false) return undefined;
  if (tls === true) return { rejectUnauthorized: true, verifyIdentity: true };
  if (typeof tls !== "object" || tls === null || Array.isArray(tls)) {
    fail("tls", "must be true, false or an object");
  }
  for (const key of Object.keys(tls)) {
    if (!tlsKeys.has(key)) fail(`tls.${key}`, `is unknown; tls takes: ${[...tlsKeys].join(", ")}`);
  }
  const { rejectUnauthorized = true, servername } = tls;
  if (typeof rejectUnauthorized !== "boolean") fail("tls.rejectUnauthorized", "must be true or false");
  if (servername !== undefined && (typeof servername !== "string" || servername === "")) {
    fail("tls.servername", "must be a non-empty host name");
  }
  if ((tls.cert === undefined) !== (tls.key === undefined)) {
    fail(
      tls.cert === undefined ? "tls.cert" : "tls.key",
      "must be given together with the other of tls.cert and tls.key",
    );
  }
  const [ca, cert, key] = await Promise.all([
    readPem(tls.ca, "tls.ca"),
    readPem(tls.cert, "tls.cert"),
    readPem(tls.key, "tls.key"),
  ]);
  return {
    rejectUnauthorized,
    verifyIdentity: rejectUnauthorized,
    ...(ca === undefined ? {} : { ca }),
    ...(cert === undefined ? {} : { cert }),
    ...(key === undefined ? {} : { key }),
  };
}

/** Checks the options and builds the pool configuration; throws ProviderConfigError. */
export async function mysqlConfig(options: MysqlStorageOptions): Promise<MysqlConfig> {
  const fromUrl = options.url === undefined ? {} : parseUrl(options.url);
  const addr = options.addr === undefined ? undefined : parseAddr(options.addr);
  const host = addr?.host ?? fromUrl.host ?? "127.0.0.1";
  const port = addr?.port ?? fromUrl.port ?? defaultPort;
  const database = options.database ?? fromUrl.database;
  if (database === undefined || database === "") {
    fail("database", "is required (or the path of url)");
  }
  const tablePrefix = options.tablePrefix ?? "stategate_";
  if (!prefixPattern.test(tablePrefix)) {
    fail("tablePrefix", `must be 1-32 letters, digits or underscores, got ${JSON.stringify(tablePrefix)}`);
  }
  const poolSize = integer(options.poolSize, 10, "poolSize", 1, 1000);
  const connectTimeout = integer(options.connectTimeoutMs, 10_000, "connectTimeoutMs", 1, 600_000);
  const ssl = await sslOptions(options.tls);
  const servername = typeof options.tls === "object" ? options.tls.servername : undefined;

  const pool: PoolOptions = {
    // With a servername, mysql2 must believe it talks to that name (it drives
    // SNI and the certificate check from `host`) while the socket goes to addr.
    host: servername ?? host,
    port,
    user: options.user ?? fromUrl.user ?? "root",
    password: options.password ?? fromUrl.password ?? "",
    database,
    connectionLimit: poolSize,
    maxIdle: poolSize,
    idleTimeout: 60_000,
    waitForConnections: true,
    queueLimit: 0,
    connectTimeout,
    enableKeepAlive: true,
    // utf8mb4 both ways, and a binary collation so literals and parameters
    // never compare case- or accent-blind. It still pads trailing spaces:
    // key columns and string filters use NO PAD or byte comparisons instead.
    charset: "UTF8MB4_BIN",
    // BIGINT columns as exact strings (event times are ns and exceed 2^53);
    // JSON as raw text so both MariaDB and MySQL 8 go through one JSON.parse.
    supportBigNumbers: true,
    bigNumberStrings: true,
    jsonStrings: true,
    multipleStatements: false,
    // Search shapes vary with filter terms; the server caps prepared
    // statements for everyone (max_prepared_stmt_count), so keep ours few.
    maxPreparedStatements: 128,
    ...(ssl === undefined ? {} : { ssl }),
    ...(servername === undefined
      ? {}
      : {
          stream: () => {
            const socket = net.connect({ host, port });
            socket.setNoDelay(true);
            socket.setKeepAlive(true);
            return socket;
          },
        }),
  };
  return { pool, tablePrefix };
}
