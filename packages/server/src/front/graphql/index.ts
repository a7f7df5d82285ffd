import type { Door, DoorContext } from "../door.js";
import { loadComments } from "./comments.js";
import { ASSETS_PATH, serveAsset } from "./graphiql.js";
import { createGraphqlHttp } from "./http.js";
import { createCaller } from "./resolvers.js";
import { buildSchema } from "./schema.js";
import { createGraphqlWebSocket } from "./websocket.js";

/** Where GraphQL is served: HTTP, Server-Sent Events and WebSocket alike. */
export const GRAPHQL_PATH = "/api/graphql";

/**
 * GraphQL at /api/graphql, with a schema generated from the services'
 * descriptors and described by their proto comments. Every field is an RPC
 * made in-process through `ctx.transport`, so auth, validation and errors are
 * those of the other doors.
 *
 * @example
 * curl -H 'content-type: application/json' localhost:8080/api/graphql \
 *   -d '{"query":"{ entityGet(domain:\"acme\", type:\"user\", key:\"ada\") { entity { values version } } }"}'
 */
export function createGraphqlDoor(ctx: DoorContext): Door {
  const schema = buildSchema(ctx.services, createCaller(ctx), loadComments());
  const http = createGraphqlHttp(schema, ctx, GRAPHQL_PATH);
  const upgrade = createGraphqlWebSocket(schema, ctx, GRAPHQL_PATH);
  return {
    async handle(req, res) {
      const { pathname } = new URL(req.url ?? "/", "http://localhost");
      if (pathname === GRAPHQL_PATH) {
        // Only JSON bodies: a browser can POST a form or text/plain cross-origin
        // without a preflight, and that must not run a mutation.
        const type =
          String(req.headers["content-type"] ?? "")
            .split(";")[0]
            ?.trim()
            .toLowerCase() ?? "";
        if (req.method === "POST" && type !== "application/json" && !/^application\/[\w.+-]+\+json$/.test(type)) {
          res.writeHead(415, { "content-type": "application/json" });
          res.end(
            JSON.stringify({
              errors: [
                {
                  message: "send GraphQL as JSON (content-type: application/json)",
                  extensions: { code: "INVALID_ARGUMENT" },
                },
              ],
            }),
          );
          return true;
        }
        await http(req, res);
      } else if (pathname.startsWith(ASSETS_PATH)) await serveAsset(req, res, pathname);
      else return false;
      return true;
    },
    upgrade,
  };
}
