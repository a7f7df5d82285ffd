import { Code, ConnectError } from "@connectrpc/connect";
import type { ExecutionResult } from "graphql";
import { GraphQLError } from "graphql";
import type { Plugin } from "graphql-yoga";
import { errorRequestId, httpStatus } from "../../errors.js";
import type { DoorContext } from "../door.js";

/**
 * A GraphQL error for a failed call: the ConnectError's message, and its gRPC
 * code name (INVALID_ARGUMENT …) in `extensions.code`. Anything that is not a
 * ConnectError is a fault of this door: logged, and answered as INTERNAL.
 */
export function toGraphqlError(err: unknown, ctx: DoorContext): GraphQLError {
  if (err instanceof GraphQLError) return err;
  if (!(err instanceof ConnectError)) {
    ctx.log.error({ err, door: "graphql" }, "graphql resolver failed");
    return new GraphQLError("internal error", { extensions: { code: grpcCodeName(Code.Internal) } });
  }
  const extensions: Record<string, string> = { code: grpcCodeName(err.code) };
  const requestId = errorRequestId(err);
  if (requestId) extensions.requestId = requestId;
  return new GraphQLError(err.rawMessage, { extensions });
}

/** The gRPC name of a code: Code.InvalidArgument is "INVALID_ARGUMENT", Code.Canceled is "CANCELLED". */
export function grpcCodeName(code: Code): string {
  if (code === Code.Canceled) return "CANCELLED";
  return Code[code].replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

/** Yoga's codes for the errors of its own (a malformed request, a body too large …). */
const yogaCodes: Record<string, Code> = {
  BAD_REQUEST: Code.InvalidArgument,
  GRAPHQL_PARSE_FAILED: Code.InvalidArgument,
  GRAPHQL_VALIDATION_FAILED: Code.InvalidArgument,
  OPERATION_RESOLUTION_FAILURE: Code.InvalidArgument,
  REQUEST_ENTITY_TOO_LARGE: Code.ResourceExhausted,
  INTERNAL_SERVER_ERROR: Code.Internal,
};

/**
 * Gives every error of a result a gRPC code, as the resolvers' errors have:
 * Yoga's own codes are translated, and an error without a code is
 * INVALID_ARGUMENT when the request was refused before it ran (syntax,
 * validation, variables: there is no `data`), INTERNAL otherwise. An error
 * Yoga answers with an HTTP status of its own gets its code's status from the
 * shared table instead (see `tableStatus`).
 */
export function withGrpcCodes<T extends ExecutionResult>(result: T): T {
  if (!result.errors?.length) return result;
  const fallback = result.data === undefined ? Code.InvalidArgument : Code.Internal;
  return { ...result, errors: result.errors.map((e) => recoded(e, fallback)) };
}

function recoded(error: GraphQLError, fallback: Code): GraphQLError {
  const current = error.extensions?.code;
  if (typeof current === "string" && !(current in yogaCodes)) return error;
  const code = typeof current === "string" ? (yogaCodes[current] ?? fallback) : fallback;
  return new GraphQLError(error.message, {
    nodes: error.nodes,
    source: error.source,
    positions: error.positions,
    path: error.path,
    originalError: error.originalError,
    extensions: { ...error.extensions, code: grpcCodeName(code), ...tableStatus(error.extensions?.http, code) },
  });
}

/**
 * The status of a request Yoga refuses before it runs, from the code→status
 * table that REST uses too: a body past STATEGATE_MAX_REQUEST_BYTES is
 * RESOURCE_EXHAUSTED, so 429 on both doors rather than Yoga's 413. A 405 stays:
 * it answers a method (a mutation over GET), with the Allow header that goes
 * with it, not a code. Errors Yoga gives no status keep GraphQL over HTTP's
 * (200 for a request that ran, its errors in `errors`).
 */
function tableStatus(http: unknown, code: Code): { http?: Record<string, unknown> } {
  if (typeof http !== "object" || http === null) return {};
  const { status } = http as { status?: unknown };
  if (typeof status !== "number" || status === 405) return {};
  return { http: { ...http, status: httpStatus[code] } };
}

/** The Yoga plugin that applies `withGrpcCodes` to every answer that is not a stream. */
export function useGrpcCodes(): Plugin {
  return {
    onResultProcess({ result, setResult }) {
      // A stream's payloads come from the resolvers, coded already.
      if (Symbol.asyncIterator in result) return;
      setResult(Array.isArray(result) ? result.map(withGrpcCodes) : withGrpcCodes(result));
    },
  };
}
