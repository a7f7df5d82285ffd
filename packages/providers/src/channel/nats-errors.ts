/**
 * The one place where `nats` client and socket failures become stategate
 * errors. Messages are generic on purpose: they may reach a client, so they
 * never carry the server list, user, password or token. The original error
 * stays as `cause`, for the log.
 */
import { ErrorCode } from "nats";
import { ProviderClosedError, ProviderUnavailableError } from "../errors.js";
import { isSocketError } from "../socket-errors.js";

const credentials = new Set<string>([
  ErrorCode.AuthorizationViolation,
  ErrorCode.AuthenticationExpired,
  ErrorCode.AuthenticationTimeout,
  ErrorCode.AccountExpired,
  ErrorCode.BadAuthentication,
  ErrorCode.BadCreds,
]);

const lost = new Set<string>([
  ErrorCode.ConnectionClosed,
  ErrorCode.ConnectionDraining,
  ErrorCode.Disconnect,
  ErrorCode.SubClosed,
]);

function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

function isTls(code: string): boolean {
  return (
    code === ErrorCode.Tls ||
    code.startsWith("ERR_SSL") ||
    code.startsWith("ERR_TLS") ||
    code.includes("CERT") ||
    code.includes("SIGNATURE") ||
    code.startsWith("UNABLE_TO_")
  );
}

function reason(error: unknown): string {
  const code = codeOf(error);
  // The client wraps socket failures: CONNECTION_REFUSED around ECONNREFUSED, TLS around a node TLS error.
  const inner = codeOf((error as { chainedError?: unknown } | null)?.chainedError);
  const message = error instanceof Error ? error.message : String(error);
  for (const c of [inner, code]) {
    if (c !== undefined && isTls(c)) return "the TLS handshake with the server failed";
  }
  if (code === ErrorCode.ConnectionRefused || isSocketError(code)) {
    return "cannot reach the server";
  }
  if (code === ErrorCode.ConnectionTimeout || code === ErrorCode.Timeout) {
    return "the server did not answer in time";
  }
  if (code !== undefined && credentials.has(code)) {
    return "the server refused the credentials";
  }
  if (code === ErrorCode.ServerOptionNotAvailable && message === "tls") {
    return "TLS is required but the server does not offer it";
  }
  if (code === ErrorCode.PermissionsViolation) {
    return "the server denied the permission for the subject";
  }
  if (code !== undefined && lost.has(code)) {
    return "the connection to the server was lost";
  }
  return "the server failed the request";
}

/** Maps any failure of a NATS call to ProviderUnavailableError (or passes stategate errors through). */
export function natsError(error: unknown): Error {
  if (error instanceof ProviderUnavailableError || error instanceof ProviderClosedError) {
    return error;
  }
  return new ProviderUnavailableError("nats", reason(error), { cause: error });
}

/** The error of a call made while the client is reconnecting. */
export function natsDisconnected(): ProviderUnavailableError {
  return new ProviderUnavailableError("nats", "not connected to the server (reconnecting)");
}

/** The error of a call made after the client gave up reconnecting (maxReconnectAttempts). */
export function natsGaveUp(cause: unknown): ProviderUnavailableError {
  return new ProviderUnavailableError("nats", "gave up reconnecting to the server", { cause });
}

/** The error of a publish or ping whose round trip did not come back in time. */
export function natsTimeout(): ProviderUnavailableError {
  return new ProviderUnavailableError("nats", "the server did not answer in time");
}
