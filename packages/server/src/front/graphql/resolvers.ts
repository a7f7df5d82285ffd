import type { DescMethod, DescService, JsonValue, Message } from "@bufbuild/protobuf";
import { fromJson, toJson } from "@bufbuild/protobuf";
import type { CallOptions } from "@connectrpc/connect";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import type { HeaderSource } from "../../auth/metadata.js";
import { callerHeaders } from "../../auth/metadata.js";
import { shuttingDown } from "../../errors.js";
import { checkJson } from "../../services/rules.js";
import { linkSignals } from "../../streams/signals.js";
import type { DoorContext } from "../door.js";
import { drainAborted } from "../drain.js";
import { remainingMs } from "./deadline.js";
import { toGraphqlError } from "./errors.js";

/** What a resolver knows of the request that carried the operation. */
export interface CallContext {
  /** The headers to pass on to the RPC. */
  headers: Headers;
  /** When the operation's calls must be done by (`Date.now()` time), from the request's deadline header; see deadline.ts. */
  deadline?: number;
  /** Aborts when an HTTP client left before its response ended (SSE subscriptions). */
  gone?: AbortSignal;
}

/**
 * The headers a GraphQL request passes on to the RPCs it makes: the caller's
 * (as policies see them on every door: see auth/metadata.ts), with
 * `authorization` replaced when the WebSocket's connection_init gives one.
 */
export function callHeaders(ctx: DoorContext, source: HeaderSource, authorization?: unknown): Headers {
  const headers = new Headers(callerHeaders(source));
  if (typeof authorization === "string" && authorization) headers.set("authorization", authorization);
  headers.set(ctx.doorHeader, "graphql");
  return headers;
}

type AnyClient = Record<string, (input: Message, options: CallOptions) => unknown>;

/** Runs GraphQL fields as RPCs through the gateway's own handlers. */
export interface Caller {
  /** Calls a unary method; resolves to its response in the proto3 JSON mapping. */
  unary(method: DescMethod, args: unknown, context: CallContext): Promise<unknown>;
  /** Opens a server stream; each message arrives in the proto3 JSON mapping, an error as a GraphQLError. */
  stream(method: DescMethod, args: unknown, context: CallContext): AsyncIterableIterator<unknown>;
}

/** Creates the caller: one in-process Connect client per service. */
export function createCaller(ctx: DoorContext): Caller {
  const clients = new Map<DescService, AnyClient>();
  const clientOf = (service: DescService): AnyClient => {
    let client = clients.get(service);
    if (!client) {
      client = createClient(service, ctx.transport) as unknown as AnyClient;
      clients.set(service, client);
    }
    return client;
  };
  const output = (method: DescMethod, message: Message) =>
    // Every implicit field is written so that non-null GraphQL fields always have a value.
    toJson(method.output, message, { alwaysEmitImplicit: true });
  const invoke = (method: DescMethod, args: unknown, options: CallOptions): unknown => {
    // The in-process transport encodes messages as binary protobuf, whose UTF-8
    // would turn a lone surrogate into U+FFFD: refused here, as REST does.
    for (const [name, value] of Object.entries(args as Record<string, unknown>)) {
      const problem = checkJson(value);
      if (problem === undefined) continue;
      // Named as the validation interceptor names fields: by their proto name.
      const field = method.input.fields.find((f) => f.jsonName === name)?.name ?? name;
      throw new ConnectError(`${field}: ${problem}`, Code.InvalidArgument);
    }
    let input: Message;
    try {
      input = fromJson(method.input, args as JsonValue);
    } catch (err) {
      // A value the protobuf runtime refuses (an int64 out of range, a malformed timestamp) is bad input.
      throw new ConnectError(err instanceof Error ? err.message : String(err), Code.InvalidArgument);
    }
    return clientOf(method.parent)[method.localName]?.(input, options);
  };

  return {
    async unary(method, args, context) {
      try {
        const response = (await invoke(method, args, {
          headers: context.headers,
          timeoutMs: remainingMs(context.deadline),
        })) as Message;
        return output(method, response);
      } catch (err) {
        throw toGraphqlError(err, ctx);
      }
    },

    stream(method, args, context) {
      // The iterator is hand-written, not an async generator: a generator waiting
      // for the next event cannot be returned, so an unsubscribe would leave the
      // RPC stream open until the next event arrived.
      const cancel = new AbortController();
      const { signal, unlink } = linkSignals(cancel.signal, ctx.shutdown);
      let messages: AsyncIterator<Message> | undefined;
      let done = false;
      const finished = { done: true, value: undefined } as const;
      const finish = () => {
        if (!done) {
          done = true;
          context.gone?.removeEventListener("abort", finish);
          cancel.abort();
          unlink();
          // The call ends at its next pull, now that it is aborted; a subscriber that left pulls no more.
          if (messages) void drainAborted(messages);
        }
        return finished;
      };
      // The error a stream ends with is its last payload: the field resolver throws it, so it
      // reaches the client as a GraphQL error (with its code) before the stream completes.
      // A subscriber that left while the transport waited on it is not going to return() this.
      context.gone?.addEventListener("abort", finish, { once: true });
      const last = (err: unknown) => {
        finish();
        return { done: false, value: toGraphqlError(err, ctx) } as const;
      };
      return {
        [Symbol.asyncIterator]() {
          return this;
        },
        async next() {
          if (done) return finished;
          try {
            messages ??= (
              invoke(method, args, {
                headers: context.headers,
                signal,
                timeoutMs: remainingMs(context.deadline),
              }) as AsyncIterable<Message>
            )[Symbol.asyncIterator]();
            const next = await messages.next();
            if (done) return finish();
            if (next.done) return ctx.shutdown.aborted ? last(shuttingDown()) : finish();
            return { done: false, value: output(method, next.value) };
          } catch (err) {
            // Cancelled by the subscriber: the stream just ends.
            if (done) return finish();
            // At shutdown the subscriber hears UNAVAILABLE, so it subscribes again (to another gateway).
            if (ctx.shutdown.aborted) return last(shuttingDown());
            return last(err);
          }
        },
        async return() {
          return finish();
        },
      };
    },
  };
}
