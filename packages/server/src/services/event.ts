import type { ServiceImpl } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Event, EventService } from "@stategate/api";
import { compileGlob } from "../streams/glob.js";
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

/** EventService: history from storage, live events from the channel. */
export function createEventService(deps: ServiceDeps): ServiceImpl<typeof EventService> {
  const { storage } = deps;

  return {
    async *stream(req, ctx) {
      if (req.consumerGroup !== "" && req.afterPosition !== undefined) {
        throw new ConnectError("after_position: cannot be combined with consumer_group", Code.InvalidArgument);
      }
      const matchDomain = compileGlob(req.domain);
      const matchType = compileGlob(req.type);
      const matches = (event: Event) => matchDomain(event.entity?.domain ?? "") && matchType(event.entity?.type ?? "");
      const group = req.consumerGroup === "" ? undefined : JSON.stringify([req.consumerGroup, req.domain, req.type]);
      const queue = new StreamQueue<Event | typeof GAP>(
        [ctx.signal, deps.shutdown],
        deps.streamBuffer?.(ctx, "event", group !== undefined),
      );
      // Subscribe before reading storage, so nothing committed meanwhile is missed.
      const unsubscribe = await deps.events.subscribe(
        (event) => {
          if (matches(event)) queue.push(event);
        },
        group,
        // A plain stream that may have missed live events catches up from storage.
        // A group member does not: the other members would get the same events again.
        group === undefined ? () => queue.push(GAP) : undefined,
      );
      try {
        // Everything up to `covered` has been read from storage and sent; live copies of it are dropped.
        let covered = -1n;
        // The newest position this stream is known to have seen, live or stored.
        let cursor = req.afterPosition ?? BigInt(await storage.lastPosition());

        const catchUp = async function* () {
          while (!queue.ended) {
            const page = await storage.eventsAfter(Number(cursor), CATCH_UP_PAGE);
            for (const record of page) {
              const event = toEvent(record);
              cursor = event.position;
              if (matches(event)) yield { event };
            }
            if (page.length < CATCH_UP_PAGE) break;
          }
          covered = cursor;
        };

        if (req.afterPosition !== undefined) yield* catchUp();
        for await (const item of queue) {
          if (item === GAP) {
            yield* catchUp();
            continue;
          }
          if (item.position <= covered) continue;
          if (item.position > cursor) cursor = item.position;
          yield { event: item };
        }
      } finally {
        unsubscribe();
        queue.dispose();
      }
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
