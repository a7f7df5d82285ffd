import type { ServerHttp2Stream } from "node:http2";
import http2 from "node:http2";
import { gzipSync } from "node:zlib";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import {
  CacheServiceGetRequestSchema,
  CacheServiceGetResponseSchema,
  EventServiceStreamResponseSchema,
} from "@stategate/api";
import { envelope } from "./raw-rpc.js";
import type { Behavior } from "./transport-compare.js";
import { answer } from "./transport-compare.js";

/**
 * The answers of the protocol peer in sdk-grpc-transport-wire.test.ts, by
 * name: the bytes of gRPC's edge cases (two messages for a unary call, a
 * compressed frame, HTTP 503, a reset stream …) that a real gateway never
 * sends.
 */

const cacheMessage = toBinary(
  CacheServiceGetResponseSchema,
  create(CacheServiceGetResponseSchema, {
    cache: { domain: "d", key: "k", value: { kind: { case: "stringValue", value: "v" } } },
  }),
);
const cacheFrame = envelope(0, cacheMessage);
const eventFrame = (key: string) =>
  envelope(
    0,
    toBinary(
      EventServiceStreamResponseSchema,
      create(EventServiceStreamResponseSchema, { event: { id: key, entity: { domain: "d", type: "t", key } } }),
    ),
  );
const bigFrame = envelope(
  0,
  toBinary(
    CacheServiceGetResponseSchema,
    create(CacheServiceGetResponseSchema, {
      cache: { domain: "d", key: "k", value: { kind: { case: "stringValue", value: "x".repeat(2000) } } },
    }),
  ),
);

/** An error's trailers as Connect's handler writes them: status, message, details and the error's metadata. */
function errorTrailers(error: ConnectError): Record<string, string> {
  const out: Record<string, string> = {};
  setTrailerStatus(new Headers(), error).forEach((v, k) => {
    out[k] = v;
  });
  return out;
}

/** The reset codes a peer answers with. */
export const resetCodes = [
  http2.constants.NGHTTP2_PROTOCOL_ERROR,
  http2.constants.NGHTTP2_INTERNAL_ERROR,
  http2.constants.NGHTTP2_STREAM_CLOSED,
  http2.constants.NGHTTP2_REFUSED_STREAM,
  http2.constants.NGHTTP2_CANCEL,
  http2.constants.NGHTTP2_ENHANCE_YOUR_CALM,
  http2.constants.NGHTTP2_HTTP_1_1_REQUIRED,
];
/** The HTTP statuses a peer answers with. */
export const httpStatuses = [400, 401, 403, 404, 429, 500, 502, 503, 504];

