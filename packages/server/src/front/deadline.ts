import { Code, ConnectError } from "@connectrpc/connect";
import { parseTimeout as parseConnectTimeout } from "@connectrpc/connect/protocol-connect";
import { parseTimeout as parseGrpcTimeout } from "@connectrpc/connect/protocol-grpc";

/**
 * The deadline a request asks for, read the same way on every door: gRPC and
 * gRPC-Web send `grpc-timeout`, Connect `connect-timeout-ms`, and REST and
 * GraphQL take either.
 */

/**
 * The longest deadline the gateway keeps, in milliseconds (about 24.8 days):
 * the most a Node timer can wait. A timer set longer fires after 1 ms
 * (TimeoutOverflowWarning), which would end the call at once.
 */
export const MAX_DEADLINE_MS = 2 ** 31 - 1;

/** The headers a deadline comes in, in the order REST and GraphQL look for one. */
export type DeadlineHeader = "connect-timeout-ms" | "grpc-timeout";
const deadlineHeaders: readonly DeadlineHeader[] = ["connect-timeout-ms", "grpc-timeout"];

/** Milliseconds one deadline header asks for, as Connect's handlers read it; INVALID_ARGUMENT when it is not a timeout. */
export function parseDeadlineHeader(name: DeadlineHeader, value: string): number {
  const parse = name === "connect-timeout-ms" ? parseConnectTimeout : parseGrpcTimeout;
  const timeout = parse(value, Number.MAX_SAFE_INTEGER);
  if (timeout.error) throw timeout.error;
  return timeout.timeoutMs as number;
}

/**
 * The timeout of a request in whole milliseconds, from the first of `names` it
 * sends. Undefined when it sends none, or one past what a timer can wait
 * (as good as none). One under 1 ms (`connect-timeout-ms: 0`, `grpc-timeout: 1n`)
 * has passed before the call starts: DEADLINE_EXCEEDED, thrown before anything
 * runs, so no door answers with data or writes what it was asked to.
 */
export function requestTimeoutMs(
  header: (name: DeadlineHeader) => string | null,
  names: readonly DeadlineHeader[] = deadlineHeaders,
): number | undefined {
  for (const name of names) {
    const value = header(name);
    if (value === null) continue;
    const ms = parseDeadlineHeader(name, value);
    if (ms > MAX_DEADLINE_MS) return undefined;
    if (ms < 1) throw new ConnectError("the operation timed out", Code.DeadlineExceeded);
    return Math.ceil(ms);
  }
  return undefined;
}
