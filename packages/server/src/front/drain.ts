/**
 * Lets go of a server stream called in-process (REST, GraphQL) whose reader
 * stopped early because its client left. Connect's client iterables have no
 * `return()`, and a handler parked at a `yield` (its client was reading
 * slowly) notices that its call was aborted only when it is pulled again:
 * left alone, it would hold its subscription, its buffer and an open-stream
 * slot for as long as the gateway runs. So the stream is pulled, and what it
 * gives discarded, until it ends, which its aborted signal makes it do at the
 * next pull; `max` bounds the work should anything still be buffered on the
 * way. Call it only once the call's signal has aborted.
 */
export async function drainAborted(it: AsyncIterator<unknown>, max = 10_000): Promise<void> {
  for (let i = 0; i < max; i++) {
    try {
      if ((await it.next()).done) return;
    } catch {
      return;
    }
  }
}
