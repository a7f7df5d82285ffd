import type { DescMessage, JsonValue, Message } from "@bufbuild/protobuf";
import { toJson } from "@bufbuild/protobuf";
import type { Interceptor, StreamRequest, UnaryRequest } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Policy } from "@stategate/rego";
import { compile, RegoError } from "@stategate/rego";
import type { Logger } from "pino";
import type { Config, PolicySource } from "../config.js";
import { ConfigError } from "../config.js";
import { kClaims } from "../context.js";
import { callerHeaders } from "./metadata.js";

/** The rule every policy decides with: true allows; false, undefined or anything else denies. */
export const DECISION = "data.stategate.authz.allow";
const PACKAGE = "stategate.authz";

/** The compiled request and response policies. */
export interface Policies {
  request?: Policy;
  response?: Policy;
}

/**
 * Compiles a policy at start-up. A policy that cannot run (bad syntax, an
 * unknown built-in, Rego written before 1.0) or that does not define the
 * decision stops start-up with a ConfigError naming the variable, line and column.
 */
function compilePolicy(source: PolicySource): Policy {
  let policy: Policy;
  try {
    policy = compile([{ name: source.origin, source: source.source }]);
  } catch (err) {
    if (!(err instanceof RegoError)) throw err;
    const where = err.location
      ? `line ${err.location.line}, column ${err.location.col}${source.origin === source.variable ? "" : ` of ${source.origin}`}: `
      : "";
    throw new ConfigError(source.variable, `invalid policy (${err.code}) at ${where}${err.reason}`, { cause: err });
  }
  if (!policy.rules.includes(DECISION)) {
    throw new ConfigError(
      source.variable,
      `the policy must define ${DECISION} (package ${PACKAGE}, rule allow); it defines ${policy.rules.join(", ") || "no rules"}`,
    );
  }
  return policy;
}

/** Compiles the configured policies (STATEGATE_REQUEST_POLICY, STATEGATE_RESPONSE_POLICY and their _FILE variants). */
export function compilePolicies(sources: Config["policies"]): Policies {
  return {
    request: sources.request && compilePolicy(sources.request),
    response: sources.response && compilePolicy(sources.response),
  };
}

type Base = {
  claims: unknown;
  method: string;
  metadata: Record<string, string>;
  client_stream: boolean;
  server_stream: boolean;
};

function body(schema: DescMessage, message: unknown): JsonValue {
  return toJson(schema, message as Message, { alwaysEmitImplicit: true });
}

/** Evaluates the decision; a policy that fails to evaluate (a conflict, say) is INTERNAL, with the reason in the log. */
function allows(policy: Policy, input: Base & { body: JsonValue }, which: "request" | "response"): boolean {
  try {
    return policy.evaluate(DECISION, { input }) === true;
  } catch (err) {
    throw new ConnectError(
      `the ${which} policy failed: ${err instanceof Error ? err.message : String(err)}`,
      Code.Internal,
      undefined,
      undefined,
      err,
    );
  }
}

function denied(which: "request" | "response"): ConnectError {
  return new ConnectError(`permission denied by the ${which} policy`, Code.PermissionDenied);
}

/**
 * The authorization interceptor; none when no policy is set or
 * STATEGATE_AUTH_DISABLED=true. It runs inside the gateway's chain, after
 * authentication, for every door (gRPC, gRPC-Web, Connect, and REST and
 * GraphQL, which call the same handlers in-process), so a policy always sees
 * the message the handler acts on.
 *
 * - The request policy sees each request message; for a server stream, the
 *   real subscription request, before the stream opens.
 * - The response policy sees each response message; on a stream a denied
 *   message is skipped and the stream goes on.
 */
export function policyInterceptors(policies: Policies, auth: Config["auth"], log: Logger): Interceptor[] {
  const { request, response } = policies;
  if (!request && !response) return [];
  if (auth.mode === "disabled") {
    log.warn("STATEGATE_AUTH_DISABLED=true: the request and response policies are not evaluated");
    return [];
  }
  const interceptor: Interceptor = (next) => async (req: UnaryRequest | StreamRequest) => {
    const kind = req.method.methodKind;
    const base: Base = {
      claims: req.contextValues.get(kClaims),
      method: `/${req.service.typeName}/${req.method.name}`,
      // The caller's headers, the same on every door (REST and GraphQL pass them on).
      metadata: callerHeaders(req.header),
      client_stream: kind === "client_streaming" || kind === "bidi_streaming",
      server_stream: kind === "server_streaming" || kind === "bidi_streaming",
    };
    const input = req.method.input;
    const check = (message: unknown) => {
      if (request && !allows(request, { ...base, body: body(input, message) }, "request")) throw denied("request");
    };
    let call = req;
    if (request) {
      if (!req.stream) check(req.message);
      else if (kind === "server_streaming") {
        // One subscription request: decided before the handler opens the stream.
        const it = req.message[Symbol.asyncIterator]();
        const first = await it.next();
        if (!first.done) check(first.value);
        call = {
          ...req,
          message: (async function* () {
            if (!first.done) yield first.value;
            for (let n = await it.next(); !n.done; n = await it.next()) yield n.value;
          })(),
        };
      } else {
        const messages = req.message;
        call = {
          ...req,
          message: (async function* () {
            for await (const m of messages) {
              check(m);
              yield m;
            }
          })(),
        };
      }
    }
    const res = await next(call);
    if (!response) return res;
    const output = req.method.output;
    const pass = (message: unknown) => allows(response, { ...base, body: body(output, message) }, "response");
    if (!res.stream) {
      if (!pass(res.message)) throw denied("response");
      return res;
    }
    const messages = res.message;
    return {
      ...res,
      message: (async function* () {
        for await (const m of messages) if (pass(m)) yield m;
      })(),
    };
  };
  return [interceptor];
}
