/**
 * The one place where memcached failures become provider errors: a broken or
 * slow connection, and binary-protocol statuses the adapter does not expect.
 * Messages stay generic (no host names or credentials); the driver's error is
 * kept as `cause` for the log.
 */
import { ProviderUnavailableError, ValueTooLargeError } from "../errors.js";

/** Binary-protocol response statuses the adapter reads. */
export const status = {
  ok: 0x00,
  notFound: 0x01,
  /** The key exists (add), or its CAS no longer matches (set/delete with a CAS). */
  exists: 0x02,
  tooLarge: 0x03,
  notStored: 0x05,
  authError: 0x20,
  outOfMemory: 0x82,
  busy: 0x85,
  temporaryFailure: 0x86,
} as const;

const provider = "memcached";

/** Maps a failed exchange (refused, reset, timed out, SASL refused) to ProviderUnavailableError. */
export function connectionError(cause: unknown): ProviderUnavailableError {
  // memjs reports a SASL refusal as a bare string and timeouts as plain Errors
  // told apart only by their text.
  const text = cause instanceof Error ? cause.message : String(cause);
  if (/authentication/i.test(text)) {
    return new ProviderUnavailableError(provider, "authentication failed", { cause });
  }
  if (/timed out/i.test(text)) {
    return new ProviderUnavailableError(provider, "timed out", { cause });
  }
  return new ProviderUnavailableError(provider, "cannot reach the server", { cause });
}

/** Sizes to report when the server refuses an item as too large. */
export interface ItemSizes {
  limitBytes: number;
  actualBytes: number;
}

/** Maps a response status that is not an answer the caller handles to the error it means. */
export function statusError(code: number, sizes?: ItemSizes): Error {
  switch (code) {
    case status.tooLarge:
      if (sizes !== undefined) {
        return new ValueTooLargeError(sizes.limitBytes, sizes.actualBytes);
      }
      break;
    case status.authError:
      return new ProviderUnavailableError(provider, "authentication failed");
    case status.outOfMemory:
      return new ProviderUnavailableError(provider, "the server is out of memory");
    case status.busy:
    case status.temporaryFailure:
      return new ProviderUnavailableError(provider, "the server is busy");
  }
  return new Error(`${provider}: unexpected response status 0x${code.toString(16).padStart(2, "0")}`);
}
