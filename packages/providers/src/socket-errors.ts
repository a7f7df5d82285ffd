/**
 * Node's socket and DNS error codes, for every adapter's error mapping: each
 * means the server cannot be reached or went away, never that a call was
 * wrong. The reasons are generic, as provider messages must be: no address.
 */

const lost = "lost the connection to the server";

// What each code tells an operator about the server.
const reasons: Record<string, string> = {
  ECONNREFUSED: "cannot reach the server",
  ENOTFOUND: "cannot reach the server",
  EAI_AGAIN: "cannot reach the server",
  EHOSTUNREACH: "cannot reach the server",
  ENETUNREACH: "cannot reach the server",
  ETIMEDOUT: "timed out reaching the server",
  ECONNRESET: lost,
  ECONNABORTED: lost,
  EPIPE: lost,
};

/** What a Node socket or DNS error `code` says about the server, or undefined when `code` is not one. */
export function socketErrorReason(code: unknown): string | undefined {
  return typeof code === "string" && Object.hasOwn(reasons, code) ? reasons[code] : undefined;
}

/** True when `code` is a Node socket or DNS error code: the server cannot be reached, or went away. */
export function isSocketError(code: unknown): boolean {
  return socketErrorReason(code) !== undefined;
}
