import { Code, ConnectError } from "@connectrpc/connect";
import { abortedError } from "../errors.js";
import type { Pollable } from "./pollable.js";
import { linkSignals } from "./signals.js";

/** Most items a stream buffers for a slow client before it is ended with RESOURCE_EXHAUSTED (STATEGATE_MAX_STREAM_BUFFER). */
export const MAX_STREAM_BUFFER = 10_000;

/** How a queue bounds its buffer, and whom it tells. */
export interface QueueOptions {
  /** Most items held for the client; MAX_STREAM_BUFFER unless set. */
  maxItems?: number;
  /** Told of each change in the number of items waiting (+1, -1, or minus all of them). */
  onDepth?: (delta: number) => void;
  /**
   * Told once, when the client fell `maxItems` behind. The stream's next read
   * throws `error`; a client that does not read at all never gets there, so
   * the listener may end the call at the transport while `open()` is true.
   */
  onOverflow?: (error: ConnectError, open: () => boolean) => void;
}

/**
 * A buffer between listeners that push and a server stream that pulls. When
 * one of its signals aborts it ends with the reason, so the client learns why:
 * DEADLINE_EXCEEDED when the deadline passed, UNAVAILABLE at shutdown (CANCELED
 * when the client left, which no one hears). It ends with RESOURCE_EXHAUSTED
 * when the client reads too slowly. It never ends with OK: a live stream has no
 * last item.
 */
export class StreamQueue<T> implements AsyncIterable<T> {
  private items: T[] = [];
  private wake: (() => void) | undefined;
  private failure: ConnectError | undefined;

  private readonly signal: AbortSignal;
  private readonly unlink: () => void;
  private disposed = false;
  // The signal's own `aborted` getter checks its receiver each time it is
  // read, twice per item; its abort event keeps this instead.
  private aborted = false;

  /** Ends when any of `signals` aborts. Call `dispose()` when the stream is over. */
  constructor(
    signals: AbortSignal[],
    private readonly options: QueueOptions = {},
  ) {
    const linked = linkSignals(...signals);
    this.signal = linked.signal;
    this.unlink = linked.unlink;
    if (this.signal.aborted) {
      this.aborted = true;
      return;
    }
    this.signal.addEventListener(
      "abort",
      () => {
        this.aborted = true;
        this.notify();
      },
      { once: true },
    );
  }

  /**
   * Ends the queue and detaches it from its signals: the gateway-wide shutdown
   * signal outlives every stream, and must not keep ended queues alive.
   */
  dispose(): void {
    this.disposed = true;
    this.unlink();
    this.drop();
    this.failure ??= new ConnectError("stream ended", Code.Canceled);
    this.notify();
  }

  /** Whether the stream has ended. */
  get ended(): boolean {
    return this.aborted;
  }

  push(item: T): void {
    if (this.failure || this.disposed) return;
    const max = this.options.maxItems ?? MAX_STREAM_BUFFER;
    if (this.items.length >= max) {
      const failure = new ConnectError(`stream fell ${max} items behind; reconnect and resume`, Code.ResourceExhausted);
      this.failure = failure;
      this.drop();
      this.options.onOverflow?.(failure, () => !this.disposed);
    } else {
      this.items.push(item);
      this.options.onDepth?.(1);
    }
    this.notify();
  }

  /**
   * The items, in order, until the queue ends (by hand, not a generator: this
   * runs once per item per stream). Pollable: an item already here is taken
   * without a promise, and a reader with nothing to take waits on `ready`.
   */
  [Symbol.asyncIterator](): Pollable<T> {
    return {
      next: () => this.next(),
      return: (value?: unknown) => Promise.resolve({ done: true, value: value as T }),
      poll: () => this.poll(),
      ready: () => this.ready(),
    };
  }

  /** The next item if one is here; an ended queue is left to next(), which says why. */
  private poll(): IteratorResult<T> | undefined {
    if (this.failure || this.aborted) return undefined;
    const item = this.items.shift();
    if (item === undefined) return undefined;
    this.options.onDepth?.(-1);
    return { done: false, value: item };
  }

  private ready(): Promise<void> {
    if (this.items.length > 0 || this.failure || this.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.wake = resolve;
    });
  }

  private next(): Promise<IteratorResult<T>> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.aborted) return Promise.reject(abortedError(this.signal));
    const item = this.items.shift();
    if (item !== undefined) {
      this.options.onDepth?.(-1);
      return Promise.resolve({ done: false, value: item });
    }
    return new Promise<void>((resolve) => {
      this.wake = resolve;
    }).then(() => this.next());
  }

  private drop(): void {
    if (this.items.length > 0) this.options.onDepth?.(-this.items.length);
    this.items = [];
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
