/**
 * The event log: get by id, search by entity, time and values, and read in
 * position order to resume a stream.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { EventQuery, EventRecord, Storage } from "../types.js";
import { baseTime, draftEvent, put, type StorageFactory, uniqueDomain, using } from "./helpers.js";

interface Log {
  domain: string;
  events: EventRecord[];
}

// Six events one nanosecond apart, over two keys, ending with a delete:
// precision below a microsecond is what the time-bound tests probe.
async function seedLog(storage: Storage): Promise<Log> {
  const domain = uniqueDomain("events");
  const events: EventRecord[] = [];
  const ref = (key: string) => ({ domain, type: "order", key });
  events.push(await put(storage, ref("o1"), 0, { status: "new", total: 10 }, baseTime));
  events.push(await put(storage, ref("o2"), 0, { status: "new", total: 20 }, baseTime + 1n));
  events.push(await put(storage, ref("o1"), 1, { status: "paid", total: 10 }, baseTime + 2n));
  events.push(await put(storage, ref("o2"), 1, { status: "paid", total: 25 }, baseTime + 3n));
  events.push(await put(storage, ref("o1"), 2, { status: "sent", total: 10 }, baseTime + 4n));
  const del = draftEvent({ ...ref("o2"), version: 3, values: events[3]?.values ?? {}, operation: "delete" });
  events.push(await storage.commit({ event: { ...del, time: baseTime + 5n }, expectedVersion: 2, state: null }));
  return { domain, events };
}

function query(domain: string, more: Partial<EventQuery> = {}): EventQuery {
  return { domain, type: "order", filter: [], limit: 100, offset: 0, ...more };
}

const ids = (events: EventRecord[]) => events.map((event) => event.id);

/** Events are found by id only under their own entity, searched by key, time and values, and read in position order. */
export function storageEventsGroup(factory: StorageFactory): void {
  describe("storage: events", () => {
    it("gets an event by id only under the entity it belongs to", () =>
      using(factory, async (storage) => {
        const { domain, events } = await seedLog(storage);
        const first = events[0] as EventRecord;
        assert.deepEqual(await storage.getEvent({ domain, type: "order", key: "o1", id: first.id }), first);
        assert.equal(await storage.getEvent({ domain, type: "order", key: "o2", id: first.id }), undefined);
        assert.equal(await storage.getEvent({ domain, type: "invoice", key: "o1", id: first.id }), undefined);
        assert.equal(
          await storage.getEvent({ domain: `${domain}-x`, type: "order", key: "o1", id: first.id }),
          undefined,
        );
        const unknown = "00000000-0000-4000-8000-000000000000";
        assert.equal(await storage.getEvent({ domain, type: "order", key: "o1", id: unknown }), undefined);
      }));

    it("searches a type's events, or one key's, in position order", () =>
      using(factory, async (storage) => {
        const { domain, events } = await seedLog(storage);
        assert.deepEqual(await storage.searchEvents(query(domain)), events);
        const o2 = await storage.searchEvents(query(domain, { key: "o2" }));
        assert.deepEqual(
          o2.map((e) => [e.version, e.operation]),
          [
            [1, "set"],
            [2, "set"],
            [3, "delete"],
          ],
        );
        assert.deepEqual(o2.at(-1)?.values, { status: "paid", total: 25 });
        assert.deepEqual(await storage.searchEvents(query(domain, { key: "o3" })), []);
        assert.deepEqual(await storage.searchEvents({ ...query(domain), type: "invoice" }), []);
      }));

    it("bounds time inclusively, to the nanosecond", () =>
      using(factory, async (storage) => {
        const { domain, events } = await seedLog(storage);
        const between = (minTime?: bigint, maxTime?: bigint) =>
          storage.searchEvents(
            query(domain, {
              ...(minTime === undefined ? {} : { minTime }),
              ...(maxTime === undefined ? {} : { maxTime }),
            }),
          );
        assert.deepEqual(ids(await between(baseTime + 1n, baseTime + 3n)), ids(events.slice(1, 4)));
        assert.deepEqual(ids(await between(baseTime + 2n, baseTime + 2n)), ids(events.slice(2, 3)));
        assert.deepEqual(ids(await between(baseTime + 4n)), ids(events.slice(4)));
        assert.deepEqual(ids(await between(undefined, baseTime)), ids(events.slice(0, 1)));
        assert.deepEqual(ids(await between(baseTime + 6n)), []);
        assert.deepEqual(ids(await between(baseTime + 3n, baseTime + 2n)), []);
        const o1 = await storage.searchEvents(
          query(domain, { key: "o1", minTime: baseTime + 1n, maxTime: baseTime + 4n }),
        );
        assert.deepEqual(ids(o1), ids([events[2], events[4]] as EventRecord[]));
      }));

    it("filters, sorts and pages events by their values", () =>
      using(factory, async (storage) => {
        const { domain, events } = await seedLog(storage);
        const paid = await storage.searchEvents(query(domain, { filter: [{ path: ["status"], value: "paid" }] }));
        assert.deepEqual(ids(paid), ids([events[2], events[3], events[5]] as EventRecord[]));
        const ten = await storage.searchEvents(query(domain, { filter: [{ path: ["total"], value: 10 }] }));
        assert.deepEqual(ids(ten), ids([events[0], events[2], events[4]] as EventRecord[]));
        assert.deepEqual(await storage.searchEvents(query(domain, { filter: [{ path: ["total"], value: "10" }] })), []);
        const byTotal = await storage.searchEvents(query(domain, { sort: { path: ["total"], desc: true } }));
        // 25 twice (the paid o2 and its delete), then 20, then 10 three times: ties in position order.
        assert.deepEqual(ids(byTotal), ids([3, 5, 1, 0, 2, 4].map((i) => events[i]) as EventRecord[]));
        const page = await storage.searchEvents(
          query(domain, { sort: { path: ["total"], desc: false }, limit: 2, offset: 3 }),
        );
        assert.deepEqual(ids(page), ids([events[1], events[3]] as EventRecord[]));
      }));

    it("reports the newest position", () =>
      using(factory, async (storage) => {
        const before = await storage.lastPosition();
        const { events } = await seedLog(storage);
        const newest = events.at(-1)?.position ?? 0;
        assert.ok(newest > before);
        assert.ok((await storage.lastPosition()) >= newest, "at least the position of the last commit");
      }));

    it("reads events after a position in order, page by page", () =>
      using(factory, async (storage) => {
        const { domain, events } = await seedLog(storage);
        const start = (events[0] as EventRecord).position - 1;
        const last = (events.at(-1) as EventRecord).position;
        // Other tests may write to the same backend meanwhile: keep only this log's events.
        const all = await storage.eventsAfter(start, 10_000);
        assert.deepEqual(
          all.filter((e) => e.domain === domain),
          events,
        );
        const seen: EventRecord[] = [];
        let after = start;
        while (after < last) {
          const page = await storage.eventsAfter(after, 2);
          assert.ok(page.length > 0 && page.length <= 2, "a page holds 1 or 2 events");
          for (const event of page) {
            assert.ok(event.position > after, "positions strictly increase");
            after = event.position;
            seen.push(event);
          }
        }
        assert.deepEqual(
          seen.filter((e) => e.domain === domain),
          events,
        );
        const tail = await storage.eventsAfter(last, 100);
        assert.ok(tail.every((e) => e.position > last && e.domain !== domain));
      }));
  });
}
