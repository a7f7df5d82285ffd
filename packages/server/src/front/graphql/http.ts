import { Http2ServerResponse } from "node:http2";
import type { ASTVisitor, GraphQLSchema, ValidationContext } from "graphql";
import { GraphQLError } from "graphql";
import type { YogaLogger } from "graphql-yoga";
import { createYoga } from "graphql-yoga";
import type { Logger } from "pino";
import type { AnyRequest, AnyResponse, DoorContext } from "../door.js";
import { useGrpcCodes } from "./errors.js";
import { renderGraphiql } from "./graphiql.js";
import type { CallContext } from "./resolvers.js";
import { callHeaders } from "./resolvers.js";

/** What GraphiQL shows on a first visit: one query that runs as it is, and what else to try. */
const defaultQuery = `# stategate over GraphQL: every field is described in the docs (the book icon).
# Queries read; mutations write, for example
#   mutation { entitySet(domain: "acme", type: "user", key: "ada", values: { name: "Ada" }) { event { version } } }
# and subscriptions stream events as they happen, for example
#   subscription { eventStream(domain: "acme", type: "*") { event { operation version entity { key values } } } }
query {
  entitySearch(domain: "acme", type: "user") {
    entities { key values version }
  }
}
`;

/**
 * GraphQL over HTTP at `path` with graphql-yoga: POST and GET operations,
 * subscriptions as Server-Sent Events (the GraphQL over SSE "distinct
 * connections" mode, which graphql-sse clients speak), and GraphiQL for a GET
 * that accepts text/html.
 */
export function createGraphqlHttp(
  schema: GraphQLSchema,
  ctx: DoorContext,
  path: string,
): (req: AnyRequest, res: AnyResponse) => Promise<void> {
  const yoga = createYoga<Record<string, unknown>, CallContext>({
    schema,
    graphqlEndpoint: path,
    context: ({ request }) => ({
      headers: callHeaders(ctx, request.headers.get("authorization"), request.headers.get("x-request-id")),
    }),
    graphiql: { title: "stategate GraphiQL", endpoint: path, subscriptionsProtocol: "SSE", defaultQuery },
    renderGraphiQL: renderGraphiql,
    landingPage: false,
    // CORS is the gateway's, for every door at once.
    cors: false,
    // No field takes a file.
    multipart: false,
    maxRequestBodySize: ctx.config.maxRequestBytes,
    // Resolvers throw only GraphQL errors that are safe to send; anything else
    // is masked, without the original message, whatever NODE_ENV says.
    maskedErrors: { isDev: false },
    logging: yogaLogger(ctx.log.child({ door: "graphql" })),
    plugins: [
      useGrpcCodes(),
      {
        onValidate: ({ addValidationRule }: { addValidationRule: (rule: typeof limitOperationSize) => void }) =>
          addValidationRule(limitOperationSize),
      },
      {
        // Yoga marks streamed responses "Connection: keep-alive": HTTP/1.1 keeps
        // connections alive anyway, and HTTP/2 forbids the header (Node warns).
        onResponse: ({ response }) => response.headers.delete("connection"),
      },
    ],
  });
  type Listener = Parameters<typeof yoga.requestListener>;
  return async (req, res) => {
    if (res instanceof Http2ServerResponse) withoutStatusMessage(res);
    // The Connect adapter's types are narrower than yoga's; both are Node's own (HTTP/1.1 or HTTP/2).
    await yoga.requestListener(req as Listener[0], res as Listener[1]);
  };
}

/** Most fields one operation may select, aliases and fragments included. */
export const MAX_FIELDS = 200;
/** Deepest selection nesting one operation may have. */
export const MAX_DEPTH = 12;

/**
 * Bounds what one request can make the gateway do: every field is an RPC, so
 * 10,000 aliases would be 10,000 calls. Checked during validation, before
 * anything runs.
 */
function limitOperationSize(context: ValidationContext): ASTVisitor {
  let fields = 0;
  let depth = 0;
  let reported = false;
  const report = (message: string) => {
    if (reported) return;
    reported = true;
    context.reportError(new GraphQLError(message));
  };
  return {
    Field: {
      enter() {
        fields++;
        depth++;
        if (fields > MAX_FIELDS) report(`an operation may select at most ${MAX_FIELDS} fields`);
        if (depth > MAX_DEPTH) report(`an operation may nest at most ${MAX_DEPTH} levels`);
      },
      leave() {
        depth--;
      },
    },
  };
}

/** Yoga passes a status message to writeHead; HTTP/2 has none, and Node warns about it. */
function withoutStatusMessage(res: Http2ServerResponse): void {
  const writeHead = res.writeHead.bind(res) as (status: number, ...rest: unknown[]) => Http2ServerResponse;
  res.writeHead = ((status: number, ...rest: unknown[]) =>
    writeHead(status, ...rest.filter((a) => typeof a !== "string"))) as typeof res.writeHead;
}

/** Yoga's log lines, in the gateway's log. */
function yogaLogger(log: Logger): YogaLogger {
  const at =
    (level: "debug" | "info" | "warn" | "error") =>
    (...args: unknown[]) => {
      const err = args.find((a) => a instanceof Error);
      const text = args.filter((a) => typeof a === "string").join(" ");
      log[level](err ? { err } : {}, text || "graphql-yoga");
    };
  return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}
