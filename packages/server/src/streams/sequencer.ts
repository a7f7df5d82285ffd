import type { Logger } from "pino";

/** What a {@link Sequencer} needs to know of its items and of storage. */
export interface SequenceSource<T> {
  /** The item's place in the one order all items have (an event's storage position). */
  positionOf(item: T): bigint;
  /** The newest position storage holds now: where a new sequence starts. */
  last(): Promise<bigint>;
  /** Up to `limit` stored items after `position`, in order: what fills a gap the channel left. */
  after(position: bigint, limit: number): Promise<T[]>;
}

/** How long a gap may stay open before storage fills it. */
const GAP_WAIT_MS = 20;
/** Most items held behind a gap; past it, they go out in order and the gap is skipped. */
const MAX_HELD = 10_000;
/** Items read from storage per fill. */
const FILL_PAGE = 500;

/**
 * Hands the channel's items on in position order. Events reach the channel in
 * the order their commits finished publishing, not in the order they were
 * committed: two Sets whose commits end together publish in either order,
 * and with several gateways any interleaving is possible. A stream that
 * received position 11 before 10 and then resumes after 11 would never see
 * 10. So an item that arrives ahead of a gap is held until the gap's items
 * arrive, and a gap that stays open longer than a few milliseconds (a
 * publish that failed, and waits for the outbox sweep; a gateway that died
 * between commit and publish) is filled from storage, which holds every
 * committed position. Positions a fill finds no item for do not exist, and
 * are skipped.
 *
 * Items at or before the start position (committed before the sequence
 * began) go out as they come: nothing orders them against what came before.
 */
export class Sequencer<T> {
  /** The position expected next; undefined until storage said where to start. */
  private next: bigint | undefined;
  private readonly held = new Map<bigint, T>();
  private timer: NodeJS.Timeout | undefined;
  private filling = false;
  private closed = false;
  /** Storage could not say where to start: the first item says. */
  private unknownStart = false;

  constructor(
    private readonly source: SequenceSource<T>,
    private readonly emit: (item: T) => void,
    private readonly log: Logger,
    private readonly waitMs = GAP_WAIT_MS,
  ) {}

  /**
   * Reads where the sequence starts (the newest stored position): call it
   * once the channel subscription is live. Items that come before it is
   * known are held. Resolves once it is known, or could not be read.
   */
  start(): Promise<void> {
    return this.source.last().then(
      (last) => {
        this.next = last + 1n;
        // What came from before the start goes out as it came; the rest in order.
        for (const [position, item] of this.held) {
          if (position <= last) {
            this.held.delete(position);
            this.emit(item);
          }
        }
        this.release();
      },
      (err: unknown) => {
        // Without a start, order what comes from the first item on.
        this.log.warn({ err }, "could not read the newest event position; ordering live events from the first one");
        this.unknownStart = true;
        const first = [...this.held.keys()].reduce<bigint | undefined>(
          (a, b) => (a === undefined || b < a ? b : a),
          undefined,
        );
        if (first !== undefined) this.next = first;
        this.release();
      },
    );
  }

  /** Takes one item from the channel. */
  push(item: T): void {
    if (this.closed) return;
    const position = this.source.positionOf(item);
    if (this.next === undefined) {
      if (this.unknownStart) this.next = position;
      else {
        this.held.set(position, item);
        return;
      }
    }
    if (position < this.next) {
      this.emit(item);
      return;
    }
    this.held.set(position, item);
    this.release();
  }

  /** Stops: whatever is held goes out in order, and no fill runs any more. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    this.sendHeld();
  }

  /** Sends what follows the last sent item without a gap, and waits for the rest. */
  private release(): void {
    if (this.next === undefined) return;
    for (let item = this.held.get(this.next); item !== undefined; item = this.held.get(this.next)) {
      this.held.delete(this.next);
      this.next++;
      this.emit(item);
    }
    if (this.held.size > MAX_HELD) {
      this.log.warn(
        { held: this.held.size, next: String(this.next) },
        "a gap in event positions stayed open; sending past it",
      );
      this.sendHeld();
      return;
    }
    if (this.held.size > 0) this.timer ??= setTimeout(() => void this.fill(), this.waitMs);
    else {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  /** Fills the gap at `next` from storage, then sends what it can. */
  private async fill(): Promise<void> {
    this.timer = undefined;
    if (this.filling || this.closed || this.next === undefined || this.held.size === 0) return;
    this.filling = true;
    try {
      const stored = await this.source.after(this.next - 1n, FILL_PAGE);
      // Storage holds every committed position in order, up to the newest held one at least.
      for (const item of stored) {
        if (this.closed || this.next === undefined || this.held.size === 0) break;
        const position = this.source.positionOf(item);
        if (position < this.next) continue;
        // Held items storage skipped over (a read that did not see them yet) go first.
        this.sendHeld(position);
        // Storage has nothing between `next` and here: those positions do not exist.
        this.next = position + 1n;
        this.held.delete(position);
        this.emit(item);
      }
    } catch (err) {
      this.log.warn({ err }, "could not read events to fill a gap in live positions; will try again");
    } finally {
      this.filling = false;
    }
    if (!this.closed) this.release();
  }

  /** Sends the held items below `bound` (all of them without one), in position order, past any gap. */
  private sendHeld(bound?: bigint): void {
    const positions = [...this.held.keys()].filter((p) => bound === undefined || p < bound);
    positions.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (const position of positions) {
      const item = this.held.get(position) as T;
      this.held.delete(position);
      if (this.next !== undefined && position >= this.next) this.next = position + 1n;
      this.emit(item);
    }
  }
}
