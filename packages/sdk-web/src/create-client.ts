import type { Interceptor, Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import type { StategateClient, TokenSource } from "@stategate/api";
import { bearerToken, createStategateClient } from "@stategate/api";

/** The wire protocol a browser client speaks. Both reach the same handlers as gRPC on the same port. */
export type Protocol = "grpc-web" | "connect";

/** Options of `createClient`. */
export interface ClientOptions {
  /** Where the gateway listens, e.g. "https://stategate.example.com"; it must allow this page's origin (CORS). */
  baseUrl: string;
  /** Defaults to "connect". */
  protocol?: Protocol;
  /** Encode messages as protobuf binary (true, the default) or JSON (false). */
  binary?: boolean;
  /** A bearer token, or a function that returns the current one (called per request). */
  token?: TokenSource;
  /** Extra interceptors, run before the token is attached. */
  interceptors?: Interceptor[];
  /**
   * The fetch to use, for example one that sets `credentials: "include"`.
   * Defaults to the global fetch.
   */
  fetch?: typeof globalThis.fetch;
}

/**
 * Creates typed clients for every stategate service over gRPC-Web or Connect,
 * using the browser's fetch. Nothing needs closing: each call is its own
 * request, and leaving a `for await` loop over a stream cancels it.
 */
export function createClient(options: ClientOptions): StategateClient {
  return createStategateClient(createTransport(options));
}

function createTransport(options: ClientOptions): Transport {
  const interceptors = [...(options.interceptors ?? [])];
  if (options.token !== undefined) interceptors.push(bearerToken(options.token));
  const common = {
    baseUrl: options.baseUrl,
    interceptors,
    useBinaryFormat: options.binary ?? true,
    // Absent, connect-web looks up the global fetch on each call.
    fetch: options.fetch,
  };
  switch (options.protocol ?? "connect") {
    case "grpc-web":
      return createGrpcWebTransport(common);
    case "connect":
      return createConnectTransport(common);
    default:
      throw new TypeError(`unknown protocol "${String(options.protocol)}": use "grpc-web" or "connect"`);
  }
}
