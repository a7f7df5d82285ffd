/**
 * What goes into storage comes back out unchanged: JSON of every shape,
 * unicode, large values, and nanosecond times.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { JsonObject, JsonValue } from "../types.js";
import { baseTime, draftEvent, put, type StorageFactory, uniqueDomain, using } from "./helpers.js";

/** Options of {@link storageValuesGroup}. */
export interface StorageValuesOptions {
  /** Size of the large-value test in bytes; lower it for a backend with a smaller row limit. Default 512 KiB. */
  largeValueBytes?: number;
}

const everyShape: JsonObject = {
  text: "plain",
  empty: "",
  zero: 0,
  negative: -42,
  fraction: 3.25,
  tiny: 1e-7,
  big: 9007199254740991,
  yes: true,
  no: false,
  nothing: null,
  list: [1, "two", null, false, { three: [3] }],
  emptyList: [],
  emptyObject: {},
  nested: { deeper: { deepest: { value: "here" } } },
  "key with spaces": 1,
  "dotted.key": 2,
};

/** Values, unicode, sizes and times round-trip exactly through commit, getEntity and the event reads. */
export function storageValuesGroup(factory: StorageFactory, options: StorageValuesOptions = {}): void {
  const largeValueBytes = options.largeValueBytes ?? 512 * 1024;

  describe("storage: values", () => {
    it("round-trips JSON of every shape in state, event values and claims", () =>
      using(factory, async (storage) => {
        const ref = { domain: uniqueDomain("values"), type: "doc", key: "shapes" };
        const event = draftEvent({ ...ref, version: 1, values: everyShape, claims: { sub: "u1", roles: ["a", "b"] } });
        await storage.commit({ event, expectedVersion: 0, state: everyShape });
        assert.deepEqual((await storage.getEntity(ref))?.values, everyShape);
        const stored = await storage.getEvent({ ...ref, id: event.id });
        assert.deepEqual(stored?.values, everyShape);
        assert.deepEqual(stored?.claims, { sub: "u1", roles: ["a", "b"] });
        assert.equal(stored?.method, "/stategate.v1.EntityService/Set");
      }));

    it("round-trips unicode in keys, value names and values", () =>
      using(factory, async (storage) => {
        const ref = { domain: uniqueDomain("values"), type: "doc", key: "キー🔑ключ" };
        const values = { 名前: "山田 太郎", emoji: "👩‍👩‍👧‍👦 🎉", "ключ😀": "значение", rtl: "مرحبا", astral: "𝄞" };
        await put(storage, ref, 0, values);
        assert.deepEqual(await storage.getEntity(ref), { ...ref, values, version: 1 });
        const found = await storage.searchEntities({
          domain: ref.domain,
          type: ref.type,
          filter: [{ path: ["名前"], value: "山田 太郎" }],
          limit: 10,
          offset: 0,
        });
        assert.deepEqual(
          found.map((e) => e.key),
          [ref.key],
        );
      }));

    it("round-trips what SQL text must escape, in keys, values and claims, on both commit paths", () =>
      using(factory, async (storage) => {
        // Quotes, backslashes before quotes, control characters, a statement end and a
        // comment (no NUL: the gateway refuses it, as PostgreSQL cannot store it).
        const awkward = `it's "quoted" \\' \\\\ \\" \n\r\t\b\f \u001a end'; DROP TABLE x; -- /* */`;
        const ref = { domain: uniqueDomain("escapes"), type: `t${awkward}`, key: `k${awkward}` };
        const values: JsonObject = { [awkward]: awkward, list: [awkward, `\\${awkward}\\`] };
        const claims = { sub: awkward };
        // Without an expected version, then with one.
        const { version: _, ...blind } = draftEvent({ ...ref, version: 1, values, claims });
        const first = await storage.commit({ event: blind, state: values });
        const next = { ...values, again: awkward };
        const second = await storage.commit({
          event: draftEvent({ ...ref, version: 2, values: next, claims }),
          expectedVersion: 1,
          state: next,
        });
        assert.deepEqual([first.version, second.version], [1, 2]);
        assert.deepEqual(await storage.getEntity(ref), { ...ref, values: next, version: 2 });
        for (const [event, expected] of [
          [first, values],
          [second, next],
        ] as const) {
          const stored = await storage.getEvent({ ...ref, id: event.id });
          assert.deepEqual([stored?.values, stored?.claims, stored?.key], [expected, claims, ref.key]);
        }
      }));

    it("round-trips a value nested 31 levels deep, the most the gateway accepts", () =>
      using(factory, async (storage) => {
        const ref = { domain: uniqueDomain("values"), type: "doc", key: "deep" };
        // The entity's own object is the first level; objects and arrays alternate below it.
        let inner: JsonValue = "leaf";
        for (let level = 31; level >= 2; level--) inner = level % 2 === 0 ? [inner] : { in: inner };
        const values: JsonObject = { deep: inner };
        await put(storage, ref, 0, values);
        assert.deepEqual((await storage.getEntity(ref))?.values, values);
      }));

    it(`round-trips a large value (${largeValueBytes} bytes)`, () =>
      using(factory, async (storage) => {
        const ref = { domain: uniqueDomain("values"), type: "doc", key: "large" };
        const chunk = "abcdefghijklmnopqrstuvwxyz0123456789".repeat(28); // about 1 KiB per entry
        const values: JsonObject = {};
        for (let i = 0; JSON.stringify(values).length < largeValueBytes; i++) {
          values[`field${i}`] = { i, chunk };
        }
        await put(storage, ref, 0, values);
        assert.deepEqual((await storage.getEntity(ref))?.values, values);
      }));

    it("keeps event times to the nanosecond, as bigint", () =>
      using(factory, async (storage) => {
        const ref = { domain: uniqueDomain("values"), type: "doc", key: "time" };
        const time = baseTime;
        const event = await put(storage, ref, 0, { at: "now" }, time);
        assert.equal(event.time, time);
        const [read] = await storage.eventsAfter(event.position - 1, 1);
        assert.equal(typeof read?.time, "bigint");
        assert.equal(read?.time, 1733250000123456789n);
        assert.equal((await storage.getEvent({ ...ref, id: event.id }))?.time, time);
      }));
  });
}
