import { isPollable, type Pollable } from "./pollable.js";

/** What `ready()` answers when only next() can tell. */
const settled = Promise.resolve();

/**
 * What a layer around a server stream does: at its start, with each item,
 * and at its end. Each hook is optional.
 */
export interface StreamHooks<T, U> {
  /** Before the first item is asked for; throwing ends the stream with that error before the source starts. */
  start?(): void;
  /** Each item on its way out, possibly changed; throwing ends the stream with that error. */
  item?(value: T): U;
  /** The source ended; throwing ends the stream with that error instead. */
  done?(): void;
  /** The source or a hook failed; what this throws is what the consumer gets (the error itself when absent). */
  error?(err: unknown): never;
  /** Once, however the stream ended: "done", "error", or "left" when the consumer stopped asking. */
  final?(outcome: "done" | "error" | "left"): void;
}

/**
 * A server stream seen through `hooks`, as an async generator wrapping it
 * would see it, at a fraction of the cost. An item of an event fanned out to
 * a thousand streams goes through several such layers on each of them (the
 * interceptors, the stream limit, message normalization); as generators,
 * each layer cost several promise turns per item, and together they were
 * most of the gateway's CPU per delivered item. Here each layer adds one.
 *
 * Ending early (`return()`, what `break` in a `for await` calls) is passed on
 * to the source, so whatever it holds is let go. A pollable source makes a
 * pollable layer (see pollable.ts).
 */
export function wrapStream<T, U = T>(source: AsyncIterable<T>, hooks: StreamHooks<T, U>): AsyncIterable<U> {
  return {
    [Symbol.asyncIterator](): Pollable<U> {
      let it: AsyncIterator<T> | undefined;
      let over = false;
      const end = (outcome: "done" | "error" | "left") => {
        if (over) return;
        over = true;
        hooks.final?.(outcome);
      };
      const fail = (err: unknown): never => {
        try {
          if (hooks.error) hooks.error(err);
          throw err;
        } finally {
          end("error");
        }
      };
      const step = (result: IteratorResult<T>): IteratorResult<U> => {
        if (result.done) {
          try {
            hooks.done?.();
          } catch (err) {
            return fail(err);
          }
          end("done");
          return { done: true, value: undefined };
        }
        if (!hooks.item) return result as unknown as IteratorResult<U>;
        try {
          return { done: false, value: hooks.item(result.value) };
        } catch (err) {
          // The rest of the source is not wanted: let it go, as a generator's loop would.
          it?.return?.()?.catch(() => {});
          return fail(err);
        }
      };
      let pollable: Pollable<T> | undefined;
      return {
        next(): Promise<IteratorResult<U>> {
          if (over) return Promise.resolve({ done: true, value: undefined });
          if (it === undefined) {
            try {
              hooks.start?.();
            } catch (err) {
              try {
                fail(err);
              } catch (thrown) {
                return Promise.reject(thrown);
              }
            }
            it = source[Symbol.asyncIterator]();
            if (isPollable(it)) pollable = it;
          }
          return it.next().then(step, fail);
        },
        // What the source has at hand, through this layer's hooks; the start goes through next().
        poll(): IteratorResult<U> | undefined {
          if (over || pollable === undefined) return undefined;
          let result: IteratorResult<T> | undefined;
          try {
            result = pollable.poll();
          } catch (err) {
            return fail(err);
          }
          return result === undefined ? undefined : step(result);
        },
        ready(): Promise<void> {
          return over || pollable === undefined ? settled : pollable.ready();
        },
        return(value?: unknown): Promise<IteratorResult<U>> {
          // Like a generator's: one that never started has nothing to finish.
          if (it === undefined) over = true;
          end("left");
          const closed = it?.return?.(value as never);
          const result = { done: true, value: value as U } as IteratorResult<U>;
          return closed ? closed.then(() => result) : Promise.resolve(result);
        },
      };
    },
  };
}
