import type { IncomingHttpHeaders, ServerHttp2Stream } from "node:http2";
import http2 from "node:http2";
import type { DescMessage, DescMethodServerStreaming, DescMethodUnary, DescService } from "@bufbuild/protobuf";
import { create } from "@bufbuild/protobuf";
import type {
  HandlerContext,
  Interceptor,
  StreamRequest,
  StreamResponse,
  UnaryRequest,
  UnaryResponse,
} from "@connectrpc/connect";
import { Code, ConnectError, createContextValues } from "@connectrpc/connect";
import { setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { forwardProperties } from "@stategate/api";
import { decoderOf, encodeKept, encoderOf, keptEncoding } from "../encoding.js";
import { forEachItem } from "../streams/pollable.js";
import { wrapStream } from "../streams/wrap.js";
import { kCallAbort, LazyAbort } from "./call-abort.js";
import { requestTimeoutMs } from "./deadline.js";
import { DOOR_HEADER } from "./door.js";
import { kEndCall } from "./end-call.js";
import { HeaderMap } from "./header-map.js";
import type { HiddenError } from "./internal-errors.js";

/**
 * A direct path for gRPC calls, the calls services in every language make.
 * connect-node serves each call through a pipeline of async iterables that
 * costs about 0.3–0.5 ms of CPU per unary call on our 2-core machine
 * (BENCHMARKS.md), and encodes an event once per stream it goes to. This path
 * reads the one request message, runs the same interceptors and the same
 * service implementation, and writes the answer straight to the HTTP/2
 * stream, without Node's compatibility request and response objects; an
 * event going to many streams is encoded once.
 *
 * It takes only what it can answer exactly as Connect's gRPC handler would:
 * POST over HTTP/2 to a unary or server-streaming method of the gateway's
 * services, with a `content-type` of `application/grpc` or
 * `application/grpc+proto` and an uncompressed request. Everything else
 * (gRPC-Web, Connect, JSON, gzip, health and reflection) goes to
 * connect-node's handler.
 */

/** A service implementation as Connect takes it: methods by local name. */
type Impl = Record<string, unknown>;

/** What the direct path needs to serve a service. */
export interface GrpcDirectOptions {
  /** The services, with the same implementation objects Connect serves. */
  services: readonly { service: DescService; impl: Impl }[];
  /** The same interceptors, in the same order, as connect-node's handler has. */
  interceptors: readonly Interceptor[];
  /** Largest request message, as connect-node's `readMaxBytes`. */
  readMaxBytes: number;
  /** Told of an error kept from the client (a response that could not be serialized). */
  onHidden: (hidden: HiddenError) => void;
  /**
   * Whether the gateway's transport rules let the direct path answer a
   * request at all; one it refuses goes the usual way, where the same rules
   * answer it (a host a loopback-only gateway does not serve, a request
   * carrying an Origin that CORS must see).
   */
  accepts?: (headers: IncomingHttpHeaders) => boolean;
}

interface Route {
  service: DescService;
  method: DescMethodUnary | DescMethodServerStreaming;
  impl: (message: unknown, context: HandlerContext) => unknown;
  path: string;
  /** One response message as a gRPC frame. */
  encode: (message: unknown) => Buffer;
  /** The request message from its bytes (protobuf-es's rules, compiled). */
  decode: (bytes: Uint8Array) => unknown;
}

/**
 * Trailers always follow, since the gRPC status is in them. No Date header:
 * gRPC has no use for one, and Node formats it per response (`sendDate` is
 * a Node option missing from its types).
 */
const respondOptions = { waitForTrailers: true, sendDate: false } as http2.ServerStreamResponseOptions;

/** The reason a call's signal aborts with once the call is over: given, so Node builds no DOMException. */
const completed = new ConnectError("the call completed", Code.Canceled);

/** Takes an HTTP/2 stream the direct path can serve, and answers it; false leaves it to connect-node's handler. */
export type DirectStreamHandler = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => boolean;

/** The direct path: serves what it can take, from the HTTP/2 stream itself (no compatibility request and response). */
export function createDirectGrpc(options: GrpcDirectOptions): DirectStreamHandler {
  const routes = new Map<string, Route>();
  for (const { service, impl } of options.services) {
    for (const method of service.methods) {
      const fn = impl[method.localName];
      if (typeof fn !== "function") continue;
      if (method.methodKind !== "unary" && method.methodKind !== "server_streaming") continue;
      const path = `/${service.typeName}/${method.name}`;
      const encode = responseEncoder(method.output, method.methodKind === "server_streaming");
      routes.set(path, {
        service,
        method: method as Route["method"],
        impl: fn.bind(impl) as Route["impl"],
        path,
        encode,
        decode: decoderOf(method.input),
      });
    }
  }
  return (stream, headers) => {
    if (headers[":method"] !== "POST") return false;
    const route = routes.get(headers[":path"] ?? "");
    if (route === undefined) return false;
    const type = headers["content-type"];
    if (type !== "application/grpc" && type !== "application/grpc+proto") return false;
    const encoding = headers["grpc-encoding"];
    if (encoding !== undefined && encoding !== "identity") return false;
    if (options.accepts && !options.accepts(headers)) return false;
    void serve(route, stream, headers, options);
    return true;
  };
}

/** One call, from the request's first byte to its trailers. */
async function serve(
  route: Route,
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
  options: GrpcDirectOptions,
) {
  const { service, method } = route;
  // The call's abort; its AbortSignal is made only if something asks for it (streams do).
  const call = new LazyAbort();
  let over = false;
  // The client reset the stream or dropped the connection before the end.
  const onClose = () => {
    if (!over) call.abort(resetError(stream.rstCode));
  };
  stream.once("close", onClose);
  // A reset stream reports it as an error too; 'close' has already said what happened.
  stream.on("error", ignore);
  let deadline: NodeJS.Timeout | undefined;
  const header = new HeaderMap({ "content-type": "application/grpc+proto" });
  const trailer = new HeaderMap({ "grpc-status": "0" });
  const writer = new Writer(stream);
  try {
    // DEADLINE_EXCEEDED here, before the call runs, for one under 1 ms.
    const timeoutMs = requestTimeoutMs((name) => headerText(headers[name]), ["grpc-timeout"]);
    const deadlineAt = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
    if (timeoutMs !== undefined) {
      deadline = setTimeout(
        () => call.abort(new ConnectError("the operation timed out", Code.DeadlineExceeded)),
        timeoutMs,
      );
    }
    const input = parseInput(route, await readEnvelope(stream, options.readMaxBytes));
    // A client's door header is dropped: only the in-process doors name theirs.
    const requestHeader = HeaderMap.fromRequest(headers, DOOR_HEADER);
    const url = `http://${headers[":authority"] ?? headers.host ?? "localhost"}${route.path}`;
    const values = createContextValues()
      // A stream whose client stopped reading can be ended at the transport (see the slow-stream rule).
      .set(kEndCall, () => stream.close(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM))
      .set(kCallAbort, call);
    const timeout = () => (deadlineAt === undefined ? undefined : deadlineAt - Date.now());
    // The implementation sees what the interceptors passed on, as with Connect. Its
    // signal is read only when asked for (forwardProperties), so a call that never
    // asks makes none.
    const contextOf = (r: UnaryRequest | StreamRequest): HandlerContext =>
      forwardProperties(
        {
          service: r.service,
          method,
          protocolName: "grpc",
          requestMethod: "POST",
          url,
          timeoutMs: timeout,
          requestHeader: r.header,
          responseHeader: header,
          responseTrailer: trailer,
          values: r.contextValues,
        },
        r,
        ["signal"],
      );
    const request = <M, S extends boolean>(stream: S, message: M) =>
      forwardProperties(
        {
          stream,
          service,
          method,
          requestMethod: "POST",
          url,
          header: requestHeader,
          contextValues: values,
          message,
        },
        call,
        ["signal"],
      );
    if (method.methodKind === "unary") {
      const next = intercept(options.interceptors, async (r: UnaryRequest): Promise<UnaryResponse> => {
        const output = await route.impl(r.message, contextOf(r));
        return { stream: false, service, method, header, trailer, message: create(method.output, output as never) };
      });
      const response = await next(request(false, input) as never);
      header.replaceWith(response.header);
      trailer.replaceWith(response.trailer);
      writer.message(header, encodeOrHide(route, response.message, header, options));
    } else {
      const next = intercept(options.interceptors, async (r: StreamRequest): Promise<StreamResponse> => {
        const message = await single(r.message);
        const output = route.impl(message, contextOf(r)) as AsyncIterable<unknown>;
        return { stream: true, service, method, header, trailer, message: normalized(method.output, output) };
      });
      const response = await next(request(true, once(input)) as never);
      header.replaceWith(response.header);
      // Each message written as it comes, waiting only while the client's window is full.
      await forEachItem(response.message as AsyncIterable<unknown>, (message) =>
        writer.message(header, encodeOrHide(route, message, header, options)),
      );
      trailer.replaceWith(response.trailer);
    }
    writer.end(header, trailer);
  } catch (err) {
    const error =
      err instanceof ConnectError ? err : hidden(err, trailer.get("x-request-id") ?? null, route.path, options);
    // As Connect does: the status, and the error's metadata (the request id), in the trailers.
    setTrailerStatus(trailer, error);
    writer.end(header, trailer);
  } finally {
    over = true;
    clearTimeout(deadline);
    stream.off("close", onClose);
    // What the call set up on its signal (a stream's subscription) is let go.
    call.abort(completed);
  }
}

function ignore(): void {}

/** Wraps `last` in the interceptors, the first one outermost. */
function intercept<F>(interceptors: readonly Interceptor[], last: F): F {
  let next = last;
  for (let i = interceptors.length - 1; i >= 0; i--) {
    next = (interceptors[i] as Interceptor)(next as never) as F;
  }
  return next;
}

/**
 * Writes one call's answer to its HTTP/2 stream: the headers with the first
 * message (or with the end), each message as it comes, waiting while the
 * client's window is full, and the trailers. Once the stream is gone, nothing
 * is written.
 */
class Writer {
  constructor(private readonly stream: ServerHttp2Stream) {}

  private get gone(): boolean {
    return this.stream.destroyed || this.stream.writableEnded;
  }

  private head(header: HeaderMap): void {
    if (!this.stream.headersSent) {
      this.stream.respond(header.toObject(200), respondOptions);
    }
  }

  /** Writes one message; resolves when the client can take more. */
  message(header: HeaderMap, frame: Buffer): Promise<void> | undefined {
    if (this.gone) return undefined;
    this.head(header);
    if (this.stream.write(frame)) return undefined;
    const stream = this.stream;
    return new Promise<void>((resolve) => {
      // Node 20 may neither drain nor fail a write to a stream that closed meanwhile.
      const done = () => {
        stream.off("drain", done);
        stream.off("close", done);
        resolve();
      };
      stream.on("drain", done);
      stream.on("close", done);
    });
  }

  end(header: HeaderMap, trailer: HeaderMap): void {
    if (this.gone) return;
    this.head(header);
    const stream = this.stream;
    stream.once("wantTrailers", () => {
      // The client may have reset the stream while the last frames went out.
      if (!stream.destroyed) stream.sendTrailers(trailer.toObject());
    });
    stream.end();
  }
}

/** A response message as a gRPC frame; a message that cannot be encoded is an internal error the client never sees. */
function encodeOrHide(route: Route, message: unknown, header: Headers, options: GrpcDirectOptions): Buffer {
  try {
    return route.encode(message);
  } catch (err) {
    throw hidden(err, header.get("x-request-id"), route.path, options);
  }
}

/**
 * How to frame the responses of one method. A response that is one message
 * field numbered 1 is framed from its item's encoding: the one the relay
 * made or the channel delivered when the item has one (a Set's event, see
 * encoding.ts). On a server stream (EventServiceStreamResponse,
 * PeerServiceStreamResponse) the frame is also kept while the item lives, so
 * an event going to a thousand streams is framed once, not a thousand times;
 * a unary answer is sent once, and keeps nothing.
 */
function responseEncoder(schema: DescMessage, streaming: boolean): (message: unknown) => Buffer {
  const encode = encoderOf(schema);
  const plain = (message: unknown) => envelope(encode(create(schema, message as never)));
  const [only, ...more] = schema.fields;
  if (only === undefined || more.length > 0 || only.number !== 1 || only.fieldKind !== "message") return plain;
  const inner = only.message;
  const name = only.localName;
  const itemOf = (message: unknown): object | undefined => {
    const item = (message as Record<string, unknown>)[name];
    const extra = (message as { $unknown?: unknown[] }).$unknown;
    return typeof item !== "object" || item === null || (extra !== undefined && extra.length > 0) ? undefined : item;
  };
  if (!streaming) {
    // One answer, sent once: an encoding made before (a Set's event, by the relay) is used, none is kept.
    const encodeInner = encoderOf(inner);
    return (message) => {
      const item = itemOf(message);
      if (item === undefined) return plain(message);
      return fieldOneFrame(keptEncoding(item) ?? encodeInner(create(inner, item as never)));
    };
  }
  const frames = new WeakMap<object, Buffer>();
  return (message) => {
    const item = itemOf(message);
    if (item === undefined) return plain(message);
    let frame = frames.get(item);
    if (frame === undefined) {
      frame = fieldOneFrame(encodeKept(inner, item));
      frames.set(item, frame);
    }
    return frame;
  };
}

/** A gRPC frame of a message whose only content is field 1, length-delimited, holding `bytes`. */
function fieldOneFrame(bytes: Uint8Array): Buffer {
  let length = bytes.length;
  const varint: number[] = [];
  do {
    let b = length & 0x7f;
    length = Math.floor(length / 128);
    if (length > 0) b |= 0x80;
    varint.push(b);
  } while (length > 0);
  const size = 1 + varint.length + bytes.length;
  const frame = Buffer.allocUnsafe(5 + size);
  frame[0] = 0;
  frame.writeUInt32BE(size, 1);
  frame[5] = 0x0a;
  frame.set(varint, 6);
  frame.set(bytes, 6 + varint.length);
  return frame;
}

/** An error that must not reach the client as it is: logged, and sent as INTERNAL naming the request id. */
function hidden(err: unknown, requestId: string | null, path: string, options: GrpcDirectOptions): ConnectError {
  const message = err instanceof Error ? err.message : String(err);
  options.onHidden({ requestId, method: path, message });
  return new ConnectError(
    requestId ? `internal error (request id ${requestId})` : "internal error",
    Code.Internal,
    undefined,
    undefined,
    err,
  );
}

/** Full messages from what an implementation yields (plain objects, usually), as Connect makes them. */
function normalized(schema: DescMessage, items: AsyncIterable<unknown>): AsyncIterable<never> {
  return wrapStream(items, { item: (item) => create(schema, item as never) as never });
}

/** The request of a server stream, as the iterable Connect's stream interceptors expect. */
async function* once<T>(message: T): AsyncGenerator<T> {
  yield message;
}

/** The one message of a request iterable (an interceptor may have wrapped it). */
async function single<T>(messages: AsyncIterable<T>): Promise<T> {
  for await (const message of messages) return message;
  throw new ConnectError("protocol error: missing input message for server-streaming method", Code.Unimplemented);
}

/**
 * The one enveloped message of a request, read as it arrives: a message
 * declared larger than `readMaxBytes` is refused before it is buffered, as
 * connect-node refuses it.
 */
function readEnvelope(req: ServerHttp2Stream, readMaxBytes: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let declared = -1;
    const fail = (error: ConnectError) => {
      cleanup();
      req.resume(); // drain what the client still sends; nothing more is read
      reject(error);
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      if (declared < 0 && size >= 5) {
        const head = chunks.length === 1 ? chunk : Buffer.concat(chunks);
        if ((head[0] as number) & 0b1) {
          fail(new ConnectError("protocol error: compressed message without grpc-encoding", Code.InvalidArgument));
          return;
        }
        declared = head.readUInt32BE(1);
        if (declared > readMaxBytes) {
          fail(
            new ConnectError(
              `message size ${declared} is larger than configured readMaxBytes ${readMaxBytes}`,
              Code.ResourceExhausted,
            ),
          );
          return;
        }
      }
      if (declared >= 0 && size > 5 + declared) {
        fail(new ConnectError("protocol error: received extra input message", Code.Unimplemented));
      }
    };
    const onEnd = () => {
      cleanup();
      if (size === 0) {
        reject(new ConnectError("protocol error: missing input message", Code.Unimplemented));
      } else if (declared < 0 || size < 5 + declared) {
        reject(new ConnectError(`protocol error: incomplete envelope of ${size} bytes`, Code.InvalidArgument));
      } else {
        const all = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
        resolve(all.subarray(5));
      }
    };
    const onError = (err: Error) => {
      cleanup();
      reject(new ConnectError(`request body failed: ${err.message}`, Code.Canceled));
    };
    // A stream reset before its end emits neither 'end' nor 'error'.
    const onClose = () => {
      cleanup();
      reject(new ConnectError("the client left before its request was read", Code.Canceled));
    };
    const cleanup = () => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
      req.off("close", onClose);
    };
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
    req.on("close", onClose);
  });
}

