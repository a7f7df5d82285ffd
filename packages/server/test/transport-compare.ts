import assert from "node:assert/strict";
import type { IncomingHttpHeaders, ServerHttp2Stream } from "node:http2";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import type { CallOptions, Interceptor, Transport } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { createLeanGrpcTransport } from "@stategate/sdk-node";

/**
 * Holds the SDK's lean gRPC transport to connect-node's `createGrpcTransport`:
 * the same call through each must come out the same (message, code, message
 * text, metadata, details, headers, trailers). Also a small HTTP/2 server
 * that answers the bytes a test asks for, to reach the protocol's edge cases
 * a real gateway never produces.
 */

/** The two transports compared: connect-node's, and the SDK's. */
export const kinds = ["connect-node", "lean"] as const;
export type Kind = (typeof kinds)[number];

/** The options both transports take. */
export interface CompareOptions {
  baseUrl: string;
  interceptors?: Interceptor[];
  readMaxBytes?: number;
  writeMaxBytes?: number;
  defaultTimeoutMs?: number;
}

/** Makes transports of either kind, each on its own connection; `close()` ends them all. */
export function transportMaker() {
  const managers: Http2SessionManager[] = [];
  return {
    make(kind: Kind, options: CompareOptions): Transport {
      const sessionManager = new Http2SessionManager(options.baseUrl);
      managers.push(sessionManager);
      return kind === "lean"
        ? createLeanGrpcTransport({ ...options, sessionManager })
        : createGrpcTransport({ ...options, sessionManager });
    },
    close() {
      for (const m of managers) m.abort();
      managers.length = 0;
    },
  };
}

/** What a call came to, in a form `deepEqual` compares. */
export interface Outcome {
  /** What the call returned, as the test reduced it. */
  ok?: unknown;
  error?: {
    code: string;
    message: string;
    metadata: [string, string][];
    details: { type: string; value: string }[];
    /** The `code` of the error's cause (a Node error), if any. */
    cause?: string;
  };
  /** What onHeader and onTrailer were given. */
  header?: [string, string][];
  trailer?: [string, string][];
}

/** Values that differ from call to call. */
const varying = new Set(["x-request-id", "date"]);

/** Headers as entries, with per-call values blanked. */
export function entries(headers: Headers): [string, string][] {
  return [...headers].map(([k, v]): [string, string] => [k, varying.has(k) ? "*" : v]);
}

/** An error as an Outcome's `error`. */
export function errorOf(err: unknown): NonNullable<Outcome["error"]> {
  if (!(err instanceof ConnectError)) {
    return { code: "not a ConnectError", message: String(err), metadata: [], details: [] };
  }
  const cause = (err.cause as { code?: unknown } | undefined)?.code;
  return {
    code: Code[err.code],
    message: err.rawMessage,
    metadata: entries(err.metadata),
    details: err.details.map((d) =>
      "desc" in d
        ? { type: d.desc.typeName, value: JSON.stringify(d.value) }
        : { type: d.type, value: Buffer.from(d.value).toString("hex") },
    ),
    ...(typeof cause === "string" ? { cause } : {}),
  };
}

/** Runs `call` with options that record the headers and trailers, and reduces what it came to. */
export async function outcomeOf(call: (options: CallOptions) => Promise<unknown>): Promise<Outcome> {
  const outcome: Outcome = {};
  try {
    outcome.ok = await call({
      onHeader: (h) => {
        outcome.header = entries(h);
      },
      onTrailer: (t) => {
        outcome.trailer = entries(t);
      },
    });
  } catch (err) {
    outcome.error = errorOf(err);
  }
  return outcome;
}

/**
 * Makes the call over each transport in turn (`call` is given the kind, to
 * keep per-transport state apart), asserts both came to the same, and
 * returns what they came to.
 */
export async function same<T>(call: (kind: Kind) => Promise<T>): Promise<T> {
  const reference = await call("connect-node");
  const lean = await call("lean");
  assert.deepEqual(lean, reference, "the lean transport differs from connect-node's");
  return reference;
}

/** One request as the peer saw it. */
export interface Seen {
  headers: IncomingHttpHeaders;
  /** The request body's bytes. */
  body: Buffer;
  /** The stream's reset code once it closed (0 when it ended cleanly); the client's CANCEL is 8. */
  rstCode: number;
}

/** How the peer answers a request (`x-peer` names one); `release` resolves when the test says so. */
export type Behavior = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, release: Promise<void>) => void;

/** The protocol peer: an HTTP/2 server answering each request as its `x-peer` header says. */
export interface Peer {
  baseUrl: string;
  /** How the request with `x-peer-id: id` went, once its stream closed. */
  seen(id: string): Promise<Seen>;
  /** Lets the behavior of request `id` go on (see `Behavior`). */
  release(id: string): void;
  close(): Promise<void>;
}

export async function startPeer(behaviors: Record<string, Behavior>): Promise<Peer> {
  const seen = new Map<string, Promise<Seen>>();
  const releases = new Map<string, () => void>();
  const releaseOf = (id: string) => {
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    releases.set(id, release);
    return released;
  };
  const server = http2.createServer();
  server.on("stream", (stream, headers) => {
    stream.on("error", () => {});
    const id = String(headers["x-peer-id"] ?? "");
    const chunks: Buffer[] = [];
    stream.on("data", (c: Buffer) => chunks.push(c));
    seen.set(
      id,
      new Promise((resolve) =>
        stream.once("close", () => resolve({ headers, body: Buffer.concat(chunks), rstCode: stream.rstCode })),
      ),
    );
    const behavior = behaviors[String(headers["x-peer"])];
    if (behavior === undefined) {
      stream.respond({ ":status": 200, "content-type": "application/grpc", "grpc-status": "12" }, { endStream: true });
      return;
    }
    behavior(stream, headers, releaseOf(id));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (s) => {
    sessions.add(s);
    s.on("close", () => sessions.delete(s));
  });
  return {
    baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen(id) {
      const s = seen.get(id);
      if (s === undefined) throw new Error(`the peer saw no request ${id}`);
      return s;
    },
    release(id) {
      releases.get(id)?.();
    },
    async close() {
      for (const s of sessions) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** One gRPC answer's parts, for behaviors: the response headers, enveloped messages, then trailers. */
export function answer(
  stream: ServerHttp2Stream,
  messages: Uint8Array[],
  trailers: Record<string, string> = { "grpc-status": "0" },
  headers: Record<string, string> = {},
): void {
  stream.respond({ ":status": 200, "content-type": "application/grpc+proto", ...headers }, { waitForTrailers: true });
  stream.on("wantTrailers", () => stream.sendTrailers(trailers));
  for (const m of messages) stream.write(m);
  stream.end();
}
