/**
 * Cache locks: one holder at a time, released only by its own token while it
 * holds, taken over once expired.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, it } from "node:test";
import type { CacheTimingOptions } from "./cache-expiry.js";
import { type CacheFactory, sleep, uniqueDomain, using } from "./helpers.js";

const inAMinute = () => new Date(Date.now() + 60_000);

/** Locks exclude other tokens until released or expired; unlock is owner-safe, expired tokens release nothing. */
export function cacheLockGroup(factory: CacheFactory, options: CacheTimingOptions = {}): void {
  const expiryMs = options.expiryMs ?? 300;
  const afterExpiry = expiryMs + 150;

  describe("cache: locks", () => {
    it("grants a free lock and refuses it while held, even to the same token", () =>
      using(factory, async (cache) => {
        const domain = uniqueDomain("lock");
        assert.equal(await cache.lock(domain, "k", "t1", inAMinute()), true);
        assert.equal(await cache.lock(domain, "k", "t2", inAMinute()), false);
        assert.equal(await cache.lock(domain, "k", "t1", inAMinute()), false);
        assert.equal(await cache.lock(domain, "other", "t2", inAMinute()), true, "locks are per key");
        assert.equal(await cache.lock(`${domain}-2`, "k", "t2", inAMinute()), true, "locks are per domain");
      }));

    it("releases only with the holder's token, and only once", () =>
      using(factory, async (cache) => {
        const domain = uniqueDomain("lock");
        assert.equal(await cache.unlock(domain, "k", "t1"), false, "nothing to release");
        await cache.lock(domain, "k", "t1", inAMinute());
        assert.equal(await cache.unlock(domain, "k", "t2"), false);
        assert.equal(await cache.lock(domain, "k", "t2", inAMinute()), false, "a wrong token released nothing");
        assert.equal(await cache.unlock(domain, "k", "t1"), true);
        assert.equal(await cache.unlock(domain, "k", "t1"), false);
        assert.equal(await cache.lock(domain, "k", "t2", inAMinute()), true);
      }));

    it("frees an expired lock for a new holder, and then refuses the old token", () =>
      using(factory, async (cache) => {
        const domain = uniqueDomain("lock");
        assert.equal(await cache.lock(domain, "k", "old", new Date(Date.now() + expiryMs)), true);
        assert.equal(await cache.lock(domain, "k", "new", inAMinute()), false, "held until it expires");
        await sleep(afterExpiry);
        assert.equal(await cache.lock(domain, "k", "new", inAMinute()), true);
        assert.equal(await cache.unlock(domain, "k", "old"), false);
        assert.equal(await cache.lock(domain, "k", "third", inAMinute()), false, "the old token released nothing");
        assert.equal(await cache.unlock(domain, "k", "new"), true);
      }));

    it("does not let an expired lock be released by its old token", () =>
      using(factory, async (cache) => {
        const domain = uniqueDomain("lock");
        await cache.lock(domain, "k", "old", new Date(Date.now() + expiryMs));
        await sleep(afterExpiry);
        assert.equal(await cache.unlock(domain, "k", "old"), false);
      }));

    it("grants a lock to exactly one of many racing tokens", () =>
      using(factory, async (cache) => {
        const domain = uniqueDomain("lock");
        const tokens = Array.from({ length: 20 }, () => randomUUID());
        const results = await Promise.all(tokens.map((token) => cache.lock(domain, "k", token, inAMinute())));
        assert.equal(results.filter(Boolean).length, 1);
        const winner = tokens[results.indexOf(true)] as string;
        for (const token of tokens.filter((t) => t !== winner)) {
          assert.equal(await cache.unlock(domain, "k", token), false);
        }
        assert.equal(await cache.unlock(domain, "k", winner), true);
      }));
  });
}
