import type { Interceptor, Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport, Http2SessionManager } from "@connectrpc/connect-node";
import type { StategateClient, TokenSource } from "@stategate/api";
import { bearerToken, createStategateClient } from "@stategate/api";
import { createLeanGrpcTransport } from "./lean-grpc-transport.js";

/** The wire protocol a client speaks. All three reach the same handlers on the same port. */
export type Protocol = "grpc" | "grpc-web" | "connect";

/** Options of `createClient`. */
export interface ClientOptions {
  /** Where the gateway listens, e.g. "http://localhost:8080". */
  baseUrl: string;
  /**
   * Defaults to "grpc", over the SDK's own lean transport (see
   * `createLeanGrpcTransport`); "grpc-web" and "connect" use connect-node's.
   */
  protocol?: Protocol;
  /**
   * Encode messages as protobuf binary (true) or JSON (false). gRPC is always
   * binary; gRPC-Web and Connect default to binary.
   */
  binary?: boolean;
  /** A bearer token, or a function that returns the current one (called per request). */
  token?: TokenSource;
  /** HTTP version for gRPC-Web and Connect; gRPC always uses HTTP/2. Defaults to "2". */
  httpVersion?: "1.1" | "2";
  /** Extra interceptors, run before the token is attached. */
  interceptors?: Interceptor[];
  /**
   * An idle HTTP/2 connection closes after this long, so a script that
   * forgets `close()` still exits. Defaults to 5000 ms.
   */
  idleTimeoutMs?: number;
}

/** A client whose connection can be closed. */
export interface NodeClient extends StategateClient {
  /** Closes the HTTP/2 connection, ending any open streams. The client can still be used; it reconnects. */
  close(): void;
}

/** Creates typed clients for every stategate service over the chosen protocol. */
export function createClient(options: ClientOptions): NodeClient {
  const sessionManager = new Http2SessionManager(options.baseUrl, {
    idleConnectionTimeoutMs: options.idleTimeoutMs ?? 5_000,
  });
  return { ...createStategateClient(createTransport(options, sessionManager)), close: () => sessionManager.abort() };
}

function createTransport(options: ClientOptions, sessionManager: Http2SessionManager): Transport {
  const interceptors = [...(options.interceptors ?? [])];
  if (options.token !== undefined) interceptors.push(bearerToken(options.token));
  const useBinaryFormat = options.binary ?? true;
  const httpVersion = options.httpVersion ?? "2";
  const common = { baseUrl: options.baseUrl, interceptors, sessionManager };
  switch (options.protocol ?? "grpc") {
    case "grpc":
      return createLeanGrpcTransport(common);
    case "grpc-web":
      return createGrpcWebTransport({ ...common, httpVersion, useBinaryFormat });
    case "connect":
      return createConnectTransport({ ...common, httpVersion, useBinaryFormat });
    default:
      throw new TypeError(`unknown protocol "${String(options.protocol)}": use "grpc", "grpc-web" or "connect"`);
  }
}
