import type { Logger } from "pino";
import type { Hub } from "./hub.js";

/**
 * Publishes committed events to the channel in commit order. A failed publish
 * is kept and retried with backoff, ahead of anything newer, so a channel
 * outage delays live delivery instead of losing events; streams that resume by
 * position can also catch up from storage.
 */
export class Publisher<T> {
  private readonly pending: Uint8Array[] = [];
  private timer: NodeJS.Timeout | undefined;
  private delayMs = 100;

  constructor(
    private readonly hub: Hub<T>,
    private readonly log: Logger,
  ) {}

  /** Sends `payload` now, or queues it behind earlier payloads that are still waiting. */
  async publish(payload: Uint8Array): Promise<void> {
    if (this.pending.length > 0) {
      this.pending.push(payload);
      return;
    }
    try {
      await this.hub.publish(payload);
    } catch (err) {
      this.log.error({ err }, "channel publish failed; will retry");
      this.pending.push(payload);
      this.schedule();
    }
  }

  /** Items still waiting for the channel. */
  get backlog(): number {
    return this.pending.length;
  }

  /** Stops retrying; what is still pending stays in storage for resuming streams. */
  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => void this.flush(), this.delayMs);
    this.timer.unref();
  }

  private async flush(): Promise<void> {
    this.timer = undefined;
    while (this.pending.length > 0) {
      try {
        await this.hub.publish(this.pending[0] as Uint8Array);
        this.pending.shift();
        this.delayMs = 100;
      } catch (err) {
        this.log.warn({ err, backlog: this.pending.length }, "channel publish retry failed");
        this.delayMs = Math.min(this.delayMs * 2, 5_000);
        this.schedule();
        return;
      }
    }
  }
}
