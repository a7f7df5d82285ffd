import type { DeadlineHeader } from "./deadline.js";
import { MAX_DEADLINE_MS, parseDeadlineHeader } from "./deadline.js";
import type { AnyRequest, AnyResponse } from "./door.js";
import { DOOR_HEADER } from "./door.js";

/**
 * Makes the deadline headers say what the gateway keeps, before any door reads
 * them (gRPC, gRPC-Web and Connect, whose handler sets its deadline timer from
 * them, REST and GraphQL). One asking for more than MAX_DEADLINE_MS is dropped,
 * so the call has no deadline instead of one that passes after 1 ms. A
 * `grpc-timeout` under 1 ms (`1n`) becomes `0n`: a deadline already passed,
 * which Connect's handler answers before the call runs, where a timer of
 * 0.000001 ms would let a quick call through.
 */
export function normalizeDeadline(req: AnyRequest): void {
  for (const name of ["grpc-timeout", "connect-timeout-ms"] as const satisfies DeadlineHeader[]) {
    const value = req.headers[name];
    if (typeof value !== "string") continue;
    let ms: number;
    try {
      ms = parseDeadlineHeader(name, value);
    } catch {
      continue; // not a timeout: the door answers INVALID_ARGUMENT
    }
    if (ms > MAX_DEADLINE_MS) delete req.headers[name];
    else if (ms > 0 && ms < 1) req.headers[name] = "0n";
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
    normalizeDeadline(req);
    wakeWritersOnClose(res);
    handler(req, res);
  };
}
