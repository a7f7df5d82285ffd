import { Code, ConnectError } from "@connectrpc/connect";
import {
  ProviderClosedError,
  ProviderUnavailableError,
  ValueTooLargeError,
  VersionConflictError,
} from "@stategate/providers";

/**
 * Turns anything a handler threw into an error that is safe to send. Our own
 * ConnectErrors pass through; provider errors get their code; anything else is
 * INTERNAL with only the request id, while the original goes to the log.
 */
export function toWireError(err: unknown, requestId: string): { error: ConnectError; internal: boolean } {
  if (err instanceof ConnectError) {
    if (err.code === Code.Internal || err.code === Code.Unknown) {
      return { error: new ConnectError(`internal error (request id ${requestId})`, Code.Internal), internal: true };
    }
    return { error: err, internal: false };
  }
  if (err instanceof VersionConflictError) {
    return { error: new ConnectError(err.message, Code.Aborted), internal: false };
  }
  if (err instanceof ValueTooLargeError) {
    return { error: new ConnectError(err.message, Code.ResourceExhausted), internal: false };
  }
  if (err instanceof ProviderUnavailableError || err instanceof ProviderClosedError) {
    return {
      error: new ConnectError(`a backend is unavailable (request id ${requestId})`, Code.Unavailable),
      internal: true,
    };
  }
  return { error: new ConnectError(`internal error (request id ${requestId})`, Code.Internal), internal: true };
}

/** The error every stream still open at shutdown ends with, whatever the door: clients reconnect, to another gateway. */
export function shuttingDown(): ConnectError {
  return new ConnectError("the gateway is shutting down", Code.Unavailable);
}

/** Codes an aborted call keeps: its deadline passed, the gateway cut a stream that fell behind, or it is shutting down. */
const keptWhenAborted = new Set<Code>([Code.DeadlineExceeded, Code.ResourceExhausted, Code.Unavailable]);

/**
 * The error a call ends with once `signal` (its context signal) aborted. A
 * passed deadline, a slow stream cut by the gateway and shutdown keep their
 * code; anything else is the client leaving (a reset stream, a dropped
 * connection, whatever Node reported for it: ECONNRESET, "Premature close", an
 * HTTP/2 INTERNAL_ERROR reset): CANCELED, never INTERNAL.
 */
export function abortedError(signal: AbortSignal): ConnectError {
  const reason: unknown = signal.reason;
  if (reason instanceof ConnectError && keptWhenAborted.has(reason.code)) return reason;
  return new ConnectError("the client left", Code.Canceled, undefined, undefined, reason);
}

/** The HTTP status that goes with each code, for REST and GraphQL. */
export const httpStatus: Record<Code, number> = {
  [Code.Canceled]: 499,
  [Code.Unknown]: 500,
  [Code.InvalidArgument]: 400,
  [Code.DeadlineExceeded]: 504,
  [Code.NotFound]: 404,
  [Code.AlreadyExists]: 409,
  [Code.PermissionDenied]: 403,
  [Code.ResourceExhausted]: 429,
  [Code.FailedPrecondition]: 412,
  [Code.Aborted]: 409,
  [Code.OutOfRange]: 400,
  [Code.Unimplemented]: 501,
  [Code.Internal]: 500,
  [Code.Unavailable]: 503,
  [Code.DataLoss]: 500,
  [Code.Unauthenticated]: 401,
};