/** Every answer, by the name a request's `x-peer` header gives. */
export const behaviors: Record<string, Behavior> = {
  ok: (s) => answer(s, [cacheFrame], { "grpc-status": "0", "x-trailer": "t" }, { "x-header": "h" }),
  "no-message": (s) => answer(s, []),
  "two-messages": (s) => answer(s, [cacheFrame, cacheFrame]),
  "compressed-flag": (s) => answer(s, [envelope(1, cacheMessage)]),
  "gzip-unasked": (s) => answer(s, [envelope(1, gzipSync(cacheMessage))], undefined, { "grpc-encoding": "gzip" }),
  "cut-envelope": (s) => answer(s, [cacheFrame.subarray(0, 9)]),
  "envelope-header-only": (s) => answer(s, [cacheFrame.subarray(0, 5)]),
  "split-envelope": (s) => answer(s, [cacheFrame.subarray(0, 3), cacheFrame.subarray(3, 11), cacheFrame.subarray(11)]),
  "not-protobuf": (s) => answer(s, [envelope(0, Buffer.from([0xff, 0xff, 0xff]))]),
  big: (s) => answer(s, [bigFrame]),
  "missing-status": (s) => {
    s.respond({ ":status": 200, "content-type": "application/grpc+proto" });
    s.end(cacheFrame);
  },
  "error-status": (s) =>
    answer(
      s,
      [],
      { "grpc-status": "5", "grpc-message": encodeURIComponent("not here: ü"), "x-trailer": "t" },
      { "x-header": "h" },
    ),
  "message-then-error": (s) => answer(s, [cacheFrame], { "grpc-status": "9", "grpc-message": "late" }),
  details: (s) =>
    answer(
      s,
      [],
      errorTrailers(
        new ConnectError("bad input", Code.InvalidArgument, { "x-meta": "m" }, [
          { desc: CacheServiceGetRequestSchema, value: { domain: "detail" } },
        ]),
      ),
    ),
  "invalid-status": (s) => answer(s, [], { "grpc-status": "99" }),
  "deadline-status": (s) => answer(s, [], { "grpc-status": "4", "grpc-message": "deadline passed at the server" }),
  "trailers-only": (s) =>
    s.respond(
      { ":status": 200, "content-type": "application/grpc", "grpc-status": "7", "grpc-message": "nope" },
      { endStream: true },
    ),
  "trailers-only-ok": (s) =>
    s.respond({ ":status": 200, "content-type": "application/grpc", "grpc-status": "0" }, { endStream: true }),
  "status-in-headers-and-message": (s) => answer(s, [cacheFrame], undefined, { "grpc-status": "9" }),
  "json-type": (s) => {
    s.respond({ ":status": 200, "content-type": "application/json" });
    s.end("{}");
  },
  hang: () => {},
  "hang-after-headers": (s) => s.respond({ ":status": 200, "content-type": "application/grpc" }),
  // Streams.
  "stream-ok": (s) =>
    answer(s, [eventFrame("a"), eventFrame("b"), eventFrame("c")], { "grpc-status": "0", "x-trailer": "t" }),
  "stream-error-after": (s) =>
    answer(s, [eventFrame("a"), eventFrame("b")], { "grpc-status": "9", "grpc-message": "stop" }),
  "stream-trailers-only-ok": (s) =>
    s.respond({ ":status": 200, "content-type": "application/grpc", "grpc-status": "0" }, { endStream: true }),
  "stream-trailers-only-error": (s) =>
    s.respond({ ":status": 200, "content-type": "application/grpc", "grpc-status": "5" }, { endStream: true }),
  "stream-missing-status": (s) => {
    s.respond({ ":status": 200, "content-type": "application/grpc+proto" });
    s.end(eventFrame("a"));
  },
  "stream-compressed-flag": (s) => answer(s, [eventFrame("a"), envelope(1, Buffer.from([1]))]),
  "stream-reset-after-message": (s) => {
    s.respond({ ":status": 200, "content-type": "application/grpc+proto" });
    s.write(eventFrame("a"));
    setTimeout(() => s.close(http2.constants.NGHTTP2_REFUSED_STREAM), 20);
  },
  "stream-step": (s, _h, release) => {
    answerLater(s, release);
  },
  "stream-forever": (s) => {
    s.respond({ ":status": 200, "content-type": "application/grpc+proto" });
    let i = 0;
    const timer = setInterval(() => {
      if (s.closed || s.destroyed) clearInterval(timer);
      else s.write(eventFrame(`e${i++}`));
    }, 10);
  },
  // A client stream: the answer's key says how many messages came.
  upload: (s) => {
    const chunks: Buffer[] = [];
    s.on("data", (c: Buffer) => chunks.push(c));
    s.on("end", () => {
      const body = Buffer.concat(chunks);
      let count = 0;
      for (let at = 0; at + 5 <= body.length; at += 5 + body.readUInt32BE(at + 1)) count++;
      const reply = create(CacheServiceGetResponseSchema, { cache: { domain: "d", key: String(count) } });
      answer(s, [envelope(0, toBinary(CacheServiceGetResponseSchema, reply))]);
    });
  },
};
behaviors["reset-before-0"] = (s) => s.close(http2.constants.NGHTTP2_NO_ERROR);
for (const code of resetCodes) {
  behaviors[`reset-before-${code}`] = (s) => s.close(code);
  behaviors[`reset-after-headers-${code}`] = (s) => {
    s.respond({ ":status": 200, "content-type": "application/grpc" });
    setTimeout(() => s.close(code), 20);
  };
}
for (const status of httpStatuses) {
  behaviors[`http-${status}`] = (s) => {
    s.respond({ ":status": status, "content-type": "text/plain" });
    s.end("busy");
  };
}

/** Writes one message, waits for the test, then writes another and ends. */
function answerLater(s: ServerHttp2Stream, release: Promise<void>) {
  s.respond({ ":status": 200, "content-type": "application/grpc+proto" }, { waitForTrailers: true });
  s.on("wantTrailers", () => s.sendTrailers({ "grpc-status": "0" }));
  s.write(eventFrame("first"));
  void release.then(() => s.end(eventFrame("second")));
}

/** The message a client-streaming test sends. */
export const upload = create(CacheServiceGetRequestSchema, { domain: "d", key: "k" });
