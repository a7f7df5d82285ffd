/**
 * The one place where ioredis and Redis failures of the channel become
 * stategate errors. Messages are generic on purpose: they may reach a client,
 * so they never carry the URL, host or password. The original error stays as
 * `cause`, for the log.
 */
import { ProviderClosedError, ProviderUnavailableError } from "../errors.js";
import { isSocketError } from "../socket-errors.js";

// The first word of a Redis error reply that means the server cannot serve
// the channel now, and what it tells an operator.
const replies: Record<string, string> = {
  NOAUTH: "the server refused the credentials",
  WRONGPASS: "the server refused the credentials",
  NOPERM: "the user lacks a permission the channel needs",
  LOADING: "the server is loading its data",
  READONLY: "the server is a read-only replica",
  MASTERDOWN: "the server lost its primary",
  BUSY: "the server is busy",
  TRYAGAIN: "the server is busy",
  CLUSTERDOWN: "the cluster is down",
  OOM: "the server is out of memory",
  MISCONF: "the server refuses writes",
};

function reason(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  const name = error instanceof Error ? error.name : "";
  if (name === "ReplyError") {
    const word = /^[A-Z]+/.exec(message)?.[0] ?? "";
    if (Object.hasOwn(replies, word)) {
      return replies[word] as string;
    }
    if (/invalid password|invalid username-password/i.test(message)) {
      return "the server refused the credentials";
    }
    if (/DB index is out of range|invalid DB index/i.test(message)) {
      return "the server refused the database";
    }
    return "the server failed the request";
  }
  if (isSocketError(code) || message === "connect ETIMEDOUT") {
    return "cannot reach the server";
  }
  if (
    typeof code === "string" &&
    (code.startsWith("ERR_SSL") || code.startsWith("ERR_TLS") || code.includes("CERT") || code.includes("SIGNATURE"))
  ) {
    return "the TLS handshake with the server failed";
  }
  if (/command timed out/i.test(message)) {
    return "the server did not answer in time";
  }
  // MaxRetriesPerRequestError: the connection broke while the command waited;
  // "Connection is closed." and "Stream isn't writeable": no connection at all.
  if (
    name === "MaxRetriesPerRequestError" ||
    name === "AbortError" ||
    /connection is closed|stream isn't writeable|connection (lost|reset)/i.test(message)
  ) {
    return "the connection to the server was lost";
  }
  return "the server failed the request";
}

/**
 * Maps any failure of a Redis call to ProviderUnavailableError (or passes
 * stategate errors through). `connectionError`, the last error a connection
 * reported while connecting, says why when the call only says it has none.
 */
export function redisError(error: unknown, connectionError?: unknown): Error {
  if (error instanceof ProviderUnavailableError || error instanceof ProviderClosedError) {
    return error;
  }
  let why = reason(error);
  if (why === "the connection to the server was lost" && connectionError !== undefined) {
    why = reason(connectionError);
    return new ProviderUnavailableError("redis", why, { cause: connectionError });
  }
  return new ProviderUnavailableError("redis", why, { cause: error });
}

/** The error of a call made while the adapter has no connection. */
export function redisDisconnected(): ProviderUnavailableError {
  return new ProviderUnavailableError("redis", "not connected to the server (reconnecting)");
}

/**
 * Whether a failed group call means the group (or its stream) is gone, as
 * after a server restart or when its last member left: the member joins again.
 */
export function isGroupLost(error: unknown): boolean {
  const message = error instanceof Error ? error.message : String(error);
  return /^(NOGROUP|UNBLOCKED)\b/.test(message);
}
