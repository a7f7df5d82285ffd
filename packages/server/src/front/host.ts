import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import type { IncomingHttpHeaders as Http2Headers } from "node:http2";
import type { Duplex } from "node:stream";
import type { AnyRequest, AnyResponse } from "./door.js";

/**
 * DNS rebinding: a page from http://evil.example:8080 whose name the attacker
 * re-points at 127.0.0.1 reaches a gateway listening on loopback as a
 * same-origin page, with CORS and the Origin checks none the wiser. What such a
 * request cannot hide is its Host (HTTP/2 `:authority`): the browser sends the
 * name it resolved, evil.example. Without authentication the gateway serves
 * loopback only, so it also answers only to loopback names.
 */

/** The message of a refused request, on every door. */
export const HOST_REFUSED =
  "this gateway has no authentication and serves only requests addressed to localhost, *.localhost, 127.0.0.0/8 or [::1] " +
  "(set STATEGATE_JWKS_URI, or STATEGATE_AUTH_DISABLED=true, to serve other host names)";

/**
 * Whether a Host or :authority value names this machine: `localhost`, a
 * subdomain of it, an IPv4 address in 127.0.0.0/8 or `[::1]`, with any port.
 *
 * @example
 * isLoopbackAuthority("127.0.0.1:8080"); // true
 * isLoopbackAuthority("evil.example:8080"); // false
 */
export function isLoopbackAuthority(value: string): boolean {
  // A connection sends the same authority on every request: remember a few answers.
  const known = answers.get(value);
  if (known !== undefined) return known;
  const answer = checkAuthority(value);
  if (answers.size >= 256) answers.clear();
  answers.set(value, answer);
  return answer;
}

const answers = new Map<string, boolean>();

function checkAuthority(value: string): boolean {
  const text = value.trim().toLowerCase();
  let host: string;
  let port: string | undefined;
  if (text.startsWith("[")) {
    const end = text.indexOf("]");
    if (end < 0) return false;
    host = text.slice(0, end + 1);
    const rest = text.slice(end + 1);
    if (rest !== "" && !rest.startsWith(":")) return false;
    port = rest === "" ? undefined : rest.slice(1);
  } else {
    const colon = text.indexOf(":");
    if (colon !== text.lastIndexOf(":")) return false; // an IPv6 address must be in brackets
    host = colon < 0 ? text : text.slice(0, colon);
    port = colon < 0 ? undefined : text.slice(colon + 1);
  }
  if (port !== undefined && !/^\d{1,5}$/.test(port)) return false;
  // A fully qualified name may end with a dot: "localhost." is localhost.
  const name = host.endsWith(".") ? host.slice(0, -1) : host;
  if (name === "localhost" || /^[a-z0-9-]+(\.[a-z0-9-]+)*\.localhost$/.test(name)) return true;
  if (name === "[::1]") return true;
  const v4 = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(name);
  return v4?.slice(1).every((octet) => Number(octet) <= 255) ?? false;
}

/**
 * Whether a request is addressed to this machine: it names a host (Host, or
 * :authority over HTTP/2), and every name it gives is a loopback one.
 */
export function addressedToLoopback(headers: IncomingHttpHeaders | Http2Headers): boolean {
  const names = [headers.host, (headers as Http2Headers)[":authority"]].filter(
    (v): v is string => typeof v === "string",
  );
  return names.length > 0 && names.every(isLoopbackAuthority);
}

/**
 * Wraps the gateway's request handler so a request addressed to any other
 * host is answered 403 before any door sees it: gRPC and Connect clients
 * report it as PERMISSION_DENIED.
 */
export function loopbackHostsOnly(
  handler: (req: AnyRequest, res: AnyResponse) => void,
): (req: AnyRequest, res: AnyResponse) => void {
  return (req, res) => {
    if (addressedToLoopback(req.headers)) return handler(req, res);
    const body = JSON.stringify({ code: "permission_denied", message: HOST_REFUSED, details: [] });
    res.writeHead(403, { "content-type": "application/json", "content-length": String(Buffer.byteLength(body)) });
    res.end(body);
  };
}

/** Refuses an HTTP/1.1 upgrade (WebSocket) addressed to another host; true when it did. */
export function refuseForeignUpgrade(headers: IncomingHttpHeaders, socket: Duplex): boolean {
  if (addressedToLoopback(headers)) return false;
  const body = JSON.stringify({ code: "permission_denied", message: HOST_REFUSED, details: [] });
  socket.end(
    `HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
  return true;
}

/** The message of a request refused for naming more than one host. */
export const HOST_REPEATED = "a request must have one Host header, not several";

/**
 * Whether a request carries more than one Host header. Node keeps the first and
 * drops the others, so a check of `headers.host` (the loopback-only one above,
 * or a proxy's) and whatever reads the others could disagree on which host a
 * request is for: RFC 9112 §3.2 says to answer 400.
 */
export function repeatsHost(rawHeaders: readonly string[]): boolean {
  let seen = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]?.toLowerCase() === "host" && ++seen > 1) return true;
  }
  return false;
}

/** The 400 answer to a request with several Host headers, as REST words errors; the connection is closed. */
function repeatedHostAnswer(): { body: string; headers: Record<string, string> } {
  const body = JSON.stringify({ code: "invalid_argument", message: HOST_REPEATED, details: [] });
  return {
    body,
    headers: {
      "content-type": "application/json",
      "content-length": String(Buffer.byteLength(body)),
      connection: "close",
    },
  };
}

/**
 * Wraps an HTTP/1.1 request handler so a request with more than one Host header
 * is answered 400, whatever the authentication mode, before anything reads it.
 */
export function oneHostOnly<Req extends IncomingMessage, Res extends ServerResponse>(
  handler: (req: Req, res: Res) => void,
): (req: Req, res: Res) => void {
  return (req, res) => {
    if (!repeatsHost(req.rawHeaders)) return handler(req, res);
    const { body, headers } = repeatedHostAnswer();
    res.writeHead(400, headers);
    res.end(body);
  };
}

/** Refuses an HTTP/1.1 upgrade (WebSocket) with more than one Host header; true when it did. */
export function refuseRepeatedHostUpgrade(req: IncomingMessage, socket: Duplex): boolean {
  if (!repeatsHost(req.rawHeaders)) return false;
  const { body, headers } = repeatedHostAnswer();
  const lines = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`);
  socket.end(`HTTP/1.1 400 Bad Request\r\n${lines.join("")}\r\n${body}`);
  return true;
}
