import type { Interceptor } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { abortedError } from "../errors.js";
import { DOOR_HEADER } from "../front/door.js";
import { doorOf } from "../interceptors.js";
import type { GatewayMetrics, StreamKind } from "./metrics.js";

/** The code label: "OK", or the name of the gRPC code ("NotFound", "ResourceExhausted" …). */
function codeLabel(err: unknown): string {
  return err === undefined ? "OK" : Code[ConnectError.from(err).code];
}

/**
 * Counts every call by service, method, door and code, and times unary calls.
 * It sits outside the error boundary, so it sees the code the client got. A
 * stream the client left counts as Canceled.
 */
export function metricsInterceptor(metrics: GatewayMetrics): Interceptor {
  return (next) => async (req) => {
    const service = req.service.typeName;
    const method = req.method.name;
    const door = doorOf(req.header.get("content-type"), req.header.get(DOOR_HEADER));
    // A client that left (Canceled, never Internal, however its connection broke)
    // or ran out of time: that is the code, whatever failed next.
    const count = (err?: unknown) =>
      metrics.requests.inc({
        service,
        method,
        door,
        code: req.signal.aborted ? codeLabel(abortedError(req.signal)) : codeLabel(err),
      });
    const stop = metrics.requestDuration.startTimer({ service, method });
    let res: Awaited<ReturnType<typeof next>>;
    try {
      res = await next(req);
    } catch (err) {
      count(err);
      if (!req.stream) stop();
      throw err;
    }
    if (!res.stream) {
      count();
      stop();
      return res;
    }
    const messages = res.message;
    return {
      ...res,
      message: (async function* () {
        let outcome: "ok" | "failed" | undefined;
        try {
          yield* messages;
          outcome = "ok";
          count();
        } catch (err) {
          outcome = "failed";
          count(err);
          throw err;
        } finally {
          if (outcome === undefined) count(new ConnectError("client left", Code.Canceled));
        }
      })(),
    };
  };
}

const streamKinds: Record<string, StreamKind> = {
  "stategate.v1.EventService": "event",
  "stategate.v1.PeerService": "peer",
};

/**
 * Bounds the event and peer streams open at once (STATEGATE_MAX_OPEN_STREAMS):
 * past it a new stream is RESOURCE_EXHAUSTED before it subscribes to
 * anything. Keeps the open-streams gauge and counts what streams deliver.
 */
export function streamInterceptor(maxOpen: number, metrics: GatewayMetrics): Interceptor {
  let open = 0;
  return (next) => async (req) => {
    const kind = streamKinds[req.service.typeName];
    if (kind === undefined || req.method.methodKind !== "server_streaming") return next(req);
    const res = await next(req);
    if (!res.stream) return res;
    const messages = res.message;
    const delivered = kind === "event" ? metrics.eventsDelivered : metrics.messagesDelivered;
    return {
      ...res,
      // The handler starts when this does: a refused stream never subscribed.
      message: (async function* () {
        if (open >= maxOpen) {
          throw new ConnectError(
            `too many open streams on this gateway (STATEGATE_MAX_OPEN_STREAMS=${maxOpen}); retry later`,
            Code.ResourceExhausted,
          );
        }
        open++;
        metrics.openStreams.inc({ kind });
        try {
          for await (const message of messages) {
            delivered.inc();
            yield message;
          }
        } finally {
          open--;
          metrics.openStreams.dec({ kind });
        }
      })(),
    };
  };
}
