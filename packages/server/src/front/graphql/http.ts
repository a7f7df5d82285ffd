import { Http2ServerResponse } from "node:http2";
import type { GraphQLSchema } from "graphql";
import { GraphQLError } from "graphql";
import type { GraphQLParams, Plugin, YogaLogger } from "graphql-yoga";
import { createYoga } from "graphql-yoga";
import type { Logger } from "pino";
import type { AnyRequest, AnyResponse, DoorContext } from "../door.js";
import { requestDeadline } from "./deadline.js";
import { useGrpcCodes } from "./errors.js";
import { renderGraphiql } from "./graphiql.js";
import { parseOperation } from "./limits.js";
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
    context: ({ request, res }) => ({
      headers: callHeaders(ctx, request.headers),
      // `connect-timeout-ms` or `grpc-timeout` bounds the whole operation, as on REST.
      deadline: requestDeadline((name) => request.headers.get(name)),
      gone: closedBeforeEnd(res as AnyResponse),
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
      // Every transport parses with the same limits (see limits.ts); the WebSocket calls it too.
      { onParse: ({ setParseFn }) => setParseFn(parseOperation) } satisfies Plugin,
      {
        onRequestParse: ({ request, requestParser, setRequestParser }) => {
          if (request.method === "GET") setRequestParser(parseGetRequest);
          else if (requestParser) setRequestParser(withoutEchoes(requestParser));
        },
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

/**
 * Aborts when the response closes before it ended: the client left. Yoga does
 * not cancel a subscription whose SSE client leaves while a write waits for
 * it, so the subscription listens for this itself.
 */
function closedBeforeEnd(res: AnyResponse): AbortSignal {
  const gone = new AbortController();
  res.once("close", () => {
    if (!res.writableFinished) gone.abort();
  });
  return gone.signal;
}

/** How yoga reads the GraphQL parameters of a request. */
type RequestParser = Parameters<Parameters<NonNullable<Plugin["onRequestParse"]>>[0]["setRequestParser"]>[0];

/** A request yoga could not read: 400, naming what was wrong, never echoing the request. */
function badRequest(message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: "BAD_REQUEST", http: { status: 400 } } });
}

/**
 * The parameters of a GET, as yoga reads them, except that JSON which does
 * not parse is a bad request naming the parameter (yoga's own parser lets the
 * SyntaxError through, which is answered 500).
 */
function parseGetRequest(request: Request): GraphQLParams {
  const params = new URL(request.url).searchParams;
  const json = (name: "variables" | "extensions"): Record<string, unknown> | undefined => {
    const text = params.get(name);
    if (!text) return undefined;
    try {
      return JSON.parse(text) as Record<string, unknown>;
    } catch {
      throw badRequest(`the ${name} parameter is not valid JSON`);
    }
  };
  return {
    query: params.get("query") || undefined,
    operationName: params.get("operationName") || undefined,
    variables: json("variables"),
    extensions: json("extensions"),
  };
}

/**
 * Yoga's POST parser, except that a body that is not JSON gets a short message:
 * yoga's carries the JSON parser's own, which quotes the body, in
 * `extensions.originalError`.
 */
function withoutEchoes(parser: RequestParser): RequestParser {
  return async (request) => {
    try {
      return await parser(request);
    } catch (err) {
      if (err instanceof GraphQLError && err.extensions.originalError !== undefined) {
        throw badRequest("the request body is not valid JSON");
      }
      throw err;
    }
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
