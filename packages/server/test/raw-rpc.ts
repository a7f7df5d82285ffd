import http2 from "node:http2";
import type { DescMessage } from "@bufbuild/protobuf";
import { create, toBinary } from "@bufbuild/protobuf";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import { EventServiceStreamRequestSchema, PeerServiceStreamRequestSchema } from "@stategate/api";

/** The RPC doors, spoken by hand: gRPC over HTTP/2, gRPC-Web and Connect over HTTP/1.1. */
export const rawDoors = ["grpc", "grpc-web", "connect"] as const;
export type RawDoor = (typeof rawDoors)[number];

/** The server streams, with their request messages. */
const streams: Record<string, DescMessage> = {
  "/stategate.v1.EventService/Stream": EventServiceStreamRequestSchema,
  "/stategate.v1.PeerService/Stream": PeerServiceStreamRequestSchema,
};

/** How a stream ended, as the client read it: the code in Connect's spelling ("ok", "deadline_exceeded" …). */
export interface RawEnd {
  code: string;
  message: string;
  /** Milliseconds from the request to the end. */
  ms: number;
}

/** A server stream opened by hand, so a test controls every header (grpc-timeout, connect-timeout-ms). */
export interface RawStream {
  /** How many messages arrived so far. */
  readonly messages: number;
  /** Settles when the stream ends, as the server ended it. */
  ended: Promise<RawEnd>;
  /** Leaves: resets the stream or aborts the request. */
  cancel(): void;
}

/** One enveloped message, as gRPC and Connect streams frame them: flags byte, 4-byte length, payload. */
export function envelope(flags: number, payload: Uint8Array): Buffer {
  const out = Buffer.alloc(5 + payload.length);
  out[0] = flags;
  out.writeUInt32BE(payload.length, 1);
  out.set(payload, 5);
  return out;
}

/** Splits enveloped frames (flags byte, 4-byte length, payload) as they arrive. */
function envelopes(onFrame: (flags: number, payload: Buffer) => void): (chunk: Buffer) => void {
  let buffered = Buffer.alloc(0);
  return (chunk) => {
    buffered = Buffer.concat([buffered, chunk]);
    while (buffered.length >= 5) {
      const length = buffered.readUInt32BE(1);
      if (buffered.length < 5 + length) return;
      onFrame(buffered[0]!, buffered.subarray(5, 5 + length));
      buffered = buffered.subarray(5 + length);
    }
  };
}

const grpcCode = (status: string | null | undefined) => {
  const n = Number(status ?? "2");
  return n === 0 ? "ok" : codeToString(n);
};

/** A gRPC request on a connection of its own; errors are read from statuses, never thrown. */
function grpcRequest(baseUrl: string, path: string, headers: Record<string, string>) {
  const session = http2.connect(baseUrl);
  session.on("error", () => {});
  const stream = session.request({
    ":method": "POST",
    ":path": path,
    "content-type": "application/grpc",
    te: "trailers",
    ...headers,
  });
  stream.on("error", () => {});
  return { session, stream };
}

/**
 * One unary call over gRPC (HTTP/2) or gRPC-Web (HTTP/1.1), spoken by hand
 * with `headers` added, so no client-side timer or check gets in the way;
 * resolves with the status the gateway sent, in Connect's spelling ("ok",
 * "deadline_exceeded" …), and the HTTP status.
 */
