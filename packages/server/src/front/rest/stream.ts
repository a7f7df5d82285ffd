import type { DescMethod, Message, Registry } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { EventServiceStreamRequest, EventServiceStreamResponse } from "@stategate/api";
import { EventService } from "@stategate/api";
import type { Logger } from "pino";
import { shuttingDown } from "../../errors.js";
import type { AnyRequest, AnyResponse } from "../door.js";
import { drainAborted } from "../drain.js";
import { errorJson, responseJson, toConnectError, writeChunk, writeError } from "./response.js";
import type { Route } from "./routes.js";

/** How often an SSE stream sends a `: ping` comment, so proxies do not close it as idle. */
export const PING_MS = 15_000;

/**
 * How long a stream waits for its first message before it commits to 200.
 * The handler reads (and the interceptors validate) the request only then, so
 * bad input still answers with its 4xx status and JSON error instead of a 200
 * followed by an error event that an EventSource would retry forever.
 */
const SETTLE_MS = 100;

/** How a stream is written: Server-Sent Events, or one JSON object per line. */
export type StreamFormat = "sse" | "ndjson";

/** NDJSON when the request's Accept asks for `application/x-ndjson`, else SSE. */
export function streamFormat(req: AnyRequest): StreamFormat {
  const accept = req.headers.accept ?? "";
  const types = accept.split(",").map((part) => part.split(";")[0]!.trim().toLowerCase());
  return types.includes("application/x-ndjson") ? "ndjson" : "sse";
}

/** A stream that an EventSource can resume: the SSE id of each message, and how Last-Event-ID sets the request. */
interface Resumable {
  id(message: Message): string | undefined;
  resume(request: Message, lastEventId: bigint): void;
}

const resumable = new Map<DescMethod, Resumable>([
  [
    EventService.method.stream,
    {
      id: (m) => (m as EventServiceStreamResponse).event?.position.toString(),
      resume: (r, position) => {
        (r as EventServiceStreamRequest).afterPosition = position;
      },
    },
  ],
]);

/** The largest event position: positions are int64. */
const MAX_POSITION = 2n ** 63n - 1n;

/** Resumes after the `Last-Event-ID` an EventSource sends when it reconnects, where the method supports it. */
export function applyLastEventId(route: Route, request: Message, req: AnyRequest): void {
  const header = req.headers["last-event-id"];
  const stream = resumable.get(route.method);
  if (typeof header !== "string" || header === "" || !stream) return;
  const shown = header.length > 40 ? `${header.slice(0, 40)}…` : header;
  if (!/^\d+$/.test(header)) {
    throw new ConnectError(`last-event-id: expected an event position, got "${shown}"`, Code.InvalidArgument);
  }
  const position = BigInt(header);
  if (position > MAX_POSITION) {
    throw new ConnectError(
      `last-event-id: "${shown}" is past the largest event position (${MAX_POSITION})`,
      Code.InvalidArgument,
    );
  }
  stream.resume(request, position);
}

/** What `writeStream` needs besides the messages. */
export interface StreamOptions {
  format: StreamFormat;
  /** Aborts when the client has gone. */
  gone: AbortSignal;
  /** Aborts when the gateway shuts down: the response then ends with an UNAVAILABLE error. */
  shutdown: AbortSignal;
  /** The request id the call answered with, once known. */
  requestId(): string | null;
  registry: Registry;
  log: Logger;
  /** Interval of the SSE `: ping` comment; PING_MS unless a test wants it sooner. */
  pingMs?: number;
}

type Next = IteratorResult<Message> | { failed: unknown };

/**
 * Writes a server stream as SSE (`id:` where resumable, `data: <json>`, a
 * `: ping` every 15 s, a final `event: error`) or as NDJSON (a final
 * `{"error":…}` line). An error before the first message gets a plain HTTP
 * error response instead. At shutdown the error is UNAVAILABLE, so the client
 * reconnects (to another gateway). A client that left cancels the call through
 * the caller's signal; this returns when the response is done.
 */
export async function writeStream(
  res: AnyResponse,
  route: Route,
  messages: AsyncIterable<Message>,
  options: StreamOptions,
): Promise<void> {
  const { format, gone } = options;
  const it = messages[Symbol.asyncIterator]();
  const pull = (): Promise<Next> =>
    it.next().then(
      (r) => r,
      (failed: unknown) => ({ failed }),
    );
  const first = pull();
  let ping: NodeJS.Timeout | undefined;
  try {
    let timer: NodeJS.Timeout | undefined;
    const settled = await Promise.race([
      first,
      new Promise<undefined>((resolve) => {
        timer = setTimeout(() => resolve(undefined), SETTLE_MS);
      }),
    ]);
    clearTimeout(timer);
    if (gone.aborted) return;
    if (settled && "failed" in settled) {
      writeError(res, failure(settled.failed, options));
      return;
    }
    const headers: Record<string, string> = {
      "content-type": format === "sse" ? "text/event-stream; charset=utf-8" : "application/x-ndjson",
      "cache-control": "no-cache",
      // nginx would otherwise buffer the stream and deliver events late.
      "x-accel-buffering": "no",
    };
    const requestId = options.requestId();
    if (requestId) headers["x-request-id"] = requestId;
    res.writeHead(200, headers);
    if ("flushHeaders" in res) res.flushHeaders();
    if (format === "sse") {
      ping = setInterval(() => void writeChunk(res, ": ping\n\n", gone), options.pingMs ?? PING_MS);
    }
    await pump(res, route, first, pull, options);
    if (!gone.aborted) res.end();
  } finally {
    clearInterval(ping);
    // A client that left leaves the call to end: the caller's signal has aborted it.
    if (gone.aborted) void drainAborted(it);
  }
}

/** Writes messages until the stream ends, then its error if it failed while the client still listens. */
async function pump(
  res: AnyResponse,
  route: Route,
  first: Promise<Next>,
  pull: () => Promise<Next>,
  options: StreamOptions,
): Promise<void> {
  const { format, gone } = options;
  const id = resumable.get(route.method)?.id;
  try {
    for (let next = first; ; next = pull()) {
      const r = await next;
      if ("failed" in r) throw r.failed;
      if (r.done) return;
      const json = JSON.stringify(responseJson(route, r.value, options.registry));
      const eventId = format === "sse" ? id?.(r.value) : undefined;
      const frame = format === "ndjson" ? `${json}\n` : `${eventId ? `id: ${eventId}\n` : ""}data: ${json}\n\n`;
      await writeChunk(res, frame, gone);
      if (gone.aborted) return;
    }
  } catch (err) {
    // A stream cut by the client did not fail: there is no one to tell.
    if (gone.aborted) return;
    const error = JSON.stringify(errorJson(failure(err, options)));
    await writeChunk(res, format === "ndjson" ? `{"error":${error}}\n` : `event: error\ndata: ${error}\n\n`, gone);
  }
}

/** What a stream that stopped tells its client: at shutdown UNAVAILABLE, whatever the call reported; else the call's error. */
function failure(err: unknown, options: StreamOptions): ConnectError {
  if (options.shutdown.aborted) {
    const reason: unknown = options.shutdown.reason;
    return reason instanceof ConnectError && reason.code === Code.Unavailable ? reason : shuttingDown();
  }
  return toConnectError(err, options.log);
}
