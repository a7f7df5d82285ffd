import assert from "node:assert/strict";
import http2 from "node:http2";
import { after, before, describe, it } from "node:test";
import { gzipSync } from "node:zlib";
import type { DescMessage } from "@bufbuild/protobuf";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  EntityServiceGetRequestSchema,
  EntityServiceGetResponseSchema,
  EntityServiceSetRequestSchema,
  EntityServiceSetResponseSchema,
} from "@stategate/api";
import type { TestGateway } from "./helpers.js";
import { startTestGateway, unique } from "./helpers.js";
import { metric, scrape } from "./prometheus.js";
import { envelope } from "./raw-rpc.js";

/**
 * Unary gRPC calls take a direct path (src/front/grpc-unary.ts) unless their
 * request is compressed, which connect-node's handler serves. These tests
 * speak gRPC by hand so they control every byte, and hold the direct path to
 * what Connect's handler answers for the same call.
 */

const MAX_REQUEST = 4096;
let tg: TestGateway;
let session: http2.ClientHttp2Session;
before(async () => {
  tg = await startTestGateway({ STATEGATE_MAX_REQUEST_BYTES: String(MAX_REQUEST) });
  session = http2.connect(tg.baseUrl);
});
after(async () => {
  session.close();
  await tg.close();
});

interface Answer {
  status: number;
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders;
  /** grpc-status: from the trailers, or the headers of a trailers-only answer. */
  code: number;
  message: string;
  body: Buffer;
  ms: number;
}

/** Sends `chunks` (then ends, unless `keepOpen`) and reads the whole answer. */
function call(path: string, chunks: Buffer[], headers: Record<string, string> = {}, keepOpen = false): Promise<Answer> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const req = session.request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
      ...headers,
    });
    let responseHeaders: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    const body: Buffer[] = [];
    req.on("response", (h) => {
      responseHeaders = h;
    });
    req.on("trailers", (t) => {
      trailers = t;
    });
    req.on("data", (d: Buffer) => body.push(d));
    req.on("error", reject);
    req.on("end", () => {
      const status = trailers["grpc-status"] ?? responseHeaders["grpc-status"];
      const message = trailers["grpc-message"] ?? responseHeaders["grpc-message"] ?? "";
      if (keepOpen) req.close();
      resolve({
        status: Number(responseHeaders[":status"]),
        headers: responseHeaders,
        trailers,
        code: Number(status),
        message: decodeURIComponent(String(message)),
        body: Buffer.concat(body),
        ms: Date.now() - started,
      });
    });
    for (const c of chunks) req.write(c);
    if (!keepOpen) req.end();
  });
}

/** The one message of a successful answer. */
function messageOf<T extends DescMessage>(schema: T, answer: Answer) {
  assert.equal(answer.code, 0, answer.message);
  assert.equal(answer.body.readUInt32BE(1), answer.body.length - 5, "one enveloped message");
  return fromBinary(schema, answer.body.subarray(5));
}

const setPath = "/stategate.v1.EntityService/Set";
const getPath = "/stategate.v1.EntityService/Get";
const enc = <T extends DescMessage>(schema: T, init: Record<string, unknown>) =>
  toBinary(schema, create(schema, init as never));

/** The same message, as the direct path gets it and as Connect's handler gets it (gzip). */
function both(payload: Uint8Array): {
  direct: [Buffer[], Record<string, string>];
  connect: [Buffer[], Record<string, string>];
} {
  return {
    direct: [[envelope(0, payload)], {}],
    connect: [[envelope(1, gzipSync(payload))], { "grpc-encoding": "gzip" }],
  };
}

/** An answer with request ids masked, to compare two calls. */
const shape = (a: Answer) => ({
  status: a.status,
  code: a.code,
  message: a.message.replace(/request id [\w.:-]+/, "request id …"),
  contentType: a.headers["content-type"],
});

