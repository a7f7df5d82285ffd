import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { ContextValues, Interceptor } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "pino";
import type { Verifier } from "./auth/verifier.js";
import { kClaims, kRequestId } from "./context.js";
import { abortedError, toWireError } from "./errors.js";
import type { CallAbort } from "./front/call-abort.js";
import { kCallAbort, signalAbort } from "./front/call-abort.js";
import { DOOR_HEADER } from "./front/door.js";
import { validate } from "./services/rules.js";
import { endStreamAt } from "./streams/end-at.js";
import { wrapStream } from "./streams/wrap.js";

const requestIdPattern = /^[\w.:-]{1,128}$/;

/**
 * Settles with `work`, or rejects as soon as the call aborts (deadline passed,
 * client gone): DEADLINE_EXCEEDED or CANCELED, as `abortedError` says.
 */
function untilAborted<T>(work: Promise<T>, abort: CallAbort): Promise<T> {
  if (abort.aborted) return Promise.reject(abortedError(abort));
  return new Promise<T>((resolve, reject) => {
    const stop = abort.listen(() => reject(abortedError(abort)));
    work.then(
      (value) => {
        stop();
        resolve(value);
      },
      (err: unknown) => {
        stop();
        reject(err);
      },
    );
  });
}

/** How a call is asked whether it was aborted: the door's CallAbort, or its signal. */
export function callAbortOf(req: { contextValues: ContextValues; signal: AbortSignal }): CallAbort {
  return req.contextValues.get(kCallAbort) ?? signalAbort(req.signal);
}

/** How long a call whose request came without its message waits to learn that its client left. */
const MISSING_INPUT_GRACE_MS = 100;

/** connect-es's answer to a request body that ended before its one message. */
function isMissingInput(err: unknown): boolean {
  return (
    err instanceof ConnectError &&
    err.code === Code.Unimplemented &&
    err.rawMessage.startsWith("protocol error: missing input message")
  );
}

/** `{ subject }` from verified claims that carry a `sub`, else nothing. */
function subjectOf(claims: Record<string, unknown>): { subject?: string } {
  return typeof claims.sub === "string" && claims.sub !== "" ? { subject: claims.sub.slice(0, 256) } : {};
}

/** The door a call came through: REST and GraphQL say so; the others show in the content type. */
export function doorOf(contentType: string | null, declared: string | null = null): string {
  if (declared === "rest" || declared === "graphql") return declared;
  if (!contentType) return "unknown";
  if (contentType.startsWith("application/grpc-web")) return "grpc-web";
  if (contentType.startsWith("application/grpc")) return "grpc";
  return "connect";
}

/**
 * The gateway's one interceptor chain for every call: request id, one log line
 * per call, input validation, and the error boundary that keeps internals in
 * the log and out of responses. Stream errors raised mid-stream pass the same
 * boundary.
 */
export function createInterceptors(log: Logger, verify: Verifier, clockSkewMs = 0): Interceptor[] {
  const boundary: Interceptor = (next) => async (req) => {
    const incoming = req.header.get("x-request-id");
    const requestId = incoming && requestIdPattern.test(incoming) ? incoming : randomUUID();
    req.contextValues.set(kRequestId, requestId);
    const started = performance.now();
    const method = `/${req.service.typeName}/${req.method.name}`;
    const door = doorOf(req.header.get("content-type"), req.header.get(DOOR_HEADER));
    const done = (code: Code | "ok", err?: unknown, internal = false) => {
      // The line of a call that went well is a debug line: not built when nobody reads it.
      if (!internal && !log.isLevelEnabled("debug")) return;
      const line = {
        requestId,
        method,
        door,
        code: code === "ok" ? "ok" : Code[code],
        ms: Math.round(performance.now() - started),
        // Who called, when authenticated: the token's subject, never the token.
        ...subjectOf(req.contextValues.get(kClaims)),
      };
      if (internal) log.error({ ...line, err }, "call failed");
      else log.debug(line, "call");
    };
    const abort = callAbortOf(req);
    const fail = (err: unknown): never => {
      // Once the client left or its deadline passed, whatever broke (a write to a
      // destroyed stream, a connection reset, however Node reports it) is the
      // consequence, not a fault of ours: CANCELED or DEADLINE_EXCEEDED, at debug level.
      const gone = abort.aborted ? abortedError(abort) : undefined;
      const { error, internal } = toWireError(gone ?? err, requestId);
      error.metadata.set("x-request-id", requestId);
      done(error.code, err, internal);
      throw error;
    };
    try {
      // A deadline that passed before the call started (`connect-timeout-ms: 0`)
      // or a client already gone: the call does not run, so it writes nothing.
      if (abort.aborted) throw abortedError(abort);
      // A backend that hangs must not hold the caller past its deadline.
      const res = req.stream ? await next(req) : await untilAborted(next(req), abort);
      res.header.set("x-request-id", requestId);
      if (!res.stream) {
        done("ok");
        return res;
      }
      return {
        ...res,
        message: wrapStream(res.message, {
          done() {
            // A stream that stopped because its call was aborted did not finish: a
            // passed deadline must reach the client as DEADLINE_EXCEEDED, not OK.
            if (abort.aborted) throw abortedError(abort);
            done("ok");
          },
          error: fail,
          final(outcome) {
            // A client that leaves ends the stream with neither an error nor a last message.
            if (outcome === "left") done(Code.Canceled);
          },
        }),
      };
    } catch (err) {
      // A stream whose client reset it before sending its request ends its body empty
      // a moment (up to a millisecond or two) before the call's signal hears of the
      // reset: give it that moment, so the call counts as Canceled. A client that did
      // end its request without a message waits this long for its error.
      if (!abort.aborted && isMissingInput(err)) {
        await untilAborted(sleep(MISSING_INPUT_GRACE_MS), abort).catch(() => {});
      }
      return fail(err);
    }
  };

  const validation: Interceptor = (next) => async (req) => {
    if (!req.stream) {
      validate(req.method.input.typeName, req.message as unknown as Record<string, unknown>);
      return next(req);
    }
    const messages = req.message;
    return next({
      ...req,
      message: (async function* () {
        for await (const m of messages) {
          validate(req.method.input.typeName, m as unknown as Record<string, unknown>);
          yield m;
        }
      })(),
    });
  };

  // Every call is authenticated when it starts, streams included; the claims
  // travel in the call context to the handlers, which record them.
  const authn: Interceptor = (next) => async (req) => {
    const identity = await verify(req.header.get("authorization"));
    req.contextValues.set(kClaims, identity.claims);
    const res = await next(req);
    if (!res.stream || identity.expiresAtMs === undefined) return res;
    // A stream opened with a token ends when the token does, so the client reconnects with a fresh one.
    return {
      ...res,
      message: endStreamAt(
        res.message,
        identity.expiresAtMs + clockSkewMs,
        () => new ConnectError("token expired", Code.Unauthenticated),
      ),
    };
  };

  return [boundary, authn, validation];
}
