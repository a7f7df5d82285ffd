/**
 * One subscription's queue of received payloads. The handler sees them one
 * at a time, in arrival order, and each is settled (acknowledged) only once
 * the handler has returned or its promise has settled.
 */

/** A received payload and what to do once its handler is done with it. */
export interface Delivery {
  payload: Uint8Array;
  settle: () => void;
}

/** Hands deliveries to one handler, strictly one after the other. */
export class Inbox {
  /** False once stopped: no further handler call starts. */
  active = true;
  private readonly queue: Delivery[] = [];
  private running: Promise<void> | undefined;

  constructor(
    private readonly handler: (payload: Uint8Array) => void | Promise<void>,
    private readonly onError: (error: unknown) => void,
  ) {}

  /** Queues a delivery; false (and ignored) once stopped. */
  push(delivery: Delivery): boolean {
    if (!this.active) {
      return false;
    }
    this.queue.push(delivery);
    this.running ??= this.run();
    return true;
  }

  /** Stops delivering; returns the deliveries the handler has not started. */
  stop(): Delivery[] {
    this.active = false;
    return this.queue.splice(0);
  }

  /** Drops the deliveries not started yet (the broker redelivers them elsewhere); keeps running. */
  discard(): void {
    this.queue.length = 0;
  }

  /** Resolves once no handler call is in progress. */
  idle(): Promise<void> {
    return this.running ?? Promise.resolve();
  }

  private async run(): Promise<void> {
    // Start outside the caller's stack: amqplib dispatches deliveries while
    // parsing frames, and a handler that publishes or unsubscribes must not
    // re-enter it.
    await Promise.resolve();
    while (this.active && this.queue.length > 0) {
      const delivery = this.queue.shift() as Delivery;
      try {
        await this.handler(delivery.payload);
      } catch (error) {
        this.onError(error);
      }
      delivery.settle();
    }
    this.running = undefined;
  }
}