describe("unary gRPC: the direct path answers as Connect's handler does", () => {
  it("writes and reads the same entity, with the same versions and events", async () => {
    const domain = unique("unary");
    const versions: bigint[] = [];
    for (const [i, way] of (["direct", "connect", "direct"] as const).entries()) {
      const set = both(enc(EntityServiceSetRequestSchema, { domain, type: "user", key: "ada", values: { n: i } }))[way];
      const res = messageOf(EntityServiceSetResponseSchema, await call(setPath, ...set));
      versions.push(res.event!.version);
      assert.equal(res.event!.method, setPath, "the protobuf method name, whatever the path");
      const get = both(enc(EntityServiceGetRequestSchema, { domain, type: "user", key: "ada" }))[way];
      const got = messageOf(EntityServiceGetResponseSchema, await call(getPath, ...get));
      assert.deepEqual(got.entity!.values, { n: i });
      assert.equal(got.entity!.version, res.event!.version);
    }
    assert.deepEqual(versions, [1n, 2n, 3n]);
  });

  it("gives the same code and message for the same mistakes", async () => {
    const cases: Record<string, Uint8Array> = {
      "not found": enc(EntityServiceGetRequestSchema, { domain: unique("nf"), type: "user", key: "nobody" }),
      "an empty name": enc(EntityServiceGetRequestSchema, { domain: "", type: "user", key: "x" }),
      "bytes that are no message": Buffer.from([0xff, 0xff, 0xff, 0xff]),
      "a set without values": enc(EntityServiceSetRequestSchema, { domain: "d", type: "t", key: "k" }),
    };
    for (const [name, payload] of Object.entries(cases)) {
      const path = name.includes("set") ? setPath : getPath;
      const { direct, connect } = both(payload);
      const a = await call(path, ...direct);
      const b = await call(path, ...connect);
      assert.notEqual(a.code, 0, name);
      assert.deepEqual(shape(a), shape(b), name);
    }
  });

  it("sends the request id back: in the headers of an answer, in the trailers of an error", async () => {
    const payload = enc(EntityServiceGetRequestSchema, { domain: unique("rid"), type: "user", key: "x" });
    const missing = await call(getPath, [envelope(0, payload)], { "x-request-id": "trace-7" });
    assert.equal(missing.code, 5);
    assert.equal(missing.trailers["x-request-id"], "trace-7");
    const domain = unique("rid");
    await call(setPath, [
      envelope(0, enc(EntityServiceSetRequestSchema, { domain, type: "u", key: "k", values: { a: 1 } })),
    ]);
    const found = await call(
      getPath,
      [envelope(0, enc(EntityServiceGetRequestSchema, { domain, type: "u", key: "k" }))],
      {
        "x-request-id": "trace-8",
      },
    );
    assert.equal(found.code, 0);
    assert.equal(found.headers["x-request-id"], "trace-8");
  });
});

describe("unary gRPC: what the wire can get wrong", () => {
  const get = enc(EntityServiceGetRequestSchema, { domain: "d", type: "t", key: "k" });

  it("answers each malformed request with its code, and keeps serving", async () => {
    const cases: [string, Buffer[], Record<string, string>, number][] = [
      ["no message at all", [], {}, 12],
      ["two messages", [envelope(0, get), envelope(0, get)], {}, 12],
      ["an envelope cut short", [envelope(0, get).subarray(0, 8)], {}, 3],
      ["fewer than 5 bytes", [Buffer.from([0, 0])], {}, 3],
      ["a compressed message without grpc-encoding", [envelope(1, get)], {}, 3],
      ["a deadline that is not one", [envelope(0, get)], { "grpc-timeout": "soon" }, 3],
      ["an encoding the gateway lacks", [envelope(1, get)], { "grpc-encoding": "snappy" }, 12],
    ];
    for (const [name, chunks, headers, code] of cases) {
      const answer = await call(getPath, chunks, headers);
      assert.equal(answer.status, 200, name);
      assert.equal(answer.code, code, `${name}: ${answer.message}`);
    }
    const ok = await call(getPath, [envelope(0, get)]);
    assert.equal(ok.code, 5, "still serving");
  });

  it("refuses a message declared larger than STATEGATE_MAX_REQUEST_BYTES before it arrives", async () => {
    const head = Buffer.from([0, 0, 0, 0, 0]);
    head.writeUInt32BE(MAX_REQUEST + 1, 1);
    // Only the envelope's head is sent, and the request stays open: the answer cannot wait for the rest.
    const answer = await call(getPath, [head], {}, true);
    assert.equal(answer.code, 8, answer.message);
    assert.match(answer.message, new RegExp(`${MAX_REQUEST + 1}.*${MAX_REQUEST}`));
  });

  it("forgets a call whose client resets its stream halfway through the request", async () => {
    const before = await scrape(tg.gateway.metricsPort!);
    const started = metric(before, "stategate_requests_total", { method: "Get" });
    for (let i = 0; i < 50; i++) {
      const req = session.request({ ":method": "POST", ":path": getPath, "content-type": "application/grpc" });
      req.on("error", () => {});
      req.write(envelope(0, get).subarray(0, 7));
      req.close(http2.constants.NGHTTP2_CANCEL);
    }
    const answer = await call(getPath, [envelope(0, get)]);
    assert.equal(answer.code, 5);
    // Calls that never had their message never reached the handlers.
    const after = await scrape(tg.gateway.metricsPort!);
    assert.equal(metric(after, "stategate_requests_total", { method: "Get" }), started + 1);
  });

  it("takes an HTTP/2 request with another content type to Connect's handler", async () => {
    const payload = enc(EntityServiceGetRequestSchema, { domain: unique("ct"), type: "t", key: "k" });
    const answer = await call(getPath, [envelope(0, payload)], { "content-type": "application/grpc+json" });
    // The body is protobuf, not JSON: Connect's handler refuses to parse it.
    assert.equal(answer.code, 3, answer.message);
  });
});
