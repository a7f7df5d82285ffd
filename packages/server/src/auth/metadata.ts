import type { IncomingHttpHeaders } from "node:http";
import { DOOR_HEADER } from "../front/door.js";

/**
 * Headers that are not the caller's to give a policy, and differ by door for
 * the same call: hop-by-hop headers (RFC 9110 7.6.1) and `host` (HTTP/2 has
 * `:authority` instead), which belong to one connection; the protocols' own
 * framing (content type and length, encodings, deadlines, gRPC-Web's and
 * WebSocket's handshake); and the gateway's internal door header, which a
 * client could send too.
 */
const dropped = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "http2-settings",
  "host",
  "content-type",
  "content-length",
  "content-encoding",
  "accept",
  "accept-encoding",
  "x-grpc-web",
  "x-user-agent",
  DOOR_HEADER,
]);
const droppedPrefixes = [":", "grpc-", "connect-", "sec-websocket-"];

/** Whether a (lower-case) header is the caller's own, passed on to the call and shown to policies. */
export function isCallerHeader(name: string): boolean {
  return !dropped.has(name) && !droppedPrefixes.some((p) => name.startsWith(p));
}

/** Headers as a Fetch `Headers` (Connect's, or a ponyfill's such as GraphQL Yoga's), or Node's IncomingHttpHeaders. */
export type HeaderSource = Pick<Headers, "entries"> | IncomingHttpHeaders;

/**
 * The caller's request headers, lower-case, without those `isCallerHeader`
 * leaves out: what `input.metadata` holds, the same whichever door the call
 * came through. Repeated headers are joined with ", ".
 */
export function callerHeaders(source: HeaderSource): Record<string, string> {
  const out: Record<string, string> = {};
  const entries: Iterable<[string, string | string[] | undefined]> =
    typeof source.entries === "function"
      ? (source as Pick<Headers, "entries">).entries()
      : Object.entries(source as IncomingHttpHeaders);
  for (const [key, value] of entries) {
    const name = key.toLowerCase();
    if (value === undefined || !isCallerHeader(name)) continue;
    out[name] = Array.isArray(value) ? value.join(", ") : value;
  }
  return out;
}
