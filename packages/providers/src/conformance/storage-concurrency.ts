/**
 * Racing writers: the compare-and-set must hold when many commits arrive at
 * once, through one client or through several (as several gateways would).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { VersionConflictError } from "../errors.js";
import type { EntityRef, Storage } from "../types.js";
import { put, putBlind, type StorageFactory, uniqueDomain, using } from "./helpers.js";

/** Options of {@link storageConcurrencyGroup}. */
export interface StorageConcurrencyOptions {
  /** How many commits race at once. Default 20. */
  writers?: number;
}

async function openMany(factory: StorageFactory, count: number): Promise<Storage[]> {
  return Promise.all(Array.from({ length: count }, () => factory()));
}

async function race(storages: Storage[], ref: EntityRef, writers: number) {
  const attempts = Array.from({ length: writers }, (_, i) =>
    put(storages[i % storages.length] as Storage, ref, 0, { writer: i }),
  );
  return Promise.allSettled(attempts);
}

// Read, then write on top of what was read, retrying on conflict: the loop
// every gateway runs for an unconditional Set.
async function increment(storage: Storage, ref: EntityRef): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    const current = await storage.getEntity(ref);
    const version = current?.version ?? 0;
    try {
      await put(storage, ref, version, { count: version + 1 });
      return attempt;
    } catch (error) {
      if (!(error instanceof VersionConflictError) || attempt > 1000) {
        throw error;
      }
    }
  }
}

/** Exactly one of many racing commits wins; the losers get VersionConflictError and leave no trace. */
export function storageConcurrencyGroup(factory: StorageFactory, options: StorageConcurrencyOptions = {}): void {
  const writers = options.writers ?? 20;

  describe("storage: concurrency", () => {
    for (const clients of [1, 3]) {
      it(`lets exactly one of ${writers} racing creates win, through ${clients} client(s)`, async () => {
        const storages = await openMany(factory, clients);
        try {
          const ref = { domain: uniqueDomain("race"), type: "counter", key: "k" };
          const results = await race(storages, ref, writers);
          const won = results.filter((r) => r.status === "fulfilled");
          const lost = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
          assert.equal(won.length, 1, "one winner");
          for (const { reason } of lost) {
            assert.ok(reason instanceof VersionConflictError, `a loser fails with VersionConflictError, got ${reason}`);
            assert.equal(reason.actual, 1);
          }
          const winner = (won[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof put>>>).value;
          const storage = storages[0] as Storage;
          assert.deepEqual((await storage.getEntity(ref))?.values, winner.values);
          const log = await storage.searchEvents({ ...ref, filter: [], limit: 100, offset: 0 });
          assert.deepEqual(log, [winner]);
        } finally {
          await Promise.all(storages.map((s) => s.close()));
        }
      });
    }

    for (const clients of [1, 3]) {
      it(`applies all of ${writers} racing commits without an expected version, one version each, through ${clients} client(s)`, async () => {
        const storages = await openMany(factory, clients);
        try {
          const ref = { domain: uniqueDomain("race"), type: "counter", key: "blind" };
          const stored = await Promise.all(
            Array.from({ length: writers }, (_, i) => putBlind(storages[i % clients] as Storage, ref, { writer: i })),
          );
          assert.deepEqual(
            stored.map((e) => e.version).sort((a, b) => a - b),
            Array.from({ length: writers }, (_, i) => i + 1),
            "every commit applied, at its own version",
          );
          const storage = storages[0] as Storage;
          const log = await storage.searchEvents({ ...ref, filter: [], limit: 100, offset: 0 });
          assert.deepEqual(
            log.map((e) => e.version).sort((a, b) => a - b),
            Array.from({ length: writers }, (_, i) => i + 1),
          );
          // The state is the last one applied: the event with the highest version.
          const last = stored.find((e) => e.version === writers);
          assert.deepEqual((await storage.getEntity(ref))?.values, last?.values);
        } finally {
          await Promise.all(storages.map((s) => s.close()));
        }
      });
    }

    it("keeps versions gap-free while racing read-modify-write loops", async () => {
      const storages = await openMany(factory, 3);
      try {
        const ref = { domain: uniqueDomain("race"), type: "counter", key: "k" };
        const rounds = 5;
        await Promise.all(
          Array.from({ length: writers }, async (_, i) => {
            for (let round = 0; round < rounds; round++) {
              await increment(storages[i % storages.length] as Storage, ref);
            }
          }),
        );
        const total = writers * rounds;
        const storage = storages[0] as Storage;
        assert.deepEqual(await storage.getEntity(ref), { ...ref, values: { count: total }, version: total });
        const log = await storage.searchEvents({ ...ref, filter: [], limit: total + 10, offset: 0 });
        assert.deepEqual(
          log.map((e) => e.version),
          Array.from({ length: total }, (_, i) => i + 1),
        );
      } finally {
        await Promise.all(storages.map((s) => s.close()));
      }
    });

    it("commits racing writes to different entities, each with its own position", () =>
      using(factory, async (storage) => {
        const domain = uniqueDomain("race");
        const events = await Promise.all(
          Array.from({ length: writers }, (_, i) => put(storage, { domain, type: "item", key: `k${i}` }, 0, { i })),
        );
        assert.equal(new Set(events.map((e) => e.position)).size, writers);
        const found = await storage.searchEntities({ domain, type: "item", filter: [], limit: 1000, offset: 0 });
        assert.equal(found.length, writers);
      }));
  });
}
