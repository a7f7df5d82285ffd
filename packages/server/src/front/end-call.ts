import http2 from "node:http2";
import type { ContextValues } from "@connectrpc/connect";
import { createContextKey, createContextValues } from "@connectrpc/connect";
import type { AnyRequest } from "./door.js";

/** Ends a call at the transport at once, even while a write waits on a client that does not read. */
export type EndCall = () => void;

/** How to end the current call at the transport; absent for calls made in-process (REST, GraphQL). */
export const kEndCall = createContextKey<EndCall | undefined>(undefined);

/**
 * Context values for a call that arrived over HTTP: a way to end it. On HTTP/2
 * the stream is reset with ENHANCE_YOUR_CALM, which gRPC and Connect clients
 * read as RESOURCE_EXHAUSTED; HTTP/1.1 has no such signal, so the connection
 * is closed.
 */
export function nodeCallContext(req: AnyRequest): ContextValues {
  return createContextValues().set(kEndCall, () => {
    if ("stream" in req && req.stream) req.stream.close(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
    else req.socket.destroy();
  });
}
