/**
 * Server streams that hand over what they already hold without a promise per
 * layer. An event fanned out to a thousand streams passes, on each of them,
 * through the service's iterator and the layers around it (the interceptors,
 * the stream limit, message normalization); through `next()`, every layer
 * costs a promise and a microtask turn per item, which was two thirds of the
 * gateway's CPU per delivered event (BENCHMARKS.md, fan-out). A pollable
 * stream lets the one that writes to the client wait once, on the innermost
 * buffer (`ready`), and then take each item through every layer
 * synchronously (`poll`).
 *
 * `poll` and `ready` are shortcuts, never the only way: whatever a stream
 * cannot do synchronously (its start, reading storage, its end, an error to
 * report) it leaves to `next()`, which is always correct.
 */
export interface Pollable<T> extends AsyncIterator<T> {
  /**
   * The next result if it is at hand, passed through every layer; undefined
   * when only `next()` can tell (nothing buffered, or work to do first).
   * Throws what `next()` would reject with for the same item.
   */
  poll(): IteratorResult<T> | undefined;
  /** Resolves (never rejects) once `poll()` may have something, or `next()` has something to say. */
  ready(): Promise<void>;
}

/** Whether `it` is a {@link Pollable}. */
export function isPollable<T>(it: AsyncIterator<T>): it is Pollable<T> {
  const candidate = it as Partial<Pollable<T>>;
  return typeof candidate.poll === "function" && typeof candidate.ready === "function";
}

/**
 * Reads `source` to its end, handing each item to `each` (awaited when it
 * returns a promise), as `for await` would, through the shortcuts when the
 * source has them: polled when an item is at hand, after waiting once on
 * `ready` when none is, from `next()` otherwise. When `each` throws, the
 * source is told to stop (`return()`), as `for await` tells it.
 */
export async function forEachItem<T>(
  source: AsyncIterable<T>,
  each: (item: T) => Promise<void> | undefined,
): Promise<void> {
  const it = source[Symbol.asyncIterator]();
  const pollable = isPollable(it) ? it : undefined;
  for (;;) {
    let result = pollable?.poll();
    if (result === undefined) {
      if (pollable !== undefined) {
        await pollable.ready();
        result = pollable.poll();
      }
      result ??= await it.next();
    }
    if (result.done) return;
    try {
      const pending = each(result.value);
      if (pending !== undefined) await pending;
    } catch (err) {
      await it.return?.();
      throw err;
    }
  }
}