/** The request message; bytes that are not one are the caller's error, as the gateway's patch to Connect makes them. */
function parseInput(route: Route, bytes: Uint8Array) {
  try {
    return route.decode(bytes);
  } catch (err) {
    throw new ConnectError(`parse binary: ${err instanceof Error ? err.message : String(err)}`, Code.InvalidArgument);
  }
}

function envelope(body: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(5 + body.length);
  frame[0] = 0;
  frame.writeUInt32BE(body.length, 1);
  frame.set(body, 5);
  return frame;
}

/** The error a call's signal carries when the client reset its stream, as connect-node names it. */
function resetError(rstCode: number): ConnectError {
  switch (rstCode) {
    case http2.constants.NGHTTP2_REFUSED_STREAM:
      return new ConnectError("http/2 stream closed with error code REFUSED_STREAM (0x7)", Code.Unavailable);
    case http2.constants.NGHTTP2_ENHANCE_YOUR_CALM:
      return new ConnectError("http/2 stream closed with error code ENHANCE_YOUR_CALM (0xb)", Code.ResourceExhausted);
    default:
      return new ConnectError(`http/2 stream closed with error code 0x${rstCode.toString(16)}`, Code.Canceled);
  }
}

function headerText(value: string | string[] | undefined): string | null {
  if (value === undefined) return null;
  return Array.isArray(value) ? value.join(", ") : value;
}
