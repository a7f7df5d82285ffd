import type { AnyRequest, AnyResponse } from "./door.js";
import { DOOR_HEADER } from "./door.js";

/**
 * The longest deadline the gateway keeps, in milliseconds (about 24.8 days):
 * the most a Node timer can wait. A timer set longer fires after 1 ms
 * (TimeoutOverflowWarning), which would end the call at once.
 */
export const MAX_DEADLINE_MS = 2 ** 31 - 1;

/** The deadline to apply: none for one past what a timer can wait, which is as good as none. */
export function keptDeadline(timeoutMs: number | undefined): number | undefined {
  return timeoutMs === undefined || timeoutMs > MAX_DEADLINE_MS ? undefined : timeoutMs;
}

const grpcUnitMs: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 0.001, n: 0.000001 };

/** The deadline a `grpc-timeout` or `connect-timeout-ms` value asks for; undefined when it is not one (Connect answers that). */
function askedMs(name: "grpc-timeout" | "connect-timeout-ms", value: string): number | undefined {
  if (name === "connect-timeout-ms") return /^\d{1,10}$/.test(value) ? Number(value) : undefined;
  const m = /^(\d{1,8})([HMSmun])$/.exec(value);
  return m ? Number(m[1]) * (grpcUnitMs[m[2]!] ?? 0) : undefined;
}

/**
 * Drops a `grpc-timeout` or `connect-timeout-ms` header asking for more than
 * MAX_DEADLINE_MS, so the call has no deadline instead of one that passes after
 * 1 ms. It runs before any door reads the headers: gRPC, gRPC-Web and Connect
 * (Connect's handler sets its deadline timer from them) and REST.
 */
export function dropUnkeepableDeadline(req: AnyRequest): void {
  for (const name of ["grpc-timeout", "connect-timeout-ms"] as const) {
    const value = req.headers[name];
    if (typeof value !== "string") continue;
    const ms = askedMs(name, value);
    if (ms !== undefined && keptDeadline(ms) === undefined) delete req.headers[name];
  }
}

/**
 * Wakes whatever waits to write to a response whose stream or connection
 * closed. Node 20 may never call back a write that was waiting on flow control
 * when its HTTP/2 stream is destroyed (nodejs/node#58252), nor emit 'drain' or
 * 'error'; an HTTP/1.1 response whose socket is destroyed (a slow client cut,
 * a client gone) emits neither either. A server stream writing to such a
 * client would wait forever, holding its subscription and never logging its
 * end. A 'drain' after the close makes the writer try again and learn the
 * stream is gone.
 */
export function wakeWritersOnClose(res: AnyResponse): void {
  res.once("close", () => res.emit("drain"));
}

/**
 * Drops a client's `x-stategate-door`: only the in-process REST and GraphQL
 * doors may name the door of a call, on the calls they make themselves. A
 * gRPC call sending `x-stategate-door: rest` must still count as gRPC in
 * metrics and logs, and a policy must not see a door the client made up.
 */
export function dropClientDoor(req: AnyRequest): void {
  delete req.headers[DOOR_HEADER];
}

/** Wraps the gateway's request handler with the guards above. */
export function guardTransport<Req extends AnyRequest, Res extends AnyResponse>(
  handler: (req: Req, res: Res) => void,
): (req: Req, res: Res) => void {
  return (req, res) => {
    dropClientDoor(req);
    dropUnkeepableDeadline(req);
    wakeWritersOnClose(res);
    handler(req, res);
  };
}