export async function rawUnary(
  baseUrl: string,
  door: "grpc" | "grpc-web",
  path: string,
  body: Uint8Array,
  headers: Record<string, string> = {},
): Promise<{ code: string; status: number }> {
  if (door === "grpc-web") {
    const res = await fetch(`${baseUrl}${path}`, {
      method: "POST",
      headers: { "content-type": "application/grpc-web+proto", ...headers },
      body: new Uint8Array(body),
    });
    const raw = Buffer.from(await res.arrayBuffer()).toString("latin1");
    return {
      code: grpcCode(res.headers.get("grpc-status") ?? /grpc-status:\s*(\d+)/.exec(raw)?.[1]),
      status: res.status,
    };
  }
  const { session, stream } = grpcRequest(baseUrl, path, headers);
  try {
    let status: string | undefined;
    let httpStatus = 0;
    const read = (h: http2.IncomingHttpHeaders) => {
      if (h[":status"] !== undefined) httpStatus = Number(h[":status"]);
      if (h["grpc-status"] !== undefined) status = String(h["grpc-status"]);
    };
    stream.on("response", read);
    stream.on("trailers", read);
    stream.resume();
    stream.end(body);
    await new Promise((resolve) => stream.once("close", resolve));
    return { code: grpcCode(status), status: httpStatus };
  } finally {
    session.close();
  }
}

/**
 * Opens `path` (a server stream) through `door` with `headers` added to the
 * request. The request message is binary protobuf on every door.
 */
export function openRawStream(
  baseUrl: string,
  door: RawDoor,
  path: keyof typeof streams | string,
  request: Record<string, unknown>,
  headers: Record<string, string> = {},
): RawStream {
  const schema = streams[path];
  if (!schema) throw new Error(`not a server stream: ${path}`);
  const body = envelope(0, toBinary(schema, create(schema, request)));
  const started = Date.now();
  let messages = 0;
  const end = (code: string, message = ""): RawEnd => ({ code, message, ms: Date.now() - started });

  if (door === "grpc") {
    const { session, stream } = grpcRequest(baseUrl, path, headers);
    let status: string | undefined;
    let message = "";
    const read = (h: http2.IncomingHttpHeaders) => {
      if (h["grpc-status"] !== undefined) {
        status = String(h["grpc-status"]);
        message = decodeURIComponent(String(h["grpc-message"] ?? ""));
      }
    };
    stream.on("response", read);
    stream.on("trailers", read);
    stream.on(
      "data",
      envelopes(() => messages++),
    );
    const ended = new Promise<RawEnd>((resolve) =>
      stream.once("close", () => {
        session.close();
        resolve(status === undefined ? end(`reset ${stream.rstCode}`) : end(grpcCode(status), message));
      }),
    );
    stream.end(body);
    return {
      get messages() {
        return messages;
      },
      ended,
      cancel: () => stream.close(http2.constants.NGHTTP2_CANCEL),
    };
  }

  const abort = new AbortController();
  const contentType = door === "grpc-web" ? "application/grpc-web+proto" : "application/connect+proto";
  const ended = (async (): Promise<RawEnd> => {
    let result: RawEnd | undefined;
    try {
      const res = await fetch(`${baseUrl}${path}`, {
        method: "POST",
        headers: { "content-type": contentType, ...headers },
        body: new Uint8Array(body),
        signal: abort.signal,
      });
      if (res.headers.get("grpc-status")) {
        return end(grpcCode(res.headers.get("grpc-status") ?? undefined), res.headers.get("grpc-message") ?? "");
      }
      const split = envelopes((flags, payload) => {
        if (door === "grpc-web" && flags & 0x80) {
          const trailers = Object.fromEntries(
            payload
              .toString("utf8")
              .split("\r\n")
              .filter((l) => l.includes(":"))
              .map((l) => [l.slice(0, l.indexOf(":")).trim().toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]),
          );
          result = end(grpcCode(trailers["grpc-status"]), decodeURIComponent(trailers["grpc-message"] ?? ""));
        } else if (door === "connect" && flags & 0x02) {
          const json = JSON.parse(payload.toString("utf8")) as { error?: { code: string; message?: string } };
          result = end(json.error?.code ?? "ok", json.error?.message ?? "");
        } else {
          messages++;
        }
      });
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) split(Buffer.from(chunk));
    } catch (err) {
      if (!abort.signal.aborted) throw err;
      return end("cancelled by the test");
    }
    return result ?? end("no end of stream");
  })();
  return {
    get messages() {
      return messages;
    },
    ended,
    cancel: () => abort.abort(),
  };
}
