import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import http2 from "node:http2";
import type {
  DescMessage,
  DescMethod,
  DescMethodServerStreaming,
  DescMethodUnary,
  DescService,
} from "@bufbuild/protobuf";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
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
import { requestTimeoutMs } from "./deadline.js";
import type { AnyRequest, AnyResponse } from "./door.js";
import { kEndCall } from "./end-call.js";
import type { HiddenError } from "./internal-errors.js";

/**
 * A direct path for gRPC calls, the calls services in every language make.
 * connect-node serves each call through a pipeline of async iterables that
 * costs about 0.3–0.5 ms of CPU per unary call on our 2-core machine
 * (BENCHMARKS.md), and encodes an event once per stream it goes to. This path
 * reads the one request message, runs the same interceptors and the same
 * service implementation, and writes the answer straight to the HTTP/2
 * stream; an event going to many streams is encoded once.
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
}

interface Route {
  service: DescService;
  method: DescMethodUnary | DescMethodServerStreaming;
  impl: (message: unknown, context: HandlerContext) => unknown;
  path: string;
  /** Encodes one response message. */
  encode: (message: unknown) => Uint8Array;
}

/** The reason a call's signal aborts with once the call is over: given, so Node builds no DOMException. */
const completed = new ConnectError("the call completed", Code.Canceled);

/** Wraps `fallback` so the gRPC calls it could serve are served directly. */
export function withDirectGrpc(
  fallback: (req: AnyRequest, res: AnyResponse) => void,
  options: GrpcDirectOptions,
): (req: AnyRequest, res: AnyResponse) => void {
  const routes = new Map<string, Route>();
  for (const { service, impl } of options.services) {
    for (const method of service.methods) {
      const fn = impl[method.localName];
      if (typeof fn !== "function") continue;
      if (method.methodKind !== "unary" && method.methodKind !== "server_streaming") continue;
      const path = `/${service.typeName}/${method.name}`;
      const encode = responseEncoder(method.output);
      routes.set(path, {
        service,
        method: method as Route["method"],
        impl: fn.bind(impl) as Route["impl"],
        path,
        encode,
      });
    }
  }
  return (req, res) => {
    if (req.httpVersionMajor === 2 && req.method === "POST") {
      const route = routes.get(req.url ?? "");
      const type = req.headers["content-type"];
      const encoding = req.headers["grpc-encoding"];
      if (
        route !== undefined &&
        (type === "application/grpc" || type === "application/grpc+proto") &&
        (encoding === undefined || encoding === "identity")
      ) {
        void serve(route, req as Http2ServerRequest, res as Http2ServerResponse, options);
        return;
      }
    }
    fallback(req, res);
  };
}

/** One call, from the request's first byte to its trailers. */
async function serve(route: Route, req: Http2ServerRequest, res: Http2ServerResponse, options: GrpcDirectOptions) {
  const { service, method } = route;
  const controller = new AbortController();
  let over = false;
  // The client reset the stream or dropped the connection before the end.
  const onClose = () => {
    if (!over) controller.abort(resetError(req.stream.rstCode));
  };
  req.once("close", onClose);
  let deadline: NodeJS.Timeout | undefined;
  const header = new Headers({ "content-type": "application/grpc+proto" });
  const trailer = new Headers({ "grpc-status": "0" });
  const writer = new Writer(res);
  try {
    // DEADLINE_EXCEEDED here, before the call runs, for one under 1 ms.
    const timeoutMs = requestTimeoutMs((name) => headerText(req.headers[name]), ["grpc-timeout"]);
    const deadlineAt = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
    if (timeoutMs !== undefined) {
      deadline = setTimeout(
        () => controller.abort(new ConnectError("the operation timed out", Code.DeadlineExceeded)),
        timeoutMs,
      );
    }
    const input = parseInput(method, await readEnvelope(req, options.readMaxBytes));
    const requestHeader = webHeaders(req.headers);
    const url = `http://${req.authority}${route.path}`;
    // A stream whose client stopped reading can be ended at the transport (see the slow-stream rule).
    const values = createContextValues().set(kEndCall, () =>
      req.stream.close(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM),
    );
    const context: HandlerContext = {
      service,
      method,
      protocolName: "grpc",
      requestMethod: "POST",
      url,
      signal: controller.signal,
      timeoutMs: () => (deadlineAt === undefined ? undefined : deadlineAt - Date.now()),
      requestHeader,
      responseHeader: header,
      responseTrailer: trailer,
      values,
    };
    const common = { service, method, requestMethod: "POST", url, header: requestHeader, contextValues: values };
    // The implementation sees what the interceptors passed on, as with Connect.
    const contextOf = (r: UnaryRequest | StreamRequest): HandlerContext => ({
      ...context,
      service: r.service,
      requestHeader: r.header,
      signal: r.signal,
      values: r.contextValues,
    });
    if (method.methodKind === "unary") {
      const next = intercept(options.interceptors, async (r: UnaryRequest): Promise<UnaryResponse> => {
        const output = await route.impl(r.message, contextOf(r));
        return { stream: false, service, method, header, trailer, message: create(method.output, output as never) };
      });
      const response = await next({ ...common, stream: false, signal: controller.signal, message: input } as never);
      replaceHeaders(header, response.header);
      replaceHeaders(trailer, response.trailer);
      writer.message(header, encodeOrHide(route, response.message, header, options));
    } else {
      const next = intercept(options.interceptors, async (r: StreamRequest): Promise<StreamResponse> => {
        const message = await single(r.message);
        const output = route.impl(message, contextOf(r)) as AsyncIterable<unknown>;
        return { stream: true, service, method, header, trailer, message: normalized(method.output, output) };
      });
      const response = await next({
        ...common,
        stream: true,
        signal: controller.signal,
        message: once(input),
      } as never);
      replaceHeaders(header, response.header);
      for await (const message of response.message as AsyncIterable<unknown>) {
        await writer.message(header, encodeOrHide(route, message, header, options));
      }
      replaceHeaders(trailer, response.trailer);
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
    req.off("close", onClose);
    controller.abort(completed);
  }
}

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
  constructor(private readonly res: Http2ServerResponse) {}

  private get gone(): boolean {
    return this.res.stream.destroyed || this.res.writableEnded;
  }

  private head(header: Headers): void {
    if (!this.res.headersSent) this.res.writeHead(200, nodeHeaders(header));
  }

  /** Writes one message; resolves when the client can take more. */
  message(header: Headers, body: Uint8Array): Promise<void> | undefined {
    if (this.gone) return undefined;
    this.head(header);
    if (this.res.write(envelope(body))) return undefined;
    const res = this.res;
    return new Promise<void>((resolve) => {
      // Node 20 may neither drain nor fail a write to a stream that closed meanwhile.
      const done = () => {
        res.off("drain", done);
        res.off("close", done);
        resolve();
      };
      res.on("drain", done);
      res.on("close", done);
    });
  }

  end(header: Headers, trailer: Headers): void {
    if (this.gone) return;
    this.head(header);
    this.res.addTrailers(nodeHeaders(trailer));
    this.res.end();
  }
}

