/**
 * The one place where amqplib and socket failures become stategate errors.
 * Messages are generic on purpose: they may reach a client, so they never
 * carry the URL, host or password. The original error stays as `cause`, for
 * the log.
 */
import { ProviderClosedError, ProviderUnavailableError } from "../errors.js";
import { isSocketError } from "../socket-errors.js";

function reason(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  if (isSocketError(code)) {
    return "cannot reach the broker";
  }
  if (message === "connect ETIMEDOUT") {
    return "cannot reach the broker";
  }
  if (
    typeof code === "string" &&
    (code.startsWith("ERR_SSL") || code.startsWith("ERR_TLS") || code.includes("CERT") || code.includes("SIGNATURE"))
  ) {
    return "the TLS handshake with the broker failed";
  }
  if (code === 403 || message.includes("ACCESS-REFUSED") || message.includes("ACCESS_REFUSED")) {
    return "the broker refused the credentials";
  }
  if (message.includes("Expected ConnectionOpenOk")) {
    // RabbitMQ answers an unknown or forbidden vhost by closing the connection.
    return "the broker refused the virtual host";
  }
  if (
    (error instanceof Error && error.name === "IllegalOperationError") ||
    /\b(closed|closing|ended)\b/i.test(message) ||
    code === 320
  ) {
    return "the connection to the broker was lost";
  }
  return "the broker failed the request";
}

/** Maps any failure of an AMQP call to ProviderUnavailableError (or passes stategate errors through). */
export function amqpError(error: unknown): Error {
  if (error instanceof ProviderUnavailableError || error instanceof ProviderClosedError) {
    return error;
  }
  return new ProviderUnavailableError("amqp", reason(error), { cause: error });
}

/** The error of a call made while the adapter has no connection. */
export function amqpDisconnected(): ProviderUnavailableError {
  return new ProviderUnavailableError("amqp", "not connected to the broker (reconnecting)");
}
