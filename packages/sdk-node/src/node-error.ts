import http2 from "node:http2";
import { Code, ConnectError } from "@connectrpc/connect";

/**
 * The codes connect-node gives Node's errors and HTTP/2 reset codes
 * (its `node-error.js`, which it does not export). The lean gRPC transport
 * must fail the way connect-node's does, so the same causes get the same
 * codes and messages here.
 */

/** The `code` strings of an error and of the errors in its `cause` chain. */
function nodeErrorCodes(reason: unknown): Set<string> {
  const codes = new Set<string>();
  const seen = new Set<unknown>();
  while (reason instanceof Error && !seen.has(reason)) {
    seen.add(reason);
    const code = (reason as { code?: unknown }).code;
    if (typeof code === "string") codes.add(code);
    if (!("cause" in reason)) break;
    reason = reason.cause;
  }
  return codes;
}

/** Whether `reason` is Node telling of a stream the peer reset (its rstCode says with what). */
export function isStreamReset(reason: unknown): boolean {
  return nodeErrorCodes(reason).has("ERR_HTTP2_STREAM_ERROR");
}

/** Whether `reason` is Node refusing a write after the request ended: the server answered early, not an error. */
export function isWriteAfterEnd(reason: unknown): boolean {
  return nodeErrorCodes(reason).has("ERR_STREAM_WRITE_AFTER_END");
}

/**
 * Any failure as a ConnectError, with connect-node's codes for Node's own
 * errors: a refused or unresolvable host is UNAVAILABLE, a destroyed stream
 * or reset socket ABORTED, anything else INTERNAL (an AbortError CANCELED).
 */
export function errorFromNodeReason(reason: unknown): ConnectError {
  const codes = nodeErrorCodes(reason);
  let code = Code.Internal;
  if (
    codes.has("ERR_STREAM_WRITE_AFTER_END") ||
    codes.has("ERR_STREAM_DESTROYED") ||
    codes.has("ERR_HTTP2_INVALID_STREAM") ||
    codes.has("ECONNRESET")
  ) {
    code = Code.Aborted;
  } else if (codes.has("ETIMEDOUT") || codes.has("ENOTFOUND") || codes.has("EAI_AGAIN") || codes.has("ECONNREFUSED")) {
    code = Code.Unavailable;
  }
  const error = ConnectError.from(reason, code);
  if (error !== reason) error.cause = reason;
  return error;
}

/** What gRPC makes of each HTTP/2 reset code: its name and the status it maps to. */
const resets: Record<number, readonly [name: string, code: Code]> = {
  [http2.constants.NGHTTP2_PROTOCOL_ERROR]: ["PROTOCOL_ERROR", Code.Internal],
  [http2.constants.NGHTTP2_INTERNAL_ERROR]: ["INTERNAL_ERROR", Code.Internal],
  [http2.constants.NGHTTP2_FLOW_CONTROL_ERROR]: ["FLOW_CONTROL_ERROR", Code.Internal],
  [http2.constants.NGHTTP2_SETTINGS_TIMEOUT]: ["SETTINGS_TIMEOUT", Code.Internal],
  [http2.constants.NGHTTP2_FRAME_SIZE_ERROR]: ["FRAME_SIZE_ERROR", Code.Internal],
  [http2.constants.NGHTTP2_REFUSED_STREAM]: ["REFUSED_STREAM", Code.Unavailable],
  [http2.constants.NGHTTP2_CANCEL]: ["CANCEL", Code.Canceled],
  [http2.constants.NGHTTP2_COMPRESSION_ERROR]: ["COMPRESSION_ERROR", Code.Internal],
  [http2.constants.NGHTTP2_CONNECT_ERROR]: ["CONNECT_ERROR", Code.Internal],
  [http2.constants.NGHTTP2_ENHANCE_YOUR_CALM]: ["ENHANCE_YOUR_CALM", Code.ResourceExhausted],
  [http2.constants.NGHTTP2_INADEQUATE_SECURITY]: ["INADEQUATE_SECURITY", Code.PermissionDenied],
  [http2.constants.NGHTTP2_HTTP_1_1_REQUIRED]: ["HTTP_1_1_REQUIRED", Code.PermissionDenied],
};

/**
 * The error of a stream closed with HTTP/2 reset code `rstCode`, as gRPC maps
 * them; undefined for NO_ERROR and STREAM_CLOSED, which gRPC does not map.
 */
export function errorFromResetCode(rstCode: number): ConnectError | undefined {
  const reset = resets[rstCode];
  if (reset === undefined) return undefined;
  const [name, code] = reset;
  return new ConnectError(`http/2 stream closed with error code ${name} (0x${rstCode.toString(16)})`, code);
}
