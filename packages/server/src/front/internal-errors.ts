import { brotliDecompressSync, gunzipSync } from "node:zlib";
import type { ConnectRouter } from "@connectrpc/connect";
import type { UniversalHandler, UniversalServerRequest, UniversalServerResponse } from "@connectrpc/connect/protocol";

/**
 * The last boundary of every RPC: no internal error leaves the gateway with
 * anything but "internal error (request id …)".
 *
 * The interceptors' error boundary sees what handlers throw, but Connect
 * serializes a response after the interceptor chain returned it (each message
 * of a stream as it goes), and a failure there is sent with its own message:
 * "Invalid string length" for a response too long for one JSON string,
 * "serialize binary: Maximum call stack size exceeded" for one nested too
 * deep. Connect's own faults ("internal error", without the request id) pass
 * outside it too. So each handler's answer is checked where the error is
 * finally written, in each protocol's own place for it: the Connect unary
 * error body, the Connect end-of-stream message, the gRPC-Web trailer frame,
 * the gRPC trailers. Only frames with the end-of-stream or trailer flag are
 * looked at, so data frames pass through untouched.
 */

/** A rewritten error: its request id and the message it would have carried. */
export type HiddenError = { requestId: string | null; method: string; message: string };

const INTERNAL = 13;
const UNKNOWN = 2;

/** Wraps every handler of `router` (call it once all services are registered). */
export function hideInternalErrors(router: ConnectRouter, onHidden: (hidden: HiddenError) => void): void {
  const handlers = router.handlers;
  for (let i = 0; i < handlers.length; i++) {
    const handler = handlers[i] as UniversalHandler;
    const method = `/${handler.service.typeName}/${handler.method.name}`;
    const wrapped = async (req: UniversalServerRequest) => safeResponse(await handler(req), req, method, onHidden);
    handlers[i] = Object.assign(wrapped, handler);
  }
}

async function safeResponse(
  res: UniversalServerResponse,
  req: UniversalServerRequest,
  method: string,
  onHidden: (hidden: HiddenError) => void,
): Promise<UniversalServerResponse> {
  /** The message to send instead of `message`, or undefined to keep it; `id` is a request id found beside it. */
  const replace: Replace = (message, id) => {
    if (SAFE.test(message)) return undefined; // the error boundary's own
    const requestId = res.header?.get("x-request-id") ?? id ?? null;
    // A client that left (`buf curl … | head -1`) is not a fault of ours: nothing to report.
    if (!req.signal.aborted) onHidden({ requestId, method, message });
    return requestId ? `internal error (request id ${requestId})` : "internal error";
  };
  const type = req.header.get("content-type") ?? "";
  if (type.startsWith("application/grpc-web"))
    return { ...res, body: mapFrames(res, 0x80, "grpc-encoding", grpcWebTrailer(replace)) };
  if (type.startsWith("application/grpc"))
    return { ...res, body: afterBody(res, () => grpcTrailer(res.trailer, replace)) };
  if (type.startsWith("application/connect")) {
    return { ...res, body: mapFrames(res, 0x02, "connect-content-encoding", connectEndStream(replace)) };
  }
  // Connect unary (and GET): an error is a JSON body with a status other than 200.
  if (res.status !== 200 && res.body !== undefined && (res.header?.get("content-type") ?? "").includes("json")) {
    return connectUnaryError(res, replace);
  }
  return res;
}

type Replace = (message: string, requestId?: string) => string | undefined;

/** What toWireError sends for an internal error. */
const SAFE = /^internal error \(request id [\w.:-]{1,128}\)$/;

/** Each frame of a streaming body; those with `flag` set go through `fix` (decompressed when they were compressed). */
function mapFrames(
  res: UniversalServerResponse,
  flag: number,
  encodingHeader: string,
  fix: (data: Uint8Array) => Uint8Array | undefined,
): UniversalServerResponse["body"] {
  const body = res.body;
  if (body === undefined || body instanceof Uint8Array || !(Symbol.asyncIterator in Object(body))) return body;
  const encoding = res.header?.get(encodingHeader) ?? null;
  return (async function* () {
    for await (const chunk of body as AsyncIterable<Uint8Array>) {
      // The handlers yield one whole envelope per chunk: flags, length, data.
      if (chunk.length < 5 || ((chunk[0] as number) & flag) === 0) {
        yield chunk;
        continue;
      }
      const compressed = ((chunk[0] as number) & 0x01) !== 0;
      const data = compressed ? decompress(chunk.subarray(5), encoding) : chunk.subarray(5);
      const fixed = data && fix(data);
      if (fixed === undefined) {
        yield chunk;
        continue;
      }
      const out = new Uint8Array(5 + fixed.length);
      out[0] = (chunk[0] as number) & ~0x01;
      new DataView(out.buffer).setUint32(1, fixed.length);
      out.set(fixed, 5);
      yield out;
    }
  })();
}

