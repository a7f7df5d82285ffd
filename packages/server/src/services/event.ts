import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Event, EventService, EventServiceStreamRequest } from "@stategate/api";
import { compileGlob } from "../streams/glob.js";
import { LiveStream } from "../streams/live-stream.js";
import { StreamQueue } from "../streams/queue.js";
import { toEvent } from "./convert.js";
import type { ServiceDeps } from "./deps.js";
import { parseFilter, toSortSpec } from "./query.js";
import { checkPageSize, DEFAULT_LIMIT } from "./rules.js";
import { eventSize } from "./size.js";

/** Queued when the channel may have dropped events: the stream re-reads storage. */
const GAP = Symbol("gap");

/** Page size when a stream catches up from storage. */
const CATCH_UP_PAGE = 100;

/** What the stream sends: one event. */
interface StreamItem {
  event: Event;
}

/**
 * One EventService.Stream: the subscription first, then (when the client
 * resumes after a position) what storage holds past it, then live events,
 * reading storage again whenever the channel may have dropped some.
 */
class EventStream extends LiveStream<Event | typeof GAP, StreamItem> {
  private matches: (event: Event) => boolean = () => false;
  /** Everything up to `covered` has been read from storage and sent; live copies of it are dropped. */
  private covered = -1n;
  /** The newest position this stream is known to have seen, live or stored. */
  private cursor = 0n;

  constructor(
    private readonly deps: ServiceDeps,
    private readonly req: EventServiceStreamRequest,
    private readonly ctx: HandlerContext,
  ) {
    super();
  }

  protected async *start(): AsyncGenerator<StreamItem, void> {
    const req = this.req;
    const ctx = this.ctx;
    const deps = this.deps;
    if (req.consumerGroup !== "" && req.afterPosition !== undefined) {
      throw new ConnectError("after_position: cannot be combined with consumer_group", Code.InvalidArgument);
    }
    const matchDomain = compileGlob(req.domain);
    const matchType = compileGlob(req.type);
    this.matches = (event) => matchDomain(event.entity?.domain ?? "") && matchType(event.entity?.type ?? "");
    const group = req.consumerGroup === "" ? undefined : JSON.stringify([req.consumerGroup, req.domain, req.type]);
    const queue = new StreamQueue<Event | typeof GAP>(
      [ctx.signal, deps.shutdown],
      deps.streamBuffer?.(ctx, "event", group !== undefined),
    );
    // Subscribe before reading storage, so nothing committed meanwhile is missed.
    let unsubscribe: () => void;
    try {
      unsubscribe = await deps.events.subscribe(
        (event) => {
          if (this.matches(event)) queue.push(event);
        },
        group,
        // A plain stream that may have missed live events catches up from storage.
        // A group member does not: the other members would get the same events again.
        group === undefined ? () => queue.push(GAP) : undefined,
      );
    } catch (err) {
      queue.dispose();
      throw err;
    }
    this.attach({ queue, unsubscribe });
    this.cursor = req.afterPosition ?? BigInt(await deps.storage.lastPosition());
    if (req.afterPosition !== undefined) yield* this.catchUp();
  }

  protected take(item: Event | typeof GAP): IteratorResult<StreamItem> | undefined {
    if (item === GAP) {
      this.pending = this.catchUp();
      return undefined;
    }
    if (item.position <= this.covered) return undefined;
    if (item.position > this.cursor) this.cursor = item.position;
    return { done: false, value: { event: item } };
  }

  /** What storage holds past the cursor, page by page; live copies of it are dropped afterwards. */
  private async *catchUp(): AsyncGenerator<StreamItem, void> {
    while (!this.ended) {
      const page = await this.deps.storage.eventsAfter(Number(this.cursor), CATCH_UP_PAGE);
      for (const record of page) {
        const event = toEvent(record);
        this.cursor = event.position;
        if (this.matches(event)) yield { event };
      }
      if (page.length < CATCH_UP_PAGE) break;
    }
    this.covered = this.cursor;
  }
}

/** EventService: history from storage, live events from the channel. */
export function createEventService(deps: ServiceDeps): ServiceImpl<typeof EventService> {
  const { storage } = deps;

  return {
    stream(req, ctx) {
      return new EventStream(deps, req, ctx);
    },

    async search(req) {
      const records = await storage.searchEvents({
        domain: req.domain,
        type: req.type,
        key: req.key === "" ? undefined : req.key,
        minTime: req.minTime,
        maxTime: req.maxTime,
        filter: parseFilter(req.filter),
        sort: toSortSpec(req.sort),
        limit: req.limit ?? DEFAULT_LIMIT,
        offset: req.offset,
      });
      const events = records.map(toEvent);
      checkPageSize(events, eventSize, deps.limits.maxResponseBytes, "events");
      return { events };
    },

    async get(req) {
      const record = await storage.getEvent({
        domain: req.domain,
        type: req.type,
        key: req.key,
        id: req.id.toLowerCase(),
      });
      if (!record) {
        throw new ConnectError(
          `event ${req.id} of entity ${req.domain}/${req.type}/${req.key} not found`,
          Code.NotFound,
        );
      }
      return { event: toEvent(record) };
    },
  };
}
