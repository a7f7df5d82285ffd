import { callAt } from "../auth/expiry.js";
import { isPollable, type Pollable } from "./pollable.js";

const settled = Promise.resolve();

function ignore(): void {}

/**
 * `source`, ended with `error()` at `atMs` (ms since the epoch) if it is
 * still going then: a stream opened with a token ends when the token does.
 * The clock starts with the first read. Pollable when the source is.
 *
 * Waiting on the source and on the time uses one slot the timer wakes, not
 * a race against a promise that lives as long as the stream: each such race
 * would leave a reaction on it for every item until the time came.
 */
export function endStreamAt<T>(source: AsyncIterable<T>, atMs: number, error: () => Error): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator](): Pollable<T> {
      let it: AsyncIterator<T> | undefined;
      let pollable: Pollable<T> | undefined;
      let due = false;
      let finished = false;
      let cancel = ignore;
      // Whoever waits now, told when the time comes.
      let onDue: (() => void) | undefined;
      const begin = (): AsyncIterator<T> => {
        const started = source[Symbol.asyncIterator]();
        it = started;
        pollable = isPollable(started) ? started : undefined;
        cancel = callAt(atMs, () => {
          due = true;
          const wake = onDue;
          onDue = undefined;
          wake?.();
        });
        return started;
      };
      const finish = () => {
        if (finished) return;
        finished = true;
        cancel();
      };
      // The source is let go (what it holds, a subscription) and the stream ends with the error.
      const end = (): never => {
        finish();
        it?.return?.()?.catch(ignore);
        throw error();
      };
      return {
        async next(): Promise<IteratorResult<T>> {
          if (finished) return { done: true, value: undefined };
          const current = it ?? begin();
          if (due) return end();
          let result: IteratorResult<T> | "due";
          try {
            result = await new Promise<IteratorResult<T> | "due">((resolve, reject) => {
              onDue = () => resolve("due");
              current.next().then(resolve, reject);
            });
          } catch (err) {
            finish();
            throw err;
          } finally {
            onDue = undefined;
          }
          if (result === "due") return end();
          if (result.done) finish();
          return result;
        },
        poll(): IteratorResult<T> | undefined {
          if (finished || due || pollable === undefined) return undefined;
          let result: IteratorResult<T> | undefined;
          try {
            result = pollable.poll();
          } catch (err) {
            finish();
            throw err;
          }
          if (result?.done) finish();
          return result;
        },
        ready(): Promise<void> {
          if (finished || due || pollable === undefined) return settled;
          const waiting = pollable;
          // The slot may keep a settled resolve until the next wait replaces it: calling it is harmless.
          return new Promise<void>((resolve) => {
            onDue = resolve;
            waiting.ready().then(resolve);
          });
        },
        async return(value?: unknown): Promise<IteratorResult<T>> {
          finish();
          await it?.return?.(value as never);
          return { done: true, value: value as T };
        },
      };
    },
  };
}
