import type { HandlerContext } from "@connectrpc/connect";
import { createContextKey } from "@connectrpc/connect";
import type { JsonObject } from "@stategate/providers";

/** The caller's authentication claims; empty while authentication is off. */
export const kClaims = createContextKey<JsonObject>({});

/** The request id of a call: the caller's x-request-id when sane, else a new UUID. */
export const kRequestId = createContextKey<string>("");

/** The protobuf method name of a call, e.g. "/stategate.v1.EntityService/Set", whatever door it came through. */
export function methodName(ctx: HandlerContext): string {
  return `/${ctx.service.typeName}/${ctx.method.name}`;
}
