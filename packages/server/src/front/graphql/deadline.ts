import { Code, ConnectError } from "@connectrpc/connect";
import { GraphQLError } from "graphql";
import { httpStatus } from "../../errors.js";
import { requestTimeoutMs } from "../deadline.js";
import { grpcCodeName } from "./errors.js";

/**
 * When the calls of a GraphQL request over HTTP (a query, a mutation, a
 * subscription over Server-Sent Events) must be done by, as a `Date.now()`
 * time: from `connect-timeout-ms`, else `grpc-timeout`, read as REST and the
 * RPC doors read them. The deadline is the whole operation's: each field's
 * call gets what is left of it. Undefined when the request sets none, or one
 * past what a timer can wait (about 24.8 days). A value that is not a timeout
 * refuses the request with INVALID_ARGUMENT (HTTP 400), and one under 1 ms
 * with DEADLINE_EXCEEDED (HTTP 504) before any field runs, as on REST.
 *
 * Over WebSocket there is none: headers belong to the socket, which carries
 * many operations, not to one operation. A client ends an operation early by
 * sending its `complete`, which cancels the call under it at once.
 */
export function requestDeadline(header: (name: string) => string | null, now = Date.now()): number | undefined {
  let timeoutMs: number | undefined;
  try {
    timeoutMs = requestTimeoutMs(header);
  } catch (err) {
    const { code, rawMessage } = ConnectError.from(err);
    throw new GraphQLError(rawMessage, {
      extensions: { code: grpcCodeName(code), http: { status: httpStatus[code] } },
    });
  }
  return timeoutMs === undefined ? undefined : now + timeoutMs;
}

/**
 * The timeout of a call made now under `deadline`: what is left. Once under
 * 1 ms is left the deadline has passed: DEADLINE_EXCEEDED, thrown before the
 * call is made (a timeout of 0 would be no deadline to the client, and 1 ms
 * would let a quick call still run).
 */
export function remainingMs(deadline: number | undefined, now = Date.now()): number | undefined {
  if (deadline === undefined) return undefined;
  const left = Math.ceil(deadline - now);
  if (left < 1) throw new ConnectError("the operation timed out", Code.DeadlineExceeded);
  return left;
}
