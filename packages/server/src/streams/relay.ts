import type { Event } from "@stategate/api";
import { EventSchema } from "@stategate/api";
import type { Storage } from "@stategate/providers";
import { ValueTooLargeError } from "@stategate/providers";
import type { Logger } from "pino";
import { encodeKept, encoderOf } from "../encoding.js";
import { nowNs, toEvent } from "../services/convert.js";
import type { Hub } from "./hub.js";

/** Options of the relay; the defaults suit production, tests shorten them. */
export interface RelayOptions {
  /** How often the outbox is swept. */
  intervalMs?: number;
  /** How old an unpublished event must be before the sweep takes it over from its committing call. */
  graceMs?: number;
  /**
   * Takes the sweep for this gateway alone among all gateways sharing the
   * storage, resolving what releases it, or undefined while another gateway
   * sweeps. Two gateways sweeping at once would both relay the same event, and
   * a consumer group with a member on each would get it twice. Without it
   * every sweep runs.
   */
  claimSweep?: () => Promise<(() => Promise<void>) | undefined>;
}

/**
 * Hands committed events to the channel. Each mutation publishes its event
 * right after commit; a sweep of the storage outbox publishes whatever that
 * missed (a failed publish, or a gateway that died between commit and
 * publish), so stream subscribers get every event. An event can then reach the
 * channel twice; hubs drop the copy by position.
 */
export class EventRelay {
  private readonly pendingMarks: number[] = [];
  private markTimer: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private sweeping = false;
  private readonly intervalMs: number;
  private readonly graceNs: bigint;
  private readonly claimSweep: RelayOptions["claimSweep"];

  constructor(
    private readonly storage: Storage,
    private readonly hub: Hub<Event>,
    private readonly log: Logger,
    options: RelayOptions = {},
  ) {
    this.intervalMs = options.intervalMs ?? 1_000;
    this.graceNs = BigInt(options.graceMs ?? 2_000) * 1_000_000n;
    this.claimSweep = options.claimSweep;
  }

  /** Starts sweeping the outbox. */
  start(): void {
    this.sweepTimer = setInterval(() => void this.sweep(), this.intervalMs);
    this.sweepTimer.unref();
  }

  /** Publishes one just-committed event; a failure is logged and left to the sweep. */
  async publish(event: Event): Promise<void> {
    try {
      // Kept on the event: the Set answering with it sends these same bytes.
      await this.hub.publish(encodeKept(EventSchema, event));
      this.mark(Number(event.position));
    } catch (err) {
      if (err instanceof ValueTooLargeError) {
        this.log.error({ err, position: event.position }, "event too large for the channel; not relayed live");
        this.mark(Number(event.position));
        return;
      }
      this.log.warn({ err, position: event.position }, "event publish failed; the outbox sweep will retry it");
    }
  }

  /** Publishes what the outbox still holds; one sweep at a time, across gateways when `claimSweep` is given. */
  async sweep(): Promise<number> {
    if (this.sweeping) return 0;
    this.sweeping = true;
    let relayed = 0;
    let release: (() => Promise<void>) | undefined;
    try {
      if (this.claimSweep) {
        try {
          release = await this.claimSweep();
          if (release === undefined) return 0; // another gateway sweeps now
        } catch (err) {
          // Better an event twice than never: sweep without the claim.
          this.log.warn({ err }, "could not claim the outbox sweep; sweeping anyway");
        }
      }
      const records = await this.storage.unpublishedEvents(nowNs() - this.graceNs, 500);
      for (const record of records) {
        try {
          await this.hub.publish(encoderOf(EventSchema)(toEvent(record)));
        } catch (err) {
          // Too large for this channel, now and forever: retrying it would hold
          // back every event behind it. Streams still find it in storage when
          // they resume or catch up; live subscribers miss it, and the log says so.
          if (!(err instanceof ValueTooLargeError)) throw err;
          this.log.error({ err, position: record.position }, "event too large for the channel; not relayed live");
        }
        this.mark(record.position);
        relayed++;
      }
      if (relayed > 0) this.log.info({ relayed }, "relayed events from the outbox");
    } catch (err) {
      this.log.warn({ err, relayed }, "outbox sweep failed; will retry");
    } finally {
      // Marked before the claim goes, so the next gateway to sweep does not relay them again.
      clearTimeout(this.markTimer);
      await this.flushMarks();
      await release?.().catch((err: unknown) => this.log.warn({ err }, "could not release the outbox sweep"));
      this.sweeping = false;
    }
    return relayed;
  }

  /** Stops sweeping and writes the marks still buffered. */
  async stop(): Promise<void> {
    clearInterval(this.sweepTimer);
    clearTimeout(this.markTimer);
    await this.flushMarks();
  }

  // Marks are batched: one storage write per burst instead of one per event.
  // A mark lost in a crash only means the event is relayed again and dropped
  // as a duplicate.
  private mark(position: number): void {
    this.pendingMarks.push(position);
    this.markTimer ??= setTimeout(() => void this.flushMarks(), 50);
  }

  private async flushMarks(): Promise<void> {
    this.markTimer = undefined;
    const positions = this.pendingMarks.splice(0);
    if (positions.length === 0) return;
    try {
      await this.storage.markPublished(positions);
    } catch (err) {
      this.log.warn({ err, count: positions.length }, "could not mark events published; they may be relayed again");
    }
  }
}
