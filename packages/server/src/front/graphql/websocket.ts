import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import type { GraphQLSchema } from "graphql";
import { useServer } from "graphql-ws/use/ws";
import { WebSocketServer } from "ws";
import type { DoorContext } from "../door.js";
import { withGrpcCodes } from "./errors.js";
import type { CallContext } from "./resolvers.js";
import { callHeaders } from "./resolvers.js";

/** The payload a client may send in `connection_init`. */
interface ConnectionParams {
  /** "Bearer …": browsers cannot set headers on a WebSocket, so the token comes here. */
  authorization?: unknown;
  Authorization?: unknown;
  [key: string]: unknown;
}

/**
 * GraphQL over WebSocket with graphql-ws (subprotocol `graphql-transport-ws`)
 * on the same path as HTTP. Closing a socket, or completing an operation,
 * returns its subscription, which cancels the RPC stream under it; at
 * shutdown every socket is closed with 1001 "Going away".
 */
export function createGraphqlWebSocket(
  schema: GraphQLSchema,
  ctx: DoorContext,
  path: string,
): (req: IncomingMessage, socket: Duplex, head: Buffer) => boolean {
  const allowed = ctx.config.cors.allowOrigins;
  const originAllowed = (origin: string, host: string | undefined) =>
    allowed.includes("*") || allowed.includes(origin) || sameOrigin(origin, host);
  const wss = new WebSocketServer({ noServer: true, maxPayload: ctx.config.maxRequestBytes });
  const server = useServer<ConnectionParams | undefined>(
    {
      schema,
      // A socket closed for an internal error says only that, never the error's message.
      isProd: true,
      // The same codes as over HTTP, for errors that refuse an operation and for results.
      onError: (_ctx, _id, _payload, errors) => withGrpcCodes({ errors }).errors?.map((e) => e.toJSON()),
      onNext: (_ctx, _id, _payload, _args, result) => withGrpcCodes(result),
      context: ({ connectionParams, extra }): CallContext => ({
        headers: callHeaders(
          ctx,
          connectionParams?.authorization ?? connectionParams?.Authorization ?? extra.request.headers.authorization,
          extra.request.headers["x-request-id"],
        ),
      }),
    },
    wss,
  );
  ctx.shutdown.addEventListener(
    "abort",
    () =>
      void Promise.resolve(server.dispose()).catch((err: unknown) =>
        ctx.log.warn({ err }, "graphql websockets did not close"),
      ),
    { once: true },
  );

  return (req, socket, head) => {
    if (new URL(req.url ?? "/", "http://localhost").pathname !== path) return false;
    // Browsers send Origin on every WebSocket, and CORS does not apply to it:
    // a page from an origin that is not allowed must not get a socket.
    const origin = req.headers.origin;
    if (origin !== undefined && !originAllowed(origin, req.headers.host)) {
      socket.end("HTTP/1.1 403 Forbidden\r\nconnection: close\r\ncontent-length: 0\r\n\r\n");
      return true;
    }
    if (ctx.shutdown.aborted) {
      socket.destroy();
      return true;
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit("connection", ws, req));
    return true;
  };
}

/** A page the gateway itself served (GraphiQL): its origin names the host and port the socket came to. */
function sameOrigin(origin: string, host: string | undefined): boolean {
  try {
    return host !== undefined && new URL(origin).host === host;
  } catch {
    return false;
  }
}
