import { cors } from "@connectrpc/connect";
import type { CorsConfig } from "../config.js";
import type { AnyRequest, AnyResponse } from "./door.js";

/** A Node request handler, HTTP/1.1 or HTTP/2. */
export type RequestHandler = (req: AnyRequest, res: AnyResponse) => void;

/**
 * Response headers a browser script may read: the gRPC-Web status trailers
 * (sent as headers when a call fails before its first message), Connect's
 * encoding headers (`cors.exposedHeaders`), and the request id that names a
 * call in the gateway's log.
 */
export const exposedHeaders: readonly string[] = [
  ...new Set([...cors.exposedHeaders, "grpc-status", "grpc-message", "grpc-status-details-bin", "x-request-id"]),
];

/** How long a browser may reuse a preflight answer, in seconds: two hours, Chromium's cap. */
export const PREFLIGHT_MAX_AGE = 7200;

/**
 * Wraps the gateway's one request handler so every door (RPC, REST, GraphQL)
 * answers browsers from the allowed origins. A preflight from an allowed
 * origin is answered here (204); one from any other origin is refused (403).
 * Other requests go through, with Access-Control-Allow-Origin when their
 * origin is allowed. Listed origins are echoed and may send credentials; an
 * origin allowed only by "*" gets "*" and no credentials. With no origins
 * configured the handler is returned as it is, and no CORS header is sent.
 *
 * @example
 * listen(withCors(handler, config.cors), host, port);
 */
export function withCors(handler: RequestHandler, config: CorsConfig): RequestHandler {
  if (config.allowOrigins.length === 0) return handler;
  const listed = new Set(config.allowOrigins.filter((origin) => origin !== "*"));
  const anyOrigin = config.allowOrigins.includes("*");
  // "*" would not cover Authorization, nor anything once credentials are allowed: echo the request instead.
  const methods = config.allowMethods.includes("*") ? undefined : config.allowMethods.join(", ");
  const headers = config.allowHeaders.includes("*") ? undefined : config.allowHeaders.join(", ");
  const expose = exposedHeaders.join(", ");

  return (req, res) => {
    const origin = header(req, "origin");
    if (origin === undefined) return handler(req, res);
    const preflight = req.method === "OPTIONS" && header(req, "access-control-request-method") !== undefined;
    const credentials = listed.has(origin);
    vary(res, preflight ? ["Origin", "Access-Control-Request-Method", "Access-Control-Request-Headers"] : ["Origin"]);
    if (!credentials && !anyOrigin) {
      if (!preflight) return handler(req, res);
      res.writeHead(403);
      res.end();
      return;
    }
    res.setHeader("access-control-allow-origin", credentials ? origin : "*");
    if (credentials) res.setHeader("access-control-allow-credentials", "true");
    if (!preflight) {
      res.setHeader("access-control-expose-headers", expose);
      return handler(req, res);
    }
    const allowMethods = methods ?? header(req, "access-control-request-method");
    const allowHeaders = headers ?? header(req, "access-control-request-headers");
    if (allowMethods) res.setHeader("access-control-allow-methods", allowMethods);
    if (allowHeaders) res.setHeader("access-control-allow-headers", allowHeaders);
    res.setHeader("access-control-max-age", String(PREFLIGHT_MAX_AGE));
    res.writeHead(204);
    res.end();
  };
}

/** A request header as one string (repeated ones joined), or undefined when absent or empty. */
function header(req: AnyRequest, name: string): string | undefined {
  const value = req.headers[name];
  const text = Array.isArray(value) ? value.join(", ") : value;
  return text ? text : undefined;
}

/** Adds names to the Vary header, keeping what is there. */
function vary(res: AnyResponse, names: string[]): void {
  const current = res.getHeader("vary");
  const list = current === undefined ? [] : String(current).split(/\s*,\s*/);
  for (const name of names) if (!list.some((n) => n.toLowerCase() === name.toLowerCase())) list.push(name);
  res.setHeader("vary", list.join(", "));
}