/** A response message as bytes; a message that cannot be encoded is an internal error the client never sees. */
function encodeOrHide(route: Route, message: unknown, header: Headers, options: GrpcDirectOptions): Uint8Array {
  try {
    return route.encode(message);
  } catch (err) {
    throw hidden(err, header.get("x-request-id"), route.path, options);
  }
}

/**
 * How to encode the responses of one method. A stream response that is one
 * message field numbered 1 (EventServiceStreamResponse's event,
 * PeerServiceStreamResponse's message) is written around the encoding of
 * that field, made once per item and kept while the item lives: an event
 * going to a thousand streams is encoded once, not a thousand times.
 */
function responseEncoder(schema: DescMessage): (message: unknown) => Uint8Array {
  const plain = (message: unknown) => toBinary(schema, create(schema, message as never));
  const [only, ...more] = schema.fields;
  if (only === undefined || more.length > 0 || only.number !== 1 || only.fieldKind !== "message") return plain;
  const inner = only.message;
  const name = only.localName;
  const cache = new WeakMap<object, Uint8Array>();
  return (message) => {
    const item = (message as Record<string, unknown>)[name];
    const extra = (message as { $unknown?: unknown[] }).$unknown;
    if (typeof item !== "object" || item === null || (extra !== undefined && extra.length > 0)) return plain(message);
    let bytes = cache.get(item);
    if (bytes === undefined) {
      bytes = toBinary(inner, create(inner, item as never));
      cache.set(item, bytes);
    }
    return fieldOne(bytes);
  };
}

/** Field 1, length-delimited, holding `bytes`. */
function fieldOne(bytes: Uint8Array): Uint8Array {
  let length = bytes.length;
  const varint: number[] = [];
  do {
    let b = length & 0x7f;
    length = Math.floor(length / 128);
    if (length > 0) b |= 0x80;
    varint.push(b);
  } while (length > 0);
  const out = new Uint8Array(1 + varint.length + bytes.length);
  out[0] = 0x0a;
  out.set(varint, 1);
  out.set(bytes, 1 + varint.length);
  return out;
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
async function* normalized(schema: DescMessage, items: AsyncIterable<unknown>): AsyncGenerator<never> {
  for await (const item of items) yield create(schema, item as never) as never;
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
function readEnvelope(req: Http2ServerRequest, readMaxBytes: number): Promise<Uint8Array> {
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
function parseInput(method: DescMethod, bytes: Uint8Array) {
  try {
    return fromBinary(method.input, bytes);
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

/** Node's request headers as fetch Headers, without HTTP/2 pseudo-headers, as connect-node builds them. */
function webHeaders(nodeHeaders: Http2ServerRequest["headers"]): Headers {
  const out = new Headers();
  for (const key of Object.keys(nodeHeaders)) {
    if (key.startsWith(":")) continue;
    const value = nodeHeaders[key];
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) out.append(key, v);
    else out.append(key, String(value));
  }
  return out;
}

function nodeHeaders(headers: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  headers.forEach((value, key) => {
    out[key] = value;
  });
  return out;
}

/** Makes `target` hold exactly what `source` holds (an interceptor may have returned other Headers). */
function replaceHeaders(target: Headers, source: Headers): void {
  if (source === target) return;
  for (const key of [...target.keys()]) target.delete(key);
  source.forEach((value, key) => {
    target.append(key, value);
  });
}
