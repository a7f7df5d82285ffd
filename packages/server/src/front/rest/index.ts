import type { Writable } from "node:stream";
import type { DescMethod, Message } from "@bufbuild/protobuf";
import { createRegistry } from "@bufbuild/protobuf";
import type { CallOptions } from "@connectrpc/connect";
import { ConnectError, createClient } from "@connectrpc/connect";
import { linkSignals } from "../../streams/signals.js";
import type { AnyRequest, Door, DoorContext } from "../door.js";
import { callOptions, decodeRequest } from "./request.js";
import { responseJson, toConnectError, writeError, writeJson } from "./response.js";
import { createRouteTable, httpBindings } from "./routes.js";
import { applyLastEventId, streamFormat, writeStream } from "./stream.js";

export type { HttpBinding, Route, RouteMatch, RouteTable } from "./routes.js";
export { createRouteTable, httpBindings } from "./routes.js";

/** A client method, looked up by name: unary ones resolve, server-streaming ones iterate. */
type Call = (request: Message, options: CallOptions) => Promise<Message> | AsyncIterable<Message>;

/**
 * REST routes derived at start-up from the `google.api.http` rules of the
 * served methods. Each request becomes the same call as its RPC, made
 * in-process through `ctx.transport`, so the interceptors (request id, log,
 * validation, error boundary) run as for any other door. Server-streaming
 * methods answer as Server-Sent Events, or NDJSON when Accept asks for it.
 * Throws at start-up when two rules clash or a rule cannot be served.
 *
 * @example
 * const door = createRestDoor(doorContext);
 * // GET /api/entity/ref/acme/user/ada → EntityService.Get({domain:"acme", type:"user", key:"ada"})
 */
export function createRestDoor(ctx: DoorContext): Door {
  const table = createRouteTable(httpBindings(ctx.services));
  const registry = createRegistry(...ctx.services.map((s) => s.file));
  const calls = new Map<DescMethod, Call>();
  for (const service of ctx.services) {
    const client = createClient(service, ctx.transport) as unknown as Record<string, Call>;
    for (const method of service.methods) calls.set(method, client[method.localName]!);
  }

  return {
    async handle(req, res) {
      const url = req.url ?? "/";
      const q = url.indexOf("?");
      const match = table.match(req.method ?? "", q < 0 ? url : url.slice(0, q));
      if (!match) return false;
      const { route } = match;
      // The response closes when it is done or when the client leaves; either way the call is over.
      const client = new AbortController();
      (res as Writable).once("close", () => client.abort());
      let requestId: string | null = null;
      try {
        const message = await decodeRequest(
          match,
          q < 0 ? "" : url.slice(q + 1),
          req,
          ctx.config.maxRequestBytes,
          registry,
        );
        // Every route's method is one of ctx.services, so it has its call.
        const call = calls.get(route.method)!;
        const options: CallOptions = {
          ...callOptions(req, ctx.doorHeader),
          signal: client.signal,
          onHeader: (h) => {
            requestId = h.get("x-request-id");
          },
        };
        if (route.method.methodKind === "server_streaming") {
          applyLastEventId(route, message, req);
          // The shutdown ends the call too, so the response ends and the listener can close.
          const linked = linkSignals(client.signal, ctx.shutdown);
          try {
            const messages = call(message, { ...options, signal: linked.signal }) as AsyncIterable<Message>;
            await writeStream(res, route, messages, {
              format: streamFormat(req),
              gone: client.signal,
              shutdown: ctx.shutdown,
              requestId: () => requestId,
              registry,
              log: ctx.log,
            });
          } finally {
            linked.unlink();
          }
        } else {
          const output = await (call(message, options) as Promise<Message>);
          if (!client.signal.aborted) writeJson(res, 200, responseJson(route, output, registry), requestId);
        }
      } catch (err) {
        // A client that left (an upload cut off, a dropped connection) is not a
        // fault of ours and hears nothing: a call's own line says Canceled; a
        // request that never became a call gets one debug line.
        if (client.signal.aborted || clientLeft(req)) {
          if (!(err instanceof ConnectError)) {
            ctx.log.debug({ door: "rest", method: methodPath(route.method), code: "Canceled", err }, "client left");
          }
          return true;
        }
        const error = toConnectError(err, ctx.log);
        if (res.headersSent) res.end();
        else writeError(res, error);
      }
      return true;
    },
  };
}

/** The RPC a route calls, as the logs name it: `/stategate.v1.EntityService/Set`. */
function methodPath(method: DescMethod): string {
  return `/${method.parent.typeName}/${method.name}`;
}

/** Whether the client went away: it aborted the request, or its connection is gone. */
function clientLeft(req: AnyRequest): boolean {
  if ((req as { aborted?: boolean }).aborted === true) return true;
  try {
    return req.socket?.destroyed === true;
  } catch {
    // HTTP/2 answers with ERR_HTTP2_SOCKET_UNBOUND once the session is gone.
    return true;
  }
}
