/**
 * Turns PostgresStorageOptions into pg pool options, once, at start-up: a bad
 * value stops the gateway with a ProviderConfigError naming the option, and
 * TLS files are read here so a missing certificate fails the start, not the
 * first request. Messages never echo a URL or password.
 */
import { readFile } from "node:fs/promises";
import type { ConnectionOptions } from "node:tls";
import pg, { type PoolConfig } from "pg";
import { ProviderConfigError } from "../errors.js";
import type { PostgresStorageOptions, PostgresTlsOptions } from "./postgres.js";

/** Everything createPostgresStorage needs, checked. */
export interface PostgresConfig {
  pool: PoolConfig;
  schema: string;
  tablePrefix: string;
}

const defaultPort = 5432;
const prefixPattern = /^[A-Za-z0-9_]{1,32}$/;
// PostgreSQL keeps names of up to 63 bytes and reserves the pg_ prefix for itself.
const schemaPattern = /^(?!pg_)[A-Za-z_][A-Za-z0-9_]{0,62}$/;
const tlsKeys = new Set(["ca", "cert", "key", "rejectUnauthorized", "servername"]);

// OIDs of the column types the adapter reads.
const int8Oid = 20;
const jsonOid = 114;
const jsonbOid = 3802;

/**
 * The type parsers of this pool only: BIGINT as its exact decimal text (times
 * are ns and exceed 2^53; toEvent turns each column into bigint or number),
 * JSON parsed once. They are given to the pool rather than set on pg.types,
 * so another pg user in the process keeps its own parsers, and one that
 * changes the global ones (setTypeParser(20, parseInt) is common) cannot
 * round our times.
 */
const types: NonNullable<PoolConfig["types"]> = {
  getTypeParser: ((oid: number, format?: "text" | "binary") => {
    if (oid === int8Oid) return (text: string) => text;
    if (oid === jsonOid || oid === jsonbOid) return (text: string) => JSON.parse(text);
    return pg.types.getTypeParser(oid, format ?? "text");
  }) as NonNullable<PoolConfig["types"]>["getTypeParser"],
};

function fail(option: string, message: string): never {
  throw new ProviderConfigError(`storage provider "postgres": option "${option}" ${message}`, option);
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
    fail("addr", 'must be "host:port"; write an IPv6 address in brackets, like "[::1]:5432"');
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
  const usage = "must be a URL like postgres://user:password@host:5432/database";
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    fail("url", usage);
  }
  if ((url.protocol !== "postgres:" && url.protocol !== "postgresql:") || url.hostname === "") {
    fail("url", usage);
  }
  // libpq-style parameters (sslmode=…) silently ignored are how TLS gets lost: refuse them.
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
 * pg asks the server for TLS first and fails when it declines (no plaintext
 * fallback); Node then checks the certificate against the CAs and the host
 * name (or `servername`, which pg hands to tls.connect as given). So
 * `tls: true` means "encrypted and authenticated" without further settings.
 */
async function sslOptions(tls: boolean | PostgresTlsOptions | undefined): Promise<ConnectionOptions | false> {
  if (tls === undefined || tls === false) return false;
  if (tls === true) return { rejectUnauthorized: true };
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
    ...(servername === undefined ? {} : { servername }),
    ...(ca === undefined ? {} : { ca }),
    ...(cert === undefined ? {} : { cert }),
    ...(key === undefined ? {} : { key }),
  };
}

/** Checks the options and builds the pool configuration; throws ProviderConfigError. */
export async function postgresConfig(options: PostgresStorageOptions): Promise<PostgresConfig> {
  const fromUrl = options.url === undefined ? {} : parseUrl(options.url);
  const addr = options.addr === undefined ? undefined : parseAddr(options.addr);
  const database = options.database ?? fromUrl.database;
  if (database === undefined || database === "") {
    fail("database", "is required (or the path of url)");
  }
  const schema = options.schema ?? "public";
  if (!schemaPattern.test(schema)) {
    fail(
      "schema",
      `must be 1-63 letters, digits or underscores, not starting with a digit or pg_, got ${JSON.stringify(schema)}`,
    );
  }
  const tablePrefix = options.tablePrefix ?? "stategate_";
  if (!prefixPattern.test(tablePrefix)) {
    fail("tablePrefix", `must be 1-32 letters, digits or underscores, got ${JSON.stringify(tablePrefix)}`);
  }
  const poolSize = integer(options.poolSize, 10, "poolSize", 1, 1000);
  const connectTimeout = integer(options.connectTimeoutMs, 10_000, "connectTimeoutMs", 1, 600_000);
  const statementTimeout = integer(options.statementTimeoutMs, 30_000, "statementTimeoutMs", 1, 3_600_000);
  const password = options.password ?? fromUrl.password ?? "";

  const pool: PoolConfig = {
    host: addr?.host ?? fromUrl.host ?? "127.0.0.1",
    port: addr?.port ?? fromUrl.port ?? defaultPort,
    user: options.user ?? fromUrl.user ?? "postgres",
    // A function, because pg treats an empty string as "not given" and would
    // then read PGPASSWORD or ~/.pgpass: only the spec decides.
    password: () => password,
    database,
    // TLS off is said explicitly: left undefined, pg would read PGSSLMODE.
    ssl: await sslOptions(options.tls),
    max: poolSize,
    idleTimeoutMillis: 30_000,
    // Bounds both opening a connection and waiting for a free one.
    connectionTimeoutMillis: connectTimeout,
    // The server cancels a statement running longer (57014) and keeps the
    // connection; the client-side read timeout, a little later, covers a
    // server or network that stopped answering altogether.
    statement_timeout: statementTimeout,
    query_timeout: statementTimeout + 1000,
    // A gateway that stalls inside a commit holds the position counter's row
    // lock, and every other commit waits on it: the server ends such a session.
    idle_in_transaction_session_timeout: statementTimeout,
    keepAlive: true,
    application_name: "stategate",
    types,
  };
  return { pool, schema, tablePrefix };
}
