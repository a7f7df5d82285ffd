/**
 * The one place where ioredis and Redis failures become provider errors: a
 * broken, slow or refused connection, and server replies that mean the server
 * cannot serve now (LOADING, READONLY, OOM …). Messages stay generic (no host
 * names or credentials); the driver's error is kept as `cause` for the log.
 */
import { ProviderClosedError, ProviderUnavailableError } from "../errors.js";
import { isSocketError } from "../socket-errors.js";

const provider = "redis";

// The first word of a Redis error reply, and what it tells an operator. Any
// other reply (WRONGTYPE, ERR …) is a bug or a foreign key, not an outage.
const replies: Record<string, string> = {
  NOAUTH: "authentication failed",
  WRONGPASS: "authentication failed",
  NOPERM: "the user lacks a permission the cache needs",
  LOADING: "the server is loading its data",
  READONLY: "the server is a read-only replica",
  MASTERDOWN: "the server lost its primary",
  BUSY: "the server is busy",
  TRYAGAIN: "the server is busy",
  CLUSTERDOWN: "the cluster is down",
  OOM: "the server is out of memory",
  MISCONF: "the server refuses writes",
};

/** Why a failure counts as an outage, or undefined when it does not. */
function outage(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  const name = error instanceof Error ? error.name : "";
  if (name === "ReplyError") {
    const word = /^[A-Z]+/.exec(message)?.[0] ?? "";
    // Redis before 6 answers a wrong password with a plain ERR.
    return Object.hasOwn(replies, word)
      ? replies[word]
      : /invalid password/i.test(message)
        ? replies.NOAUTH
        : undefined;
  }
  if (isSocketError(code)) {
    return "cannot reach the server";
  }
  if (
    typeof code === "string" &&
    (code.startsWith("ERR_SSL") || code.startsWith("ERR_TLS") || code.includes("CERT") || code.includes("SIGNATURE"))
  ) {
    return "the TLS handshake with the server failed";
  }
  if (/timed out|timeout/i.test(message)) {
    return "timed out";
  }
  // MaxRetriesPerRequestError: the connection broke (or never came up) while
  // the command waited; "Connection is closed." and "Stream isn't writeable":
  // no connection at all.
  if (
    name === "MaxRetriesPerRequestError" ||
    /connection is closed|stream isn't writeable|connection (lost|reset)/i.test(message)
  ) {
    return "cannot reach the server";
  }
  return undefined;
}

/**
 * The error of a call made while the client waits to retry a connection
 * attempt that failed: the server is known to be down, so the call fails at
 * once. `connectionError`, the attempt's error, tells why and is the cause.
 */
export function redisUnreachable(connectionError: unknown): ProviderUnavailableError {
  const why = connectionError === undefined ? undefined : outage(connectionError);
  return new ProviderUnavailableError(provider, why ?? "cannot reach the server", { cause: connectionError });
}

/**
 * Maps any failure of a Redis call to the error the adapter throws:
 * ProviderUnavailableError for an outage, a plain Error for anything else.
 * `connectionError` is the last error the client reported while connecting;
 * when the call itself only says the connection is gone, it tells why (a
 * refused password, a failed TLS handshake) and becomes the cause.
 */
export function redisError(error: unknown, connectionError?: unknown): Error {
  if (error instanceof ProviderUnavailableError || error instanceof ProviderClosedError) {
    return error;
  }
  const reason = outage(error);
  if (reason === "cannot reach the server" && connectionError !== undefined && outage(connectionError) !== undefined) {
    return redisUnreachable(connectionError);
  }
  if (reason !== undefined) {
    return new ProviderUnavailableError(provider, reason, { cause: error });
  }
  return new Error(`${provider}: the server failed the request`, { cause: error });
}
