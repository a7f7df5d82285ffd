/**
 * The one place where pg and server errors become stategate's provider
 * errors. Messages made here are generic on purpose: they end up in logs and
 * in wrapped errors, so they never carry the address, credentials or SQL. The
 * original error rides along as `cause` for the gateway's internal log only.
 */
import { DatabaseError } from "pg";
import {
  ProviderClosedError,
  ProviderTimeoutError,
  ProviderUnavailableError,
  ValueTooLargeError,
  VersionConflictError,
} from "../errors.js";
import { isSocketError, socketErrorReason } from "../socket-errors.js";
import { versionFence } from "./postgres-schema.js";

const provider = "postgres";

const lost = "lost the connection to the server";
const timedOut = "timed out waiting for the server";

// The server itself ended the statement at a time limit (statement_timeout,
// lock_timeout): it is up and answering, the call just took too long. A read
// timeout on our side ("Query read timeout") is not one of these: a server that
// does not answer may be gone.
const serverTimeouts = new Set(["57014", "55P03"]);

// SQLSTATEs that mean "this backend cannot serve now", not "this call is wrong".
// Class 08 (connection exceptions) is matched as a whole below.
const serverStates: Record<string, string> = {
  "57P01": "the server is shutting down", // admin_shutdown: a stop, or pg_terminate_backend
  "57P02": "the server crashed", // crash_shutdown
  "57P03": "the server is not accepting connections now", // cannot_connect_now: starting or stopping
  "57P04": "the database was dropped", // database_dropped
  "57P05": lost, // idle_session_timeout
  "25P03": lost, // idle_in_transaction_session_timeout
  "57014": timedOut, // query_canceled: statement_timeout
  "55P03": timedOut, // lock_not_available: lock_timeout
  "53300": "the server has too many connections", // too_many_connections
  "53100": "the server is out of disk space", // disk_full
  "53200": "the server is out of memory", // out_of_memory
  "25006": "the server is read-only", // read_only_sql_transaction: a standby
  "28000": "the server refused the credentials", // invalid_authorization_specification
  "28P01": "the server refused the credentials", // invalid_password
  "3D000": "the database does not exist", // invalid_catalog_name
};

// pg reports its own connection failures as plain Errors: only the words tell them apart.
const driverMessages: Record<string, string> = {
  "Connection terminated unexpectedly": lost,
  "Connection terminated": lost,
  "Connection terminated due to connection timeout": "timed out reaching the server",
  "timeout expired": "timed out reaching the server",
  "timeout exceeded when trying to connect": "timed out waiting for a free connection",
  "Query read timeout": timedOut,
  "Client has encountered a connection error and is not queryable": lost,
  "Client was closed and is not queryable": lost,
  "The server does not support SSL connections": "the server does not offer TLS, which the tls option requires",
  "There was an error establishing an SSL connection": "the TLS handshake with the server failed",
};

// OpenSSL's certificate verification results, as Node reports them.
const certificateCodes = new Set([
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_REVOKED",
  "CERT_SIGNATURE_FAILURE",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "HOSTNAME_MISMATCH",
  "INVALID_CA",
  "INVALID_PURPOSE",
]);

// program_limit_exceeded: among others "total size of jsonb object elements
// exceeds the maximum" and "string too long to represent as jsonb string".
const tooLarge = new Set(["54000"]);

// Serialization failures and deadlocks: the server rolled the transaction back.
const retryable = new Set(["40001", "40P01"]);

interface DriverError {
  code?: unknown;
  message?: unknown;
  constraint?: unknown;
  errors?: unknown;
}

function driverError(error: unknown): DriverError {
  if (error instanceof AggregateError && Array.isArray(error.errors) && error.errors.length > 0) {
    // Node tries every address of a host name and reports them together.
    return driverError(error.errors[0]);
  }
  return typeof error === "object" && error !== null ? (error as DriverError) : {};
}

function serverState(error: unknown): string | undefined {
  return error instanceof DatabaseError ? error.code : undefined;
}

/** True for a serialization failure or deadlock: the transaction was rolled back and may run again. */
export function isRetryable(error: unknown): boolean {
  const state = serverState(error);
  return state !== undefined && retryable.has(state);
}

/**
 * True when a unique violation hit the UNIQUE (domain, type, key, version)
 * constraint of the events table: another writer took this version, the
 * second fence behind the entity row lock. The server names the constraint.
 */
export function isVersionFence(error: unknown): boolean {
  const { constraint } = driverError(error);
  return serverState(error) === "23505" && typeof constraint === "string" && constraint.endsWith(versionFence);
}

/**
 * True when the connection that raised `error` must not run another
 * statement: it is gone, or a timed-out statement may still occupy it.
 */
export function isFatal(error: unknown): boolean {
  const state = serverState(error);
  if (state !== undefined) {
    return state.startsWith("08") || state.startsWith("57P") || state === "25P03";
  }
  const { code, message } = driverError(error);
  return isSocketError(code) || (typeof message === "string" && Object.hasOwn(driverMessages, message));
}

/** What the caller knows that the driver error does not: the version race or the size involved. */
export interface ErrorContext {
  /** For a version fence hit: the version the commit expected and the one storage holds now. */
  conflict?: { expected: number; actual: number };
  /** For a value over a server limit: that limit and the size of the value sent. */
  size?: { limitBytes: number; actualBytes: number };
}

function unavailableReason(error: unknown): string | undefined {
  const state = serverState(error);
  if (state !== undefined) {
    if (Object.hasOwn(serverStates, state)) return serverStates[state];
    return state.startsWith("08") ? lost : undefined;
  }
  const { code, message } = driverError(error);
  if (typeof code === "string") {
    const socketReason = socketErrorReason(code);
    if (socketReason !== undefined) return socketReason;
    if (certificateCodes.has(code) || code.startsWith("ERR_TLS_") || code.startsWith("ERR_SSL_")) {
      return "the TLS handshake with the server failed";
    }
  }
  if (typeof message === "string" && Object.hasOwn(driverMessages, message)) {
    return driverMessages[message];
  }
  return undefined;
}

/**
 * Maps anything a pg call threw to the error a Storage method throws:
 * ProviderUnavailableError (ProviderTimeoutError for a statement the server
 * ended at its time limit), VersionConflictError, ValueTooLargeError or
 * ProviderClosedError; other errors (our own, or SQL errors that are bugs)
 * are returned unchanged for the gateway to log as internal.
 */
export function postgresError(error: unknown, context: ErrorContext = {}): unknown {
  if (error instanceof ProviderUnavailableError || error instanceof VersionConflictError) {
    return error;
  }
  const reason = unavailableReason(error);
  const state = serverState(error);
  if (reason !== undefined) {
    const timedOutHere = state !== undefined && serverTimeouts.has(state);
    return new (timedOutHere ? ProviderTimeoutError : ProviderUnavailableError)(provider, reason, { cause: error });
  }
  if (state !== undefined && tooLarge.has(state) && context.size !== undefined) {
    return new ValueTooLargeError(context.size.limitBytes, context.size.actualBytes);
  }
  if (isVersionFence(error) && context.conflict !== undefined) {
    return new VersionConflictError(context.conflict.expected, context.conflict.actual);
  }
  // pg has no code for a call racing close(): it only says so in words.
  if (driverError(error).message === "Cannot use a pool after calling end on the pool") {
    return new ProviderClosedError(provider);
  }
  return error;
}
