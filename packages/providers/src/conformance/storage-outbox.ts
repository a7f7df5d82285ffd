/**
 * The outbox: committed events stay "unpublished" until the gateway marks them,
 * so a relay can hand them to the channel after a failed publish or a crash.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { put, type StorageFactory, uniqueDomain, using } from "./helpers.js";

// Times far in the past, so `before` selects this test's events and not the
// realistic-time events other tests leave unpublished on a shared backend.
const oldTime = 1_000_000n + BigInt(Math.floor(Math.random() * 1_000_000));

/** Unpublished events are listed oldest position first until they are marked published. */
export function storageOutboxGroup(factory: StorageFactory): void {
  describe("storage: outbox", () => {
    it("lists committed events until they are marked published", () =>
      using(factory, async (storage) => {
        const domain = uniqueDomain("outbox");
        const ref = (key: string) => ({ domain, type: "job", key });
        const a = await put(storage, ref("a"), 0, { n: 1 }, oldTime);
        const b = await put(storage, ref("b"), 0, { n: 2 }, oldTime + 1n);
        const c = await put(storage, ref("a"), 1, { n: 3 }, oldTime + 2n);
        const mine = async (before: bigint) =>
          (await storage.unpublishedEvents(before, 10_000)).filter((e) => e.domain === domain).map((e) => e.id);

        assert.deepEqual(await mine(oldTime + 2n), [a.id, b.id, c.id], "oldest position first");
        assert.deepEqual(await mine(oldTime + 1n), [a.id, b.id], "only events at or before `before`");
        await storage.markPublished([a.position, c.position, 987_654_321_012]);
        assert.deepEqual(await mine(oldTime + 2n), [b.id]);
        await storage.markPublished([b.position]);
        assert.deepEqual(await mine(oldTime + 2n), []);
        await storage.markPublished([]);
      }));
  });
}