function decompress(data: Uint8Array, encoding: string | null): Uint8Array | undefined {
  try {
    if (encoding === "gzip") return gunzipSync(data);
    if (encoding === "br") return brotliDecompressSync(data);
  } catch {
    // not what the header says: leave the frame as it is
  }
  return undefined;
}

/** Runs `end` once the body was read to its end (gRPC writes its trailers after the body). */
function afterBody(res: UniversalServerResponse, end: () => void): UniversalServerResponse["body"] {
  const body = res.body;
  if (body === undefined || body instanceof Uint8Array || !(Symbol.asyncIterator in Object(body))) {
    end();
    return body;
  }
  return (async function* () {
    yield* body as AsyncIterable<Uint8Array>;
    end();
  })();
}

function grpcTrailer(trailer: Headers | undefined, replace: Replace): void {
  const status = Number(trailer?.get("grpc-status"));
  if (!trailer || (status !== INTERNAL && status !== UNKNOWN)) return;
  const safe = replace(decode(trailer.get("grpc-message") ?? ""), trailer.get("x-request-id") ?? undefined);
  if (safe === undefined) return;
  trailer.set("grpc-status", String(INTERNAL));
  trailer.set("grpc-message", encodeURIComponent(safe));
  trailer.delete("grpc-status-details-bin");
}

function grpcWebTrailer(replace: Replace): (data: Uint8Array) => Uint8Array | undefined {
  return (data) => {
    const lines = new TextDecoder().decode(data).split("\r\n").filter(Boolean);
    const value = (name: string) =>
      lines
        .find((l) => l.slice(0, l.indexOf(":")).trim().toLowerCase() === name)
        ?.slice(name.length + 1)
        .trim();
    const status = Number(value("grpc-status"));
    if (status !== INTERNAL && status !== UNKNOWN) return undefined;
    const safe = replace(decode(value("grpc-message") ?? ""), value("x-request-id"));
    if (safe === undefined) return undefined;
    const kept = lines.filter((l) => !/^grpc-(status|message|status-details-bin)\s*:/i.test(l));
    const text = [...kept, `grpc-status: ${INTERNAL}`, `grpc-message: ${encodeURIComponent(safe)}`]
      .map((l) => `${l}\r\n`)
      .join("");
    return new TextEncoder().encode(text);
  };
}

/** An error as Connect writes it: `{"code": "internal", "message": …}`. */
interface ErrorJson {
  code?: unknown;
  message?: unknown;
  details?: unknown;
}

/** The error with a safe message, or undefined when it needs none. */
function fixErrorJson(error: ErrorJson | undefined, replace: Replace, requestId?: string): ErrorJson | undefined {
  if (!error || (error.code !== "internal" && error.code !== "unknown")) return undefined;
  const safe = replace(typeof error.message === "string" ? error.message : "", requestId);
  return safe === undefined ? undefined : { code: "internal", message: safe };
}

function connectEndStream(replace: Replace): (data: Uint8Array) => Uint8Array | undefined {
  return (data) => {
    let end: { error?: ErrorJson; metadata?: Record<string, string[] | undefined> };
    try {
      end = JSON.parse(new TextDecoder().decode(data)) as typeof end;
    } catch {
      return undefined;
    }
    const error = fixErrorJson(end.error, replace, end.metadata?.["x-request-id"]?.[0]);
    return error && new TextEncoder().encode(JSON.stringify({ ...end, error }));
  };
}

/** The Connect unary error body with a safe message; read whole first, since clients read its length before it. */
async function connectUnaryError(res: UniversalServerResponse, replace: Replace): Promise<UniversalServerResponse> {
  const body = res.body as AsyncIterable<Uint8Array> | Uint8Array;
  const chunks: Uint8Array[] = [];
  if (body instanceof Uint8Array) chunks.push(body);
  else for await (const chunk of body) chunks.push(chunk);
  const bytes = Buffer.concat(chunks);
  const encoding = res.header?.get("content-encoding") ?? null;
  const text = encoding ? decompress(bytes, encoding) : bytes;
  let error: ErrorJson | undefined;
  try {
    error = text ? fixErrorJson(JSON.parse(new TextDecoder().decode(text)) as ErrorJson, replace) : undefined;
  } catch {
    error = undefined;
  }
  if (error === undefined) return { ...res, body: once(bytes) };
  const fixed = new TextEncoder().encode(JSON.stringify(error));
  res.header?.delete("content-encoding");
  res.header?.set("content-length", String(fixed.length));
  return { ...res, body: once(fixed) };
}

async function* once(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

function decode(message: string): string {
  try {
    return decodeURIComponent(message);
  } catch {
    return message;
  }
}
