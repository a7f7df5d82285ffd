import type { Pollable } from "./pollable.js";
import type { StreamQueue } from "./queue.js";

const settled = Promise.resolve();

/** What a live stream's start hands over: the queue its subscription fills, and how to end the subscription. */
export interface LiveSource<Q> {
  queue: StreamQueue<Q>;
  unsubscribe: () => void;
}

/**
 * A server stream fed by a subscription: items come from an async part first
 * (its start, and whatever else a subclass runs as a `pending` generator,
 * such as reading storage), then from the queue the subscription fills, each
 * turned into a message by `take`. Written by hand rather than as an async
 * generator for the live part, which runs once per item per stream: a queued
 * item is taken without a promise (see pollable.ts).
 *
 * However it ends (an error, the queue ending, `return()`), the subscription
 * is ended and the queue disposed, once.
 */
export abstract class LiveStream<Q, O> implements Pollable<O>, AsyncIterable<O> {
  private source: LiveSource<Q> | undefined;
  private queueIt: Pollable<Q> | undefined;
  /** An async part to finish before the queue is read again (the start, a catch-up). */
  protected pending: AsyncGenerator<O, void> | undefined;
  private closed = false;

  constructor() {
    this.pending = this.start();
  }

  /**
   * Checks what must be checked first and subscribes, handing the
   * subscription to `attach` as soon as it exists; what it yields after that
   * (items read from storage) goes out before the queue's items.
   */
  protected abstract start(): AsyncGenerator<O, void>;

  /** The message for a queued item, or undefined to skip it (after setting `pending`, to run that first). */
  protected abstract take(item: Q): IteratorResult<O> | undefined;

  /** Whether the stream is over: an async part should stop reading. */
  protected get ended(): boolean {
    return this.closed || (this.source?.queue.ended ?? false);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async next(): Promise<IteratorResult<O>> {
    try {
      for (;;) {
        if (this.pending !== undefined) {
          const result = await this.pending.next();
          if (!result.done) return result;
          this.pending = undefined;
        }
        const queued = await (this.queueIt as Pollable<Q>).next();
        if (queued.done) {
          this.close();
          return { done: true, value: undefined };
        }
        const result = this.take(queued.value);
        if (result !== undefined) return result;
      }
    } catch (err) {
      this.close();
      throw err;
    }
  }

  poll(): IteratorResult<O> | undefined {
    const it = this.queueIt;
    if (this.pending !== undefined || this.closed || it === undefined) return undefined;
    for (;;) {
      const queued = it.poll();
      if (queued === undefined || queued.done) return undefined;
      const result = this.take(queued.value);
      if (result !== undefined) return result;
      if (this.pending !== undefined) return undefined;
    }
  }

  ready(): Promise<void> {
    const it = this.queueIt;
    return this.pending !== undefined || this.closed || it === undefined ? settled : it.ready();
  }

  async return(value?: unknown): Promise<IteratorResult<O>> {
    this.close();
    const pending = this.pending;
    this.pending = undefined;
    await pending?.return();
    return { done: true, value: value as O };
  }

  /** The subscription is live: the stream reads its queue, and ends it however the stream ends. */
  protected attach(source: LiveSource<Q>): void {
    this.source = source;
    this.queueIt = source.queue[Symbol.asyncIterator]();
    // Ended while starting (return() called meanwhile): let go at once.
    if (this.closed) this.release(source);
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.source !== undefined) this.release(this.source);
  }

  private release(source: LiveSource<Q>): void {
    source.unsubscribe();
    source.queue.dispose();
  }
}
