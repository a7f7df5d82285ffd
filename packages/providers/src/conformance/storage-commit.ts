/**
 * Storage.commit: the compare-and-set that every entity mutation rests on.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ProviderClosedError, VersionConflictError } from "../errors.js";
import type { Storage } from "../types.js";
import { draftEvent, put, putBlind, type StorageFactory, uniqueDomain, using } from "./helpers.js";

const allEvents = (storage: Storage, domain: string, type: string, key?: string) =>
  storage.searchEvents({ domain, type, ...(key === undefined ? {} : { key }), filter: [], limit: 1000, offset: 0 });

/** Commits apply only at the expected version, write state and event together, and refuse everything else. */
export function storageCommitGroup(factory: StorageFactory): void {
  describe("storage: commit", () => {
    it("creates an entity at version 1 and returns the stored event", () =>
      using(factory, async (storage) => {
        const ref = { domain: uniqueDomain("commit"), type: "user", key: "alice" };
        const event = draftEvent({ ...ref, version: 1, values: { name: "Alice" }, claims: { sub: "u1" } });
        const stored = await storage.commit({ event, expectedVersion: 0, state: event.values });
        assert.deepEqual({ ...stored, position: 0 }, { ...event, position: 0 });
        assert.ok(Number.isSafeInteger(stored.position) && stored.position > 0, "position is a positive integer");
        assert.deepEqual(await storage.getEntity(ref), { ...ref, values: { name: "Alice" }, version: 1 });
        assert.deepEqual(await storage.getEvent({ ...ref, id: event.id }), stored);
      }));

    it("applies each further mutation at the next version", () =>
      using(factory, async (storage) => {
        const ref = { domain: uniqueDomain("commit"), type: "user", key: "bob" };
        await put(storage, ref, 0, { n: 1 });
        const second = await put(storage, ref, 1, { n: 2 });
        assert.equal(second.version, 2);
        assert.deepEqual(await storage.getEntity(ref), { ...ref, values: { n: 2 }, version: 2 });
      }));

    it("refuses a stale, future or absent expected version and writes nothing", () =>
      using(factory, async (storage) => {
        const ref = { domain: uniqueDomain("commit"), type: "user", key: "carol" };
        await assert.rejects(put(storage, ref, 1, { n: 0 }), { name: "VersionConflictError", expected: 1, actual: 0 });
        assert.equal(await storage.getEntity(ref), undefined);
        await put(storage, ref, 0, { n: 1 });
        await put(storage, ref, 1, { n: 2 });
        for (const expected of [0, 1, 3]) {
          const attempt = put(storage, ref, expected, { n: 99 });
          await assert.rejects(attempt, (error) => {
            assert.ok(error instanceof VersionConflictError);
            assert.equal(error.expected, expected);
            assert.equal(error.actual, 2);
            return true;
          });
        }
        assert.deepEqual(await storage.getEntity(ref), { ...ref, values: { n: 2 }, version: 2 });
        assert.deepEqual(
          (await allEvents(storage, ref.domain, ref.type, ref.key)).map((e) => e.version),
          [1, 2],
        );
      }));

    it("refuses an event whose version is not expectedVersion + 1", () =>
      using(factory, async (storage) => {
        const ref = { domain: uniqueDomain("commit"), type: "user", key: "dan" };
        const event = draftEvent({ ...ref, version: 2, values: { n: 1 } });
        await assert.rejects(storage.commit({ event, expectedVersion: 0, state: event.values }));
        assert.equal(await storage.getEntity(ref), undefined);
        assert.deepEqual(await allEvents(storage, ref.domain, ref.type), []);
      }));

    it("deletes the state but keeps an event holding the values before deletion", () =>
      using(factory, async (storage) => {
        const ref = { domain: uniqueDomain("commit"), type: "user", key: "erin" };
        await put(storage, ref, 0, { name: "Erin" });
        const del = draftEvent({ ...ref, version: 2, values: { name: "Erin" }, operation: "delete" });
        await assert.rejects(storage.commit({ event: { ...del, version: 1 }, expectedVersion: 0, state: null }), {
          name: "VersionConflictError",
        });
        const stored = await storage.commit({ event: del, expectedVersion: 1, state: null });
        assert.equal(stored.operation, "delete");
        assert.equal(await storage.getEntity(ref), undefined);
        const found = await storage.searchEntities({ ...ref, filter: [], limit: 10, offset: 0 });
        assert.deepEqual(found, []);
        assert.deepEqual(await storage.getEvent({ ...ref, id: del.id }), stored);
        assert.deepEqual(stored.values, { name: "Erin" });
      }));

    it("keeps counting versions after a delete, so a re-created entity continues its log", () =>
      using(factory, async (storage) => {
        const ref = { domain: uniqueDomain("commit"), type: "user", key: "fay" };
        assert.equal(await storage.getVersion(ref), 0);
        await put(storage, ref, 0, { life: 1 });
        assert.equal(await storage.getVersion(ref), 1);
        const del = draftEvent({ ...ref, version: 2, values: { life: 1 }, operation: "delete" });
        await storage.commit({ event: del, expectedVersion: 1, state: null });
        assert.equal(await storage.getEntity(ref), undefined);
        assert.equal(await storage.getVersion(ref), 2, "a deleted entity keeps its delete event's version");
        await assert.rejects(put(storage, ref, 0, { life: 2 }), { name: "VersionConflictError", actual: 2 });
        const again = await put(storage, ref, 2, { life: 2 });
        assert.equal(again.version, 3);
        assert.deepEqual(await storage.getEntity(ref), { ...ref, values: { life: 2 }, version: 3 });
        const log = await allEvents(storage, ref.domain, ref.type, ref.key);
        assert.deepEqual(
          log.map((e) => [e.operation, e.version]),
          [
            ["set", 1],
            ["delete", 2],
            ["set", 3],
          ],
        );
      }));

    it("records versions without gaps and positions that strictly increase", () =>
      using(factory, async (storage) => {
        const ref = { domain: uniqueDomain("commit"), type: "user", key: "gus" };
        const positions: number[] = [];
        for (let version = 0; version < 6; version++) {
          positions.push((await put(storage, ref, version, { version })).position);
        }
        const log = await allEvents(storage, ref.domain, ref.type, ref.key);
        assert.deepEqual(
          log.map((e) => e.version),
          [1, 2, 3, 4, 5, 6],
        );
        assert.deepEqual(
          log.map((e) => e.position),
          positions,
        );
        for (let i = 1; i < positions.length; i++) {
          assert.ok((positions[i] as number) > (positions[i - 1] as number), "positions increase");
        }
      }));

    it("applies a commit without an expected version at the entity's next version, whatever it is", () =>
      using(factory, async (storage) => {
        const ref = { domain: uniqueDomain("commit"), type: "user", key: "ivy" };
        const first = await putBlind(storage, ref, { n: 1 });
        assert.equal(first.version, 1, "a new entity starts at 1");
        assert.deepEqual(await storage.getEntity(ref), { ...ref, values: { n: 1 }, version: 1 });
        await put(storage, ref, 1, { n: 2 });
        const third = await putBlind(storage, ref, { n: 3 });
        assert.equal(third.version, 3, "on top of whatever came before");
        assert.deepEqual(await storage.getEvent({ ...ref, id: third.id }), third);
        // After a delete the log goes on, as with an expected version.
        const del = draftEvent({ ...ref, version: 4, values: { n: 3 }, operation: "delete" });
        await storage.commit({ event: del, expectedVersion: 3, state: null });
        const reborn = await putBlind(storage, ref, { n: 5 });
        assert.equal(reborn.version, 5);
        assert.deepEqual(await storage.getEntity(ref), { ...ref, values: { n: 5 }, version: 5 });
        assert.deepEqual(
          (await allEvents(storage, ref.domain, ref.type, ref.key)).map((e) => [e.operation, e.version]),
          [
            ["set", 1],
            ["set", 2],
            ["set", 3],
            ["delete", 4],
            ["set", 5],
          ],
        );
        // An expected version still has to match what the blind commits left.
        await assert.rejects(put(storage, ref, 4, { n: 0 }), { name: "VersionConflictError", expected: 4, actual: 5 });
      }));

    it("refuses an event that names a version when no expected version is given", () =>
      using(factory, async (storage) => {
        const ref = { domain: uniqueDomain("commit"), type: "user", key: "jay" };
        const event = draftEvent({ ...ref, version: 1, values: { n: 1 } });
        await assert.rejects(storage.commit({ event, state: event.values }));
        assert.equal(await storage.getEntity(ref), undefined);
      }));

    it("answers ping, and refuses calls after close", async () => {
      const storage = await factory();
      await storage.ping();
      await storage.close();
      const ref = { domain: uniqueDomain("commit"), type: "user", key: "hal" };
      await assert.rejects(storage.getEntity(ref), ProviderClosedError);
      await assert.rejects(put(storage, ref, 0, {}), ProviderClosedError);
    });
  });
}
