import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import type { GraphQLSchema } from "graphql";
import { useServer } from "graphql-ws/use/ws";
import { WebSocketServer } from "ws";
import type { DoorContext } from "../door.js";
import { withGrpcCodes } from "./errors.js";
import { checkOperation } from "./limits.js";
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
 * returns its subscription, which cancels the RPC stream under it. At
 * shutdown each subscription sends its last payload, an UNAVAILABLE error,
 * then every socket is closed with 1001 "Going away".
 */
export function createGraphqlWebSocket(
  schema: GraphQLSchema,
  ctx: DoorContext,
  path: string,
): (req: IncomingMessage, socket: Duplex, head: Buffer) => boolean {
  // Only listed origins: the Host header is the client's to choose (a DNS-rebinding page
  // names its own host), so "same origin as Host" would prove nothing.
  const allowed = ctx.config.cors.allowOrigins;
  const originAllowed = (origin: string) => allowed.includes("*") || allowed.includes(origin);
  const wss = new WebSocketServer({ noServer: true, maxPayload: ctx.config.maxRequestBytes });
  // Operations running on the sockets, so that shutdown closes them once their streams said why they ended.
  let running = 0;
  let idle: (() => void) | undefined;
  const server = useServer<ConnectionParams | undefined>(
    {
      schema,
      // A socket closed for an internal error says only that, never the error's message.
      isProd: true,
      // The same codes as over HTTP, for errors that refuse an operation and for results.
      onError: (_ctx, _id, _payload, errors) => withGrpcCodes({ errors }).errors?.map((e) => e.toJSON()),
      onNext: (_ctx, _id, _payload, _args, result) => withGrpcCodes(result),
      onOperation: () => {
        running++;
      },
      onComplete: () => {
        running--;
        // graphql-ws sends the operation's "complete" once this returns: close only after that.
        if (running <= 0) setImmediate(() => running <= 0 && idle?.());
      },
      // Parsed and validated as over HTTP, limits included. A document that does
      // not parse is refused with an error message (graphql-ws would close the socket).
      onSubscribe: (_ctx, _id, payload) => {
        const { document, errors } = checkOperation(schema, payload.query);
        if (errors) return errors;
        return { schema, document, operationName: payload.operationName, variableValues: payload.variables };
      },
      // No deadline: a deadline header on the upgrade would belong to the socket, not to
      // one of its operations (see deadline.ts). A client ends an operation with `complete`.
      context: ({ connectionParams, extra }): CallContext => ({
        headers: callHeaders(
          ctx,
          extra.request.headers,
          connectionParams?.authorization ?? connectionParams?.Authorization,
        ),
      }),
    },
    wss,
  );
  // Subscriptions end at shutdown with an UNAVAILABLE payload (see the resolvers): it
  // is sent before the sockets close, within the grace period the listener gives them.
  const drained = () =>
    new Promise<void>((resolve) => {
      if (running <= 0) return resolve();
      idle = resolve;
      setTimeout(resolve, ctx.config.shutdownGraceMs).unref();
    });
  ctx.shutdown.addEventListener(
    "abort",
    () =>
      void drained()
        .then(() => server.dispose())
        .catch((err: unknown) => ctx.log.warn({ err }, "graphql websockets did not close")),
    { once: true },
  );

  return (req, socket, head) => {
    if (new URL(req.url ?? "/", "http://localhost").pathname !== path) return false;
    // Browsers send Origin on every WebSocket, and CORS does not apply to it:
    // a page from an origin that is not allowed must not get a socket.
    const origin = req.headers.origin;
    if (origin !== undefined && !originAllowed(origin)) {
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
