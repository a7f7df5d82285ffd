import assert from "node:assert/strict";
import http2 from "node:http2";
import { after, before, describe, it } from "node:test";
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import type { Transport } from "@connectrpc/connect";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { EventService } from "@stategate/api";
import type { TestGateway } from "./helpers.js";
import { startTestGateway } from "./helpers.js";
import { envelope } from "./raw-rpc.js";

// A request no route and no door takes is answered in the caller's protocol:
// RPC clients hear UNIMPLEMENTED, as from any gRPC server; REST clients a 404
// shaped like every other REST error.

let tg: TestGateway;
before(async () => {
  tg = await startTestGateway();
});
after(async () => {
  await tg.close();
});

/**
 * EventService with methods the gateway does not have: `/stategate.v1.EventService/Nope`
 * (unary) and `/stategate.v1.EventService/NopeStream` (server-streaming).
 */
function withUnknownMethods(): DescService {
  const nope = { ...EventService.method.get, name: "Nope", localName: "nope" } as DescMethod;
  const nopeStream = { ...EventService.method.stream, name: "NopeStream", localName: "nopeStream" } as DescMethod;
  return { ...EventService, methods: [nope, nopeStream], method: { nope, nopeStream } } as unknown as DescService;
}

/** The gRPC status of one raw gRPC call over HTTP/2 (prior knowledge), from headers or trailers. */
function rawGrpc(path: string): Promise<{ status: number; grpcStatus?: string; grpcMessage?: string }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(tg.baseUrl);
    session.on("error", reject);
    const stream = session.request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
    });
    let status = 0;
    let grpcStatus: string | undefined;
    let grpcMessage: string | undefined;
    const read = (h: http2.IncomingHttpHeaders) => {
      if (h[":status"] !== undefined) status = Number(h[":status"]);
      if (h["grpc-status"] !== undefined) grpcStatus = String(h["grpc-status"]);
      if (h["grpc-message"] !== undefined) grpcMessage = decodeURIComponent(String(h["grpc-message"]));
    };
    stream.on("response", read);
    stream.on("trailers", read);
    stream.resume();
    stream.on("error", reject);
    stream.on("close", () => {
      session.close();
      resolve({ status, grpcStatus, grpcMessage });
    });
    stream.end(envelope(0, new Uint8Array()));
  });
}

describe("a request for no route", () => {
  it("REST: 404 with {code, message, details} like every other REST error", async () => {
    for (const [method, path] of [
      ["GET", "/nothing"],
      ["GET", "/api/nothing?x=1"],
      ["POST", "/api/entity"],
    ] as const) {
      const res = await fetch(`${tg.baseUrl}${path}`, { method });
      assert.equal(res.status, 404, path);
      assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
      assert.deepEqual(await res.json(), {
        code: "not_found",
        message: `no route for ${method} ${path.split("?")[0]}`,
        details: [],
      });
    }
  });

  it("gRPC: HTTP 200 with grpc-status 12 (UNIMPLEMENTED) naming the method", async () => {
    for (const path of ["/stategate.v1.EntityService/Nope", "/stategate.v1.NopeService/Get"]) {
      const answer = await rawGrpc(path);
      assert.equal(answer.status, 200, path);
      assert.equal(answer.grpcStatus, "12", path);
      assert.match(answer.grpcMessage ?? "", new RegExp(path.replaceAll(".", "\\.")));
    }
  });

  it("gRPC-Web: HTTP 200 with a trailer frame of grpc-status 12 naming the method", async () => {
    const res = await fetch(`${tg.baseUrl}/stategate.v1.EntityService/Nope`, {
      method: "POST",
      headers: { "content-type": "application/grpc-web+proto", "x-grpc-web": "1" },
      body: new Uint8Array(envelope(0, new Uint8Array())),
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "application/grpc-web+proto");
    const body = Buffer.from(await res.arrayBuffer());
    assert.equal(body[0], 0x80, "a trailer frame");
    const trailer = Object.fromEntries(
      body
        .subarray(5, 5 + body.readUInt32BE(1))
        .toString("utf8")
        .trim()
        .split("\r\n")
        .map((line) => line.split(": ")),
    ) as Record<string, string>;
    assert.equal(trailer["grpc-status"], "12");
    assert.equal(decodeURIComponent(trailer["grpc-message"] ?? ""), "unknown method /stategate.v1.EntityService/Nope");
  });

  it("every RPC client reports UNIMPLEMENTED for an unknown method", async () => {
    const transports: [string, Transport][] = [
      ["grpc", createGrpcTransport({ baseUrl: tg.baseUrl })],
      ["grpc-web", createGrpcWebTransport({ baseUrl: tg.baseUrl, httpVersion: "1.1" })],
      ["connect json", createConnectTransport({ baseUrl: tg.baseUrl, httpVersion: "1.1" })],
      ["connect binary", createConnectTransport({ baseUrl: tg.baseUrl, httpVersion: "1.1", useBinaryFormat: true })],
    ];
    for (const [name, transport] of transports) {
      const client = createClient(withUnknownMethods(), transport) as unknown as {
        nope(req: object): Promise<unknown>;
        nopeStream(req: object): AsyncIterable<unknown>;
      };
      const unimplemented = (method: string) => (err: unknown) => {
        const error = ConnectError.from(err);
        assert.equal(error.code, Code.Unimplemented, `${name} ${method}: ${error.message}`);
        assert.equal(error.rawMessage, `unknown method /stategate.v1.EventService/${method}`, name);
        return true;
      };
      await assert.rejects(client.nope({}), unimplemented("Nope"));
      await assert.rejects(async () => {
        for await (const _ of client.nopeStream({})) assert.fail("no message expected");
      }, unimplemented("NopeStream"));
    }
  });
});
