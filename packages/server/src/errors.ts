import { Code, ConnectError } from "@connectrpc/connect";
import {
  ProviderClosedError,
  ProviderTimeoutError,
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
  // A timeout is DEADLINE_EXCEEDED only when the backend said so itself: it is up and
  // answering, and ended this operation at its own time limit (PostgreSQL's statement or
  // lock timeout, MySQL's lock wait timeout). Every timer on our side (a Redis or Memcached
  // command timeout, a NATS or AMQP publish, a pg read timeout, a connect timeout) cannot
  // tell a slow backend from one that is gone, and a backend that is down or unreachable
  // must read UNAVAILABLE, the code clients retry elsewhere on: those stay UNAVAILABLE.
  // A call whose own deadline passes is DEADLINE_EXCEEDED already (abortedError).
  if (err instanceof ProviderTimeoutError) {
    return {
      error: new ConnectError(`a backend ran out of time (request id ${requestId})`, Code.DeadlineExceeded),
      internal: true,
    };
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
export function abortedError(signal: { readonly reason: unknown }): ConnectError {
  const reason: unknown = signal.reason;
  if (reason instanceof ConnectError && keptWhenAborted.has(reason.code)) return reason;
  return new ConnectError("the client left", Code.Canceled, undefined, undefined, reason);
}

/**
 * The HTTP status that goes with each code: every REST error, and a GraphQL
 * request refused before it runs (see front/graphql/errors.ts). README's
 * "Error codes and HTTP statuses" lists it, kept equal by a test. It is
 * connect-es's `codeToHttpStatus` but for FAILED_PRECONDITION: 412, not 400, so
 * a REST client tells "the state is not as the call requires" (an Unlock with
 * another holder's token) from bad input by the status alone.
 */
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

/**
 * The request id of a failed call, from its error's metadata. An error
 * raised in-process carries the call's headers and trailers merged, and
 * both hold the id, which `get` joins ("id, id"); an id has no comma (see
 * the request id rule).
 */
export function errorRequestId(err: ConnectError): string | undefined {
  return err.metadata.get("x-request-id")?.split(",")[0]?.trim() || undefined;
}
