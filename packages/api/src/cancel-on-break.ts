import type { DescService } from "@bufbuild/protobuf";
import type { CallOptions, Client } from "@connectrpc/connect";

type StreamFn = (input: unknown, options?: CallOptions) => AsyncIterable<unknown>;

/**
 * Makes leaving a `for await` loop over a server stream cancel the call.
 * Connect's clients leave the call running when the loop stops reading, which
 * keeps the server-side subscription open until the connection closes; here
 * the iterator's return() aborts the call.
 */
export function cancelOnBreak<S extends DescService>(service: S, client: Client<S>): Client<S> {
  const wrapped = { ...client } as Record<string, unknown>;
  for (const method of service.methods) {
    if (method.methodKind !== "server_streaming") continue;
    const call = (client as Record<string, unknown>)[method.localName] as StreamFn;
    wrapped[method.localName] = (input: unknown, options: CallOptions = {}) => {
      const controller = new AbortController();
      const outer = options.signal;
      if (outer) {
        if (outer.aborted) controller.abort(outer.reason);
        else outer.addEventListener("abort", () => controller.abort(outer.reason), { once: true });
      }
      const iterable = call(input, { ...options, signal: controller.signal });
      return {
        [Symbol.asyncIterator]() {
          const it = iterable[Symbol.asyncIterator]();
          return {
            next: () => it.next(),
            return: async (value?: unknown) => {
              controller.abort();
              return { done: true as const, value };
            },
          };
        },
      };
    };
  }
  return wrapped as Client<S>;
}
