import type { ClientHttp2Stream, IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http2";
import http2 from "node:http2";
import { Code, ConnectError } from "@connectrpc/connect";
import { validateResponseWithCompression, validateTrailer } from "@connectrpc/connect/protocol-grpc";
import type { Http2SessionManager } from "@connectrpc/connect-node";
import { compressedFlag, encodeEnvelope } from "./envelope-reader.js";
import type { AbortWatch } from "./h2-exchange.js";
import { appendWebHeaders, compressedError, Exchange, noCompression, resetCodeOf } from "./h2-exchange.js";
import { errorFromNodeReason } from "./node-error.js";

/**
 * A server-streaming call, and the iterator over its response messages. A
 * message is handed over as soon as it is read; while none is asked for, the
 * stream is paused, so HTTP/2 flow control slows the server down as it
 * does for connect-node's pull-based reader.
 */
export class StreamExchange extends Exchange implements AsyncIterator<unknown> {
  /** Filled when the trailers arrive; the response hands it out before. */
  readonly trailer: Headers = new Headers();
  private foundStatus = false;
  private readonly queue: unknown[] = [];
  private waiter: { resolve: (r: IteratorResult<unknown>) => void; reject: (e: unknown) => void } | undefined;
  /** How the messages end once the queue is empty: done, or this error (delivered once). */
  private end: { error: ConnectError | undefined } | undefined;
  private responseSettled = false;
  private resolveResponse!: (header: Headers) => void;
  private rejectResponse!: (error: ConnectError) => void;
  /** Settles with the response headers, or with the error the call failed with before them. */
  readonly responded: Promise<Headers>;
  private messages: AsyncIterable<unknown> | undefined;

  constructor(
    sessionManager: Http2SessionManager,
    readMaxBytes: number,
    private readonly parse: (payload: Uint8Array) => unknown,
    private readonly serialize: (message: unknown) => Uint8Array,
  ) {
    super(sessionManager, readMaxBytes);
    this.responded = new Promise<Headers>((resolve, reject) => {
      this.resolveResponse = resolve;
      this.rejectResponse = reject;
    });
  }

  /** Starts the call: the request messages are written as `messages` yields them. */
  start(
    path: string,
    headers: OutgoingHttpHeaders,
    messages: AsyncIterable<unknown>,
    signal: AbortSignal | undefined,
    watch: AbortWatch,
  ): void {
    this.messages = messages;
    this.open(path, headers, signal, watch);
  }

  protected send(stream: ClientHttp2Stream): void {
    void this.pump(stream, this.messages as AsyncIterable<unknown>);
    this.messages = undefined;
  }

  private async pump(stream: ClientHttp2Stream, messages: AsyncIterable<unknown>): Promise<void> {
    try {
      for await (const message of messages) {
        if (this.settled) break;
        stream.write(encodeEnvelope(this.serialize(message)));
      }
      if (!this.settled) stream.end();
      // The server ended the call before the request did: do not leave our half open.
      else if (!stream.closed) stream.close(http2.constants.NGHTTP2_NO_ERROR);
    } catch (err) {
      this.fail(err);
    }
  }

  protected response(status: number): void {
    const { foundStatus, headerError } = validateResponseWithCompression(noCompression, status, this.header);
    if (headerError) throw headerError;
    this.foundStatus = foundStatus;
    this.responseSettled = true;
    this.resolveResponse(this.header);
  }

  protected trailers(trailers: IncomingHttpHeaders): void {
    appendWebHeaders(this.trailer, trailers);
  }

  envelope(flags: number, payload: Uint8Array): void {
    if (flags & compressedFlag) throw compressedError();
    const message = this.parse(payload);
    const waiter = this.waiter;
    if (waiter !== undefined) {
      this.waiter = undefined;
      waiter.resolve({ done: false, value: message });
    } else {
      this.queue.push(message);
    }
  }

  override onData(chunk: Buffer): void {
    super.onData(chunk);
    if (this.waiter === undefined && this.queue.length > 0 && !this.settled) this.stream?.pause();
  }

  protected override broken(error: unknown): void {
    if (this.settled) return;
    const failure = error instanceof ConnectError ? error : errorFromNodeReason(error);
    this.settle();
    const stream = this.stream;
    if (stream !== undefined && !stream.closed) stream.close(resetCodeOf(failure));
    this.finish(failure);
  }

  protected ended(): void {
    let error: ConnectError | undefined;
    try {
      if (this.reader.partial) throw new ConnectError("protocol error: incomplete envelope", Code.InvalidArgument);
      if (!this.foundStatus) validateTrailer(this.trailer, this.header);
    } catch (err) {
      error = err as ConnectError;
    }
    this.finish(error);
  }

  /** The messages end after those already read: cleanly, or with `error`. */
  private finish(error: ConnectError | undefined): void {
    this.end = { error };
    const waiter = this.waiter;
    if (waiter !== undefined && this.queue.length === 0) {
      this.waiter = undefined;
      this.deliverEnd(waiter.resolve, waiter.reject);
    }
  }

  protected failed(error: ConnectError): void {
    if (!this.responseSettled) {
      this.responseSettled = true;
      this.rejectResponse(error);
    }
    // A transport failure (abort, deadline, reset) ends the messages at once.
    this.queue.length = 0;
    this.finish(error);
  }

  next(): Promise<IteratorResult<unknown>> {
    if (this.queue.length > 0) return Promise.resolve({ done: false, value: this.queue.shift() });
    if (this.end !== undefined) {
      return new Promise((resolve, reject) => this.deliverEnd(resolve, reject));
    }
    const stream = this.stream;
    if (stream?.isPaused()) stream.resume();
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  private deliverEnd(resolve: (r: IteratorResult<unknown>) => void, reject: (e: unknown) => void): void {
    const error = this.end?.error;
    if (error === undefined) {
      resolve({ done: true, value: undefined });
      return;
    }
    this.end = { error: undefined };
    reject(error);
  }
}
