import { Code, ConnectError } from "@connectrpc/connect";
import { linkSignals } from "./signals.js";

/** Most items a stream buffers for a slow client before it is ended with RESOURCE_EXHAUSTED. */
export const MAX_STREAM_BUFFER = 10_000;

/**
 * A buffer between listeners that push and a server stream that pulls. It ends
 * quietly when `signal` aborts (client gone, deadline passed, or shutdown), and
 * ends with RESOURCE_EXHAUSTED when the client reads too slowly.
 */
export class StreamQueue<T> implements AsyncIterable<T> {
  private items: T[] = [];
  private wake: (() => void) | undefined;
  private failure: ConnectError | undefined;

  private readonly signal: AbortSignal;
  private readonly unlink: () => void;

  /** Ends when any of `signals` aborts. Call `dispose()` when the stream is over. */
  constructor(...signals: AbortSignal[]) {
    const linked = linkSignals(...signals);
    this.signal = linked.signal;
    this.unlink = linked.unlink;
    if (this.signal.aborted) return;
    this.signal.addEventListener("abort", () => this.notify(), { once: true });
  }

  /**
   * Ends the queue and detaches it from its signals: the gateway-wide shutdown
   * signal outlives every stream, and must not keep ended queues alive.
   */
  dispose(): void {
    this.unlink();
    this.items = [];
    this.failure ??= new ConnectError("stream ended", Code.Canceled);
    this.notify();
  }

  /** Whether the stream has ended. */
  get ended(): boolean {
    return this.signal.aborted;
  }

  push(item: T): void {
    if (this.failure) return;
    if (this.items.length >= MAX_STREAM_BUFFER) {
      this.failure = new ConnectError(
        `stream fell ${MAX_STREAM_BUFFER} items behind; reconnect and resume`,
        Code.ResourceExhausted,
      );
      this.items = [];
    } else {
      this.items.push(item);
    }
    this.notify();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    while (true) {
      if (this.failure) throw this.failure;
      if (this.signal.aborted) return;
      const item = this.items.shift();
      if (item !== undefined) {
        yield item;
        continue;
      }
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
