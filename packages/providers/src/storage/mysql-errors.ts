/**
 * The one place where mysql2 and server errors become stategate's provider
 * errors. Messages made here are generic on purpose: they end up in logs and
 * in wrapped errors, so they never carry the address, credentials or SQL. The
 * original error rides along as `cause` for the gateway's internal log only.
 */
import {
  ProviderClosedError,
  ProviderTimeoutError,
  ProviderUnavailableError,
  ValueTooLargeError,
  VersionConflictError,
} from "../errors.js";
import { socketErrorReason } from "../socket-errors.js";

const provider = "mysql";

// Keyed by mysql2's `code`: mysql2's own protocol codes and the server's ER_
// names (Node's socket codes are in socket-errors.ts). All of them mean "this
// backend cannot serve now".
const unavailable: Record<string, string> = {
  PROTOCOL_SEQUENCE_TIMEOUT: "timed out reaching the server",
  PROTOCOL_CONNECTION_LOST: "lost the connection to the server",
  ER_CONNECTION_KILLED: "lost the connection to the server",
  ER_CLIENT_INTERACTION_TIMEOUT: "lost the connection to the server",
  ER_CON_COUNT_ERROR: "the server has too many connections",
  ER_TOO_MANY_USER_CONNECTIONS: "the server has too many connections",
  ER_USER_LIMIT_REACHED: "the server has too many connections",
  ER_SERVER_SHUTDOWN: "the server is shutting down",
  ER_ACCESS_DENIED_ERROR: "the server refused the credentials",
  ER_DBACCESS_DENIED_ERROR: "the server refused access to the database",
  ER_BAD_DB_ERROR: "the database does not exist",
  HANDSHAKE_NO_SSL_SUPPORT: "the server does not offer TLS, which the tls option requires",
  HANDSHAKE_SSL_ERROR: "the TLS handshake with the server failed",
};

// The server itself ended the statement at a time limit: it is up and
// answering, the call just took too long. Keyed by errno, as MariaDB's
// max_statement_time (1969) has no name in mysql2's table, which is MySQL's.
// A timeout on our side (ETIMEDOUT, PROTOCOL_SEQUENCE_TIMEOUT) is not one of
// these: a server that does not answer may be gone.
const serverTimeouts: Record<number, string> = {
  1205: "timed out waiting for a lock", // ER_LOCK_WAIT_TIMEOUT: innodb_lock_wait_timeout
  1969: "the statement ran past the server's time limit", // MariaDB ER_STATEMENT_TIMEOUT: max_statement_time
  3024: "the statement ran past the server's time limit", // MySQL ER_QUERY_TIMEOUT: max_execution_time
};

// The server's ER_NET_PACKET_TOO_LARGE and the client library's CR_ twin.
const tooLarge = new Set(["ER_NET_PACKET_TOO_LARGE", "CR_NET_PACKET_TOO_LARGE"]);

interface DriverError {
  code?: unknown;
  errno?: unknown;
  fatal?: unknown;
  message?: unknown;
  sqlMessage?: unknown;
}

function driverError(error: unknown): DriverError {
  return typeof error === "object" && error !== null ? (error as DriverError) : {};
}

/** True for a deadlock the server resolved by rolling this transaction back: safe to run it again. */
export function isDeadlock(error: unknown): boolean {
  return driverError(error).code === "ER_LOCK_DEADLOCK";
}

/**
 * True when a duplicate key hit the UNIQUE (domain, type, key, version) index
 * of the events table: another writer took this version, the second fence
 * behind the entity row lock. The index is named in the server's message.
 */
export function isVersionFence(error: unknown): boolean {
  const { code, sqlMessage } = driverError(error);
  return code === "ER_DUP_ENTRY" && typeof sqlMessage === "string" && sqlMessage.includes("events_entity_version");
}

/** True when the connection that raised `error` can no longer be used and must not go back to the pool. */
export function isFatal(error: unknown): boolean {
  return driverError(error).fatal === true;
}

/** What the caller knows that the driver error does not: the version race or the size involved. */
export interface ErrorContext {
  /** For a version fence hit: the version the commit expected and the one storage holds now. */
  conflict?: { expected: number; actual: number };
  /** For a packet that was too large: the server's limit and the size of the value sent. */
  size?: { limitBytes: number; actualBytes: number };
}

/**
 * Maps anything a mysql2 call threw to the error a Storage method throws:
 * ProviderUnavailableError (ProviderTimeoutError for a statement the server
 * ended at its time limit), VersionConflictError, ValueTooLargeError or
 * ProviderClosedError; other errors (our own, or SQL errors that are bugs)
 * are returned unchanged for the gateway to log as internal.
 */
export function mysqlError(error: unknown, context: ErrorContext = {}): unknown {
  const { code, errno, fatal, message } = driverError(error);
  if (typeof errno === "number" && Object.hasOwn(serverTimeouts, errno)) {
    return new ProviderTimeoutError(provider, serverTimeouts[errno] as string, { cause: error });
  }
  if (typeof code === "string") {
    const reason = socketErrorReason(code) ?? (Object.hasOwn(unavailable, code) ? unavailable[code] : undefined);
    if (reason !== undefined) {
      return new ProviderUnavailableError(provider, reason, { cause: error });
    }
    if (tooLarge.has(code)) {
      const { limitBytes = 0, actualBytes = 0 } = context.size ?? {};
      return new ValueTooLargeError(limitBytes, actualBytes);
    }
    if (isVersionFence(error) && context.conflict !== undefined) {
      return new VersionConflictError(context.conflict.expected, context.conflict.actual);
    }
  }
  // mysql2 has no code for a call racing close(): it only says so in words.
  if (message === "Pool is closed.") {
    return new ProviderClosedError(provider);
  }
  // Any other fatal error killed the connection mid-call.
  if (fatal === true) {
    return new ProviderUnavailableError(provider, "lost the connection to the server", { cause: error });
  }
  return error;
}
