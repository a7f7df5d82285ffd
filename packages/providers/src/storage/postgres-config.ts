/**
 * Turns PostgresStorageOptions into pg pool options, once, at start-up: a bad
 * value stops the gateway with a ProviderConfigError naming the option, and
 * TLS files are read here so a missing certificate fails the start, not the
 * first request. Messages never echo a URL or password.
 */
import type { ConnectionOptions } from "node:tls";
import pg, { type PoolConfig } from "pg";
import { optionChecker } from "../options.js";
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
const check = optionChecker('storage provider "postgres"');

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

/**
 * pg asks the server for TLS first and fails when it declines (no plaintext
 * fallback); Node then checks the certificate against the CAs and the host
 * name (or `servername`, which pg hands to tls.connect as given). So
 * `tls: true` means "encrypted and authenticated" without further settings.
 */
function sslOptions(tls: boolean | PostgresTlsOptions | undefined): ConnectionOptions | false {
  if (tls === undefined || tls === false) return false;
  return { rejectUnauthorized: true, ...check.tls(tls) };
}

/** Checks the options and builds the pool configuration; throws ProviderConfigError. */
export function postgresConfig(options: PostgresStorageOptions): PostgresConfig {
  const fromUrl =
    options.url === undefined
      ? undefined
      : check.url(options.url, ["postgres", "postgresql"], "postgres://user:password@host:5432/database");
  const addr = options.addr === undefined ? undefined : check.address("addr", options.addr, defaultPort);
  const database = options.database ?? (fromUrl?.path || undefined);
  if (database === undefined || database === "") {
    check.fail("database", "given (or be the path of url)");
  }
  const schema = options.schema ?? "public";
  if (!schemaPattern.test(schema)) {
    check.fail(
      "schema",
      `1-63 letters, digits or underscores, not starting with a digit or pg_, got ${JSON.stringify(schema)}`,
    );
  }
  const tablePrefix = options.tablePrefix ?? "stategate_";
  if (!prefixPattern.test(tablePrefix)) {
    check.fail("tablePrefix", `1-32 letters, digits or underscores, got ${JSON.stringify(tablePrefix)}`);
  }
  const poolSize = check.integer("poolSize", options.poolSize, 10, 1, 1000);
  const connectTimeout = check.integer("connectTimeoutMs", options.connectTimeoutMs, 10_000, 1, 600_000);
  const statementTimeout = check.integer("statementTimeoutMs", options.statementTimeoutMs, 30_000, 1, 3_600_000);
  const password = options.password ?? fromUrl?.password ?? "";

  const pool: PoolConfig = {
    host: addr?.host ?? fromUrl?.host ?? "127.0.0.1",
    port: addr?.port ?? fromUrl?.port ?? defaultPort,
    user: options.user ?? fromUrl?.user ?? "postgres",
    // A function, because pg treats an empty string as "not given" and would
    // then read PGPASSWORD or ~/.pgpass: only the spec decides.
    password: () => password,
    database,
    // TLS off is said explicitly: left undefined, pg would read PGSSLMODE.
    ssl: sslOptions(options.tls),
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
