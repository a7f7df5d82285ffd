import type { ClientHttp2Stream, IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http2";
import http2 from "node:http2";
import { Code, ConnectError } from "@connectrpc/connect";
import { getAbortSignalReason } from "@connectrpc/connect/protocol";
import type { Http2SessionManager } from "@connectrpc/connect-node";
import type { EnvelopeSink } from "./envelope-reader.js";
import { EnvelopeReader } from "./envelope-reader.js";
import { errorFromNodeReason, errorFromResetCode, isStreamReset, isWriteAfterEnd } from "./node-error.js";

/**
 * One gRPC call's HTTP/2 stream, read as it arrives: the response headers,
 * each enveloped message, the trailers. Each check, its order and its error
 * are those of Connect's gRPC transport over connect-node (the protocol rules
 * themselves are Connect's exported helpers); what differs is the machinery:
 * stream events feed the call directly instead of a chain of async iterables.
 * `UnaryExchange` and `StreamExchange` are the two kinds of call.
 */

/** A call's own cancellation (see `CallControl`), which tells its exchange directly rather than through a listener. */
export interface AbortWatch {
  /** Set when the call was aborted: why. */
  readonly abortReason: { reason: unknown } | undefined;
  watcher: { abortedWith(reason: unknown): void } | undefined;
}

/** Response headers before there are any. */
const noHeaders: IncomingHttpHeaders = Object.freeze({});

/** We never send grpc-accept-encoding, so a response in any encoding but identity is refused. */
export const noCompression: never[] = [];

const kExchange = Symbol("stategate.exchange");
type OwnedStream = ClientHttp2Stream & { [kExchange]: Exchange };

/** What every exchange shares: opening the stream, its events, failing once. */
export abstract class Exchange implements EnvelopeSink {
  protected stream: ClientHttp2Stream | undefined;
  /** Past its clean end or its failure: nothing the stream does counts any more (Connect's closed sentinel). */
  protected settled = false;
  private failure: ConnectError | undefined;
  private gotResponse = false;
  /** The response headers as Node gave them; made into Headers only when read (see `header`). */
  protected rawHeader: IncomingHttpHeaders = noHeaders;
  private builtHeader: Headers | undefined;
  protected readonly reader: EnvelopeReader;
  private watch: AbortWatch | undefined;
  private listened: AbortSignal | undefined;

  constructor(
    private readonly sessionManager: Http2SessionManager,
    readMaxBytes: number,
  ) {
    this.reader = new EnvelopeReader(readMaxBytes, this);
  }

  /** The response headers arrived; throws to fail the call. */
  protected abstract response(status: number): void;
  /** The response ended cleanly, after its trailers. */
  protected abstract ended(): void;
  /** The call failed; called once, and nothing else is called after it. */
  protected abstract failed(error: ConnectError): void;
  abstract envelope(flags: number, payload: Uint8Array): void;

  /**
   * Opens the stream. `signal` is the request's, if an interceptor gave it
   * one of its own (listened to); otherwise the call's `watch` tells us.
   */
  protected open(path: string, headers: OutgoingHttpHeaders, signal: AbortSignal | undefined, watch: AbortWatch): void {
    if (signal === undefined) {
      const aborted = watch.abortReason;
      if (aborted !== undefined) {
        this.fail(aborted.reason);
        return;
      }
      this.watch = watch;
      watch.watcher = this;
    } else {
      if (signal.aborted) {
        this.fail(getAbortSignalReason(signal));
        return;
      }
      this.listened = signal;
      signal.addEventListener("abort", this);
    }
    this.sessionManager.request("POST", path, headers, {}).then(
      (stream) => this.attach(stream),
      (reason: unknown) => this.fail(reason),
    );
  }

  /** Writes the request once the stream is open. */
  protected abstract send(stream: ClientHttp2Stream): void;

  private attach(stream: ClientHttp2Stream): void {
    this.stream = stream;
    (stream as OwnedStream)[kExchange] = this;
    // Always listened to: Node emits 'error' for a stream we reset ourselves.
    stream.on("error", onStreamError);
    if (this.settled) {
      // Aborted while the connection was being made.
      if (!stream.closed) stream.close(resetCodeOf(this.failure));
      return;
    }
    stream.on("response", onStreamResponse);
    stream.on("data", onStreamData);
    stream.on("trailers", onStreamTrailers);
    stream.on("end", onStreamEnd);
    stream.on("close", onStreamClose);
    this.send(stream);
  }

  /** The signal of an interceptor's making aborted. */
  handleEvent(): void {
    if (this.listened) this.fail(getAbortSignalReason(this.listened));
  }

  /** The call's own signal aborted. */
  abortedWith(reason: unknown): void {
    this.fail(reason);
  }

  /** Fails the call with `reason` as connect-node names it, resetting the stream if it is still open. */
  fail(reason: unknown): void {
    if (this.settled) return;
    const error = reason instanceof ConnectError ? reason : errorFromNodeReason(reason);
    this.settle();
    this.failure = error;
    const stream = this.stream;
    if (stream !== undefined && !stream.closed) stream.close(resetCodeOf(error));
    this.failed(error);
  }

  /** A message broke the protocol (or did not parse); a stream tells its reader after the messages before it. */
  protected broken(error: unknown): void {
    this.fail(error);
  }

  /** Stops watching: from here on, events and aborts are ignored. */
  protected settle(): void {
    this.settled = true;
    if (this.watch !== undefined) {
      if (this.watch.watcher === this) this.watch.watcher = undefined;
      this.watch = undefined;
    }
    if (this.listened !== undefined) {
      this.listened.removeEventListener("abort", this);
      this.listened = undefined;
    }
  }

  /**
   * The response headers as fetch Headers. A call that succeeds checks them
   * on Node's object and never makes these unless its caller (`onHeader`,
   * an interceptor) reads them.
   */
  get header(): Headers {
    this.builtHeader ??= webHeaders(this.rawHeader);
    return this.builtHeader;
  }

  /** The trailers as fetch Headers. */
  abstract get trailer(): Headers;

  // The stream's events, through the shared listeners below.

  onResponse(headers: IncomingHttpHeaders): void {
    if (this.settled) return;
    this.gotResponse = true;
    this.rawHeader = headers;
    try {
      this.response(Number(headers[":status"] ?? 0));
    } catch (err) {
      this.fail(err);
    }
  }

  onData(chunk: Buffer): void {
    if (this.settled) return;
    this.sessionManager.notifyResponseByteRead(this.stream as ClientHttp2Stream);
    try {
      this.reader.push(chunk);
    } catch (err) {
      this.broken(err);
    }
  }

  onTrailers(trailers: IncomingHttpHeaders): void {
    if (this.settled) return;
    this.trailers(trailers);
  }

  /** The trailers arrived. */
  protected abstract trailers(trailers: IncomingHttpHeaders): void;

  onEnd(): void {
    if (this.settled) return;
    // A stream reset before any headers also ends; its 'close' comes next and tells why.
    if (!this.gotResponse) return;
    this.settle();
    this.ended();
  }

  onClose(rstCode: number): void {
    if (this.settled) return;
    // Without a code to go by (NO_ERROR before any headers), connect-node would wait forever.
    this.fail(errorFromResetCode(rstCode) ?? closedEarly());
  }

  onError(err: Error): void {
    // The server answered before the whole request was written: its answer counts, not the write.
    if (this.stream?.writableEnded && isWriteAfterEnd(err)) return;
    // A stream the server reset once it had answered: Node says so with an error
    // before 'close', and the reset code says what it means (ENHANCE_YOUR_CALM, a
    // reader cut for falling behind, is RESOURCE_EXHAUSTED, as gRPC maps it). A
    // reset before any answer fails as connect-node fails it.
    const reset =
      this.stream !== undefined && this.gotResponse && isStreamReset(err)
        ? errorFromResetCode(this.stream.rstCode)
        : undefined;
    this.fail(reset ?? err);
  }
}

// Shared listeners, so a call allocates no closures for its stream's events.
function owner(stream: ClientHttp2Stream): Exchange {
  return (stream as OwnedStream)[kExchange];
}
function onStreamResponse(this: ClientHttp2Stream, headers: IncomingHttpHeaders) {
  owner(this).onResponse(headers);
}
function onStreamData(this: ClientHttp2Stream, chunk: Buffer) {
  owner(this).onData(chunk);
}
function onStreamTrailers(this: ClientHttp2Stream, trailers: IncomingHttpHeaders) {
  owner(this).onTrailers(trailers);
}
function onStreamEnd(this: ClientHttp2Stream) {
  owner(this).onEnd();
}
function onStreamClose(this: ClientHttp2Stream) {
  owner(this).onClose(this.rstCode);
}
function onStreamError(this: ClientHttp2Stream, err: Error) {
  owner(this).onError(err);
}

/** As connect-node resets a stream it leaves: CANCEL when the call was canceled, INTERNAL_ERROR otherwise. */
export function resetCodeOf(error: ConnectError | undefined): number {
  return error?.code === Code.Canceled ? http2.constants.NGHTTP2_CANCEL : http2.constants.NGHTTP2_INTERNAL_ERROR;
}

/** A stream gone before its answer, with nothing (no reset code, no error) to say why. */
function closedEarly(): ConnectError {
  return new ConnectError("protocol error: the http/2 stream closed before a response", Code.Internal);
}

/** A compressed message, though no encoding was agreed: Connect's error for it. */
export function compressedError(): ConnectError {
  return new ConnectError("received compressed envelope, but do not know how to decompress", Code.Internal);
}

/** A response's headers as fetch Headers, without HTTP/2 pseudo-headers, as connect-node builds them. */
export function webHeaders(headers: IncomingHttpHeaders): Headers {
  const out = new Headers();
  appendWebHeaders(out, headers);
  return out;
}

/** Adds Node's headers to fetch Headers, pseudo-headers left out. */
export function appendWebHeaders(out: Headers, headers: IncomingHttpHeaders): void {
  for (const key in headers) {
    if (key.charCodeAt(0) === 58 /* ":" */) continue;
    const value = headers[key];
    if (value === undefined) continue;
    if (typeof value === "string") out.append(key, value);
    else if (typeof value === "number") out.append(key, String(value));
    else for (const v of value) out.append(key, v);
  }
}

/** Request Headers as Node's HTTP/2 headers, repeated names as arrays, as connect-node sends them. */
export function nodeHeaders(headers: Headers): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = Object.create(null);
  headers.forEach((value, key) => {
    const existing = out[key];
    if (existing === undefined) out[key] = value;
    else if (Array.isArray(existing)) existing.push(value);
    else out[key] = [String(existing), value];
  });
  return out;
}
