import { parseTimeout as parseConnectTimeout } from "@connectrpc/connect/protocol-connect";
import { parseTimeout as parseGrpcTimeout } from "@connectrpc/connect/protocol-grpc";
import { GraphQLError } from "graphql";
import { keptDeadline } from "../transport-guards.js";
import { grpcCodeName } from "./errors.js";

/**
 * When the calls of a GraphQL request over HTTP (a query, a mutation, a
 * subscription over Server-Sent Events) must be done by, as a `Date.now()`
 * time: from `connect-timeout-ms`, else `grpc-timeout`, read as REST and the
 * RPC doors read them. The deadline is the whole operation's: each field's
 * call gets what is left of it. Undefined when the request sets none, or one
 * past what a timer can wait (about 24.8 days). A value that is not a timeout
 * refuses the request with INVALID_ARGUMENT (HTTP 400), as on REST.
 *
 * Over WebSocket there is none: headers belong to the socket, which carries
 * many operations, not to one operation. A client ends an operation early by
 * sending its `complete`, which cancels the call under it at once.
 */
export function requestDeadline(header: (name: string) => string | null, now = Date.now()): number | undefined {
  const connect = header("connect-timeout-ms");
  const timeout =
    connect !== null
      ? parseConnectTimeout(connect, Number.MAX_SAFE_INTEGER)
      : parseGrpcTimeout(header("grpc-timeout"), Number.MAX_SAFE_INTEGER);
  if (timeout.error) {
    throw new GraphQLError(timeout.error.rawMessage, {
      extensions: { code: grpcCodeName(timeout.error.code), http: { status: 400 } },
    });
  }
  const asked = keptDeadline(timeout.timeoutMs);
  return asked === undefined ? undefined : now + asked;
}

/**
 * The timeout of a call made now under `deadline`: what is left, at least
 * 1 ms (a passed deadline still ends the call as DEADLINE_EXCEEDED, never
 * as no deadline).
 */
export function remainingMs(deadline: number | undefined, now = Date.now()): number | undefined {
  return deadline === undefined ? undefined : Math.max(1, Math.ceil(deadline - now));
}
