import type { ClientHttp2Stream, IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http2";
import { Code, ConnectError } from "@connectrpc/connect";
import { headerGrpcStatus, validateResponseWithCompression, validateTrailer } from "@connectrpc/connect/protocol-grpc";
import type { Http2SessionManager } from "@connectrpc/connect-node";
import { compressedFlag } from "./envelope-reader.js";
import type { AbortWatch } from "./h2-exchange.js";
import { compressedError, Exchange, noCompression, webHeaders } from "./h2-exchange.js";

/**
 * Whether Connect's `validateResponse` would find nothing to say about these
 * headers: a 200 with the plain gRPC content type, no status, no encoding.
 * Anything else goes to Connect's helpers themselves.
 */
function plainResponse(status: number, headers: IncomingHttpHeaders): boolean {
  const type = headers["content-type"];
  return (
    status === 200 &&
    (type === "application/grpc+proto" || type === "application/grpc") &&
    headers["grpc-status"] === undefined &&
    headers["grpc-status-details-bin"] === undefined &&
    headers["grpc-encoding"] === undefined
  );
}

/** Whether Connect's `validateTrailer` would pass these trailers: grpc-status 0 and nothing else to read. */
function okTrailers(trailers: IncomingHttpHeaders | undefined): boolean {
  return trailers !== undefined && trailers["grpc-status"] === "0" && trailers["grpc-status-details-bin"] === undefined;
}

/** A unary call: one request message written at once, one response message expected. */
export class UnaryExchange extends Exchange {
  private message: unknown;
  private headerError: ConnectError | undefined;
  private plain = false;
  private rawTrailer: IncomingHttpHeaders | undefined;
  private builtTrailer: Headers | undefined;
  private resolve!: (message: unknown) => void;
  private reject!: (error: ConnectError) => void;
  /** Settles with the response message, or the error the call failed with. */
  readonly result: Promise<unknown>;
  private body: Buffer | undefined;

  constructor(
    sessionManager: Http2SessionManager,
    readMaxBytes: number,
    private readonly parse: (payload: Uint8Array) => unknown,
  ) {
    super(sessionManager, readMaxBytes);
    this.result = new Promise<unknown>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  /** Starts the call: `body` is the one enveloped request message. */
  start(
    path: string,
    headers: OutgoingHttpHeaders,
    body: Buffer,
    signal: AbortSignal | undefined,
    watch: AbortWatch,
  ): void {
    this.body = body;
    this.open(path, headers, signal, watch);
  }

  protected send(stream: ClientHttp2Stream): void {
    stream.end(this.body);
    this.body = undefined;
  }

  protected response(status: number): void {
    this.plain = plainResponse(status, this.rawHeader);
    if (!this.plain) {
      this.headerError = validateResponseWithCompression(noCompression, status, this.header).headerError;
    }
  }

  protected trailers(trailers: IncomingHttpHeaders): void {
    this.rawTrailer = trailers;
  }

  get trailer(): Headers {
    this.builtTrailer ??= this.rawTrailer === undefined ? new Headers() : webHeaders(this.rawTrailer);
    return this.builtTrailer;
  }

  envelope(flags: number, payload: Uint8Array): void {
    if (flags & compressedFlag) throw compressedError();
    const message = this.parse(payload);
    if (this.message !== undefined) {
      throw new ConnectError("protocol error: received extra output message for unary method", Code.Unimplemented);
    }
    this.message = message;
  }

  protected ended(): void {
    try {
      if (this.reader.partial) throw new ConnectError("protocol error: incomplete envelope", Code.InvalidArgument);
      const plain = this.plain && okTrailers(this.rawTrailer);
      if (!plain) validateTrailer(this.trailer, this.header);
      if (this.message === undefined) {
        // A trailers-only response.
        if (this.headerError) throw this.headerError;
        throw new ConnectError(
          "protocol error: missing output message for unary method",
          this.trailer.has(headerGrpcStatus) ? Code.Unimplemented : Code.Unknown,
        );
      }
      if (this.headerError) {
        throw new ConnectError(
          "protocol error: received output message for unary method with error status",
          Code.Unknown,
        );
      }
      this.resolve(this.message);
    } catch (err) {
      this.reject(err as ConnectError);
    }
  }

  protected failed(error: ConnectError): void {
    this.reject(error);
  }
}
