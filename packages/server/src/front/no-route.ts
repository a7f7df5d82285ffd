import { Code, ConnectError } from "@connectrpc/connect";
import { codeToHttpStatus, endStreamFlag, endStreamToJson, errorToJson } from "@connectrpc/connect/protocol-connect";
import { setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { trailerFlag, trailerSerialize } from "@connectrpc/connect/protocol-grpc-web";
import type { AnyRequest, AnyResponse } from "./door.js";

/**
 * Answers a request that no RPC route and no door took, in the caller's own
 * protocol, so every client reports it as it would any other server's:
 *
 * - gRPC (`application/grpc…`): HTTP 200 with grpc-status 12 (UNIMPLEMENTED)
 *   in the trailers, as gRPC servers answer an unknown method;
 * - gRPC-Web (`application/grpc-web…`): the same status in a trailer frame;
 * - Connect: an `unimplemented` error, unary (HTTP 501) or as a stream's end;
 * - anything else (REST, a browser): 404 with a REST error body.
 *
 * @example
 * fallback: (req, res) => answerNoRoute(req, res)
 */
export function answerNoRoute(req: AnyRequest, res: AnyResponse): void {
  const path = req.url?.split("?")[0] ?? "/";
  const contentType = header(req, "content-type");
  const unimplemented = new ConnectError(`unknown method ${path}`, Code.Unimplemented);
  if (/^application\/grpc-web/i.test(contentType)) {
    const trailer = new Headers();
    setTrailerStatus(trailer, unimplemented);
    const frame = envelope(trailerFlag, trailerSerialize(trailer));
    // grpc-web-text carries its frames in base64.
    const body = /^application\/grpc-web-text/i.test(contentType) ? Buffer.from(frame.toString("base64")) : frame;
    send(res, 200, contentType, body);
    return;
  }
  if (/^application\/grpc/i.test(contentType)) {
    const trailer = new Headers();
    setTrailerStatus(trailer, unimplemented);
    res.writeHead(200, { "content-type": contentType, trailer: [...trailer.keys()].join(", ") });
    res.addTrailers(Object.fromEntries(trailer));
    res.end();
    return;
  }
  if (/^application\/connect\+/i.test(contentType)) {
    const json = JSON.stringify(endStreamToJson(new Headers(), unimplemented, undefined));
    send(res, 200, contentType, envelope(endStreamFlag, Buffer.from(json)));
    return;
  }
  // Connect unary calls name the protocol's version: a header on POST, a query parameter on GET.
  if (header(req, "connect-protocol-version") !== "" || /[?&]connect=v1(&|$)/.test(req.url ?? "")) {
    const body = Buffer.from(JSON.stringify(errorToJson(unimplemented, undefined)));
    send(res, codeToHttpStatus(Code.Unimplemented), "application/json", body);
    return;
  }
  const body = JSON.stringify({ code: "not_found", message: `no route for ${req.method} ${path}`, details: [] });
  send(res, 404, "application/json", Buffer.from(body));
}

/** A request header as one string, "" when absent. */
function header(req: AnyRequest, name: string): string {
  const value = req.headers[name];
  return (Array.isArray(value) ? value[0] : value) ?? "";
}

/** One enveloped message: flags byte, 4-byte length, payload. */
function envelope(flags: number, payload: Uint8Array): Buffer {
  const out = Buffer.alloc(5 + payload.length);
  out[0] = flags;
  out.writeUInt32BE(payload.length, 1);
  out.set(payload, 5);
  return out;
}

function send(res: AnyResponse, status: number, contentType: string, body: Buffer): void {
  res.writeHead(status, { "content-type": contentType, "content-length": String(body.length) });
  res.end(body);
}
