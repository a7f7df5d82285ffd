/**
 * Turns MysqlStorageOptions into mysql2 pool options, once, at start-up: a bad
 * value stops the gateway with a ProviderConfigError naming the option, and
 * TLS files are read here so a missing certificate fails the start, not the
 * first request. Messages never echo a URL or password.
 */
import net from "node:net";
import type { PoolOptions, SslOptions } from "mysql2/promise";
import { optionChecker } from "../options.js";
import type { MysqlStorageOptions, MysqlTlsOptions } from "./mysql.js";

/** Everything createMysqlStorage needs, checked. */
export interface MysqlConfig {
  pool: PoolOptions;
  tablePrefix: string;
}

const defaultPort = 3306;
const prefixPattern = /^[A-Za-z0-9_]{1,32}$/;
const check = optionChecker('storage provider "mysql"');

/**
 * mysql2 verifies the certificate's host name only with verifyIdentity, and
 * takes the SNI name from the host it connects to: both are set here so that
 * `tls: true` really means "encrypted and authenticated".
 */
function sslOptions(tls: boolean | MysqlTlsOptions | undefined): SslOptions | undefined {
  if (tls === undefined || tls === false) return undefined;
  const { ca, cert, key, rejectUnauthorized = true } = check.tls(tls);
  return {
    rejectUnauthorized,
    verifyIdentity: rejectUnauthorized,
    ...(ca === undefined ? {} : { ca: ca as Buffer }),
    ...(cert === undefined ? {} : { cert: cert as Buffer }),
    ...(key === undefined ? {} : { key: key as Buffer }),
  };
}

/**
 * Checks the options and builds the mysql2 pool configuration the adapter
 * uses, and its table prefix; throws ProviderConfigError.
 *
 * @example
 * const { pool, tablePrefix } = mysqlConfig({ addr: "127.0.0.1:3306", database: "test" });
 */
export function mysqlConfig(options: MysqlStorageOptions): MysqlConfig {
  const fromUrl =
    options.url === undefined
      ? undefined
      : check.url(options.url, ["mysql"], "mysql://user:password@host:3306/database");
  const addr = options.addr === undefined ? undefined : check.address("addr", options.addr, defaultPort);
  const host = addr?.host ?? fromUrl?.host ?? "127.0.0.1";
  const port = addr?.port ?? fromUrl?.port ?? defaultPort;
  const database = options.database ?? (fromUrl?.path || undefined);
  if (database === undefined || database === "") {
    check.fail("database", "given (or be the path of url)");
  }
  const tablePrefix = options.tablePrefix ?? "stategate_";
  if (!prefixPattern.test(tablePrefix)) {
    check.fail("tablePrefix", `1-32 letters, digits or underscores, got ${JSON.stringify(tablePrefix)}`);
  }
  const poolSize = check.integer("poolSize", options.poolSize, 10, 1, 1000);
  const connectTimeout = check.integer("connectTimeoutMs", options.connectTimeoutMs, 10_000, 1, 600_000);
  const ssl = sslOptions(options.tls);
  const servername = typeof options.tls === "object" ? options.tls.servername : undefined;

  const pool: PoolOptions = {
    // With a servername, mysql2 must believe it talks to that name (it drives
    // SNI and the certificate check from `host`) while the socket goes to addr.
    host: servername ?? host,
    port,
    user: options.user ?? fromUrl?.user ?? "root",
    password: options.password ?? fromUrl?.password ?? "",
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
    // A commit sends its statements as one text (mysql-commit.ts); every other
    // statement is prepared (execute), where the server takes one statement only.
    multipleStatements: true,
    // No long stack traces: mysql2 otherwise captures the caller's stack on
    // every query (Error.captureStackTrace), the top JS function in the
    // gateway's CPU profile under load (BENCHMARKS.md). Errors still carry
    // mysql2's own stack, and the call is in the log through its request id.
    trace: false,
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
