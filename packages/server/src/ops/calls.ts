import type { Interceptor } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { abortedError } from "../errors.js";
import { DOOR_HEADER } from "../front/door.js";
import { callAbortOf, doorOf } from "../interceptors.js";
import { wrapStream } from "../streams/wrap.js";
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
    const abort = callAbortOf(req);
    const count = (err?: unknown) =>
      metrics.requests
        .series({ service, method, door, code: abort.aborted ? codeLabel(abortedError(abort)) : codeLabel(err) })
        .inc();
    const stop = metrics.requestDuration.series({ service, method }).startTimer();
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
    let failure: unknown;
    return {
      ...res,
      message: wrapStream(res.message, {
        error(err) {
          failure = err;
          throw err;
        },
        final(outcome) {
          if (outcome === "done") count();
          else if (outcome === "error") count(failure);
          else count(new ConnectError("client left", Code.Canceled));
        },
      }),
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
  return (next) => (req) => {
    const kind = streamKinds[req.service.typeName];
    // Not a stream: nothing to count, so no layer of its own around the call.
    if (kind === undefined || req.method.methodKind !== "server_streaming") return next(req);
    return limited(next, req, kind);
  };

  async function limited(
    next: Parameters<Interceptor>[0],
    req: Parameters<Parameters<Interceptor>[0]>[0],
    kind: StreamKind,
  ) {
    const res = await next(req);
    if (!res.stream) return res;
    const counts = metrics.streamCounts.delivered;
    let counted = false;
    return {
      ...res,
      message: wrapStream(res.message, {
        // The handler starts when the stream is first read: a refused stream never subscribed.
        start() {
          if (open >= maxOpen) {
            throw new ConnectError(
              `too many open streams on this gateway (STATEGATE_MAX_OPEN_STREAMS=${maxOpen}); retry later`,
              Code.ResourceExhausted,
            );
          }
          open++;
          counted = true;
          metrics.openStreams.inc({ kind });
        },
        item(message) {
          counts[kind]++;
          return message;
        },
        final() {
          if (!counted) return;
          open--;
          metrics.openStreams.dec({ kind });
        },
      }),
    };
  }
}
