/**
 * Cache expiry: values vanish at their expiry and not before; values without
 * one stay.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type CacheFactory, sleep, uniqueDomain, using } from "./helpers.js";

/** Options of the cache groups that wait for expiry. */
export interface CacheTimingOptions {
  /**
   * How long the short-lived values and locks live, in ms. Default 300; raise
   * it for a backend with coarse expiry (Memcached counts whole seconds).
   */
  expiryMs?: number;
}

/** Values expire at their expiresAt and not before; values without one, or set again without one, stay. */
export function cacheExpiryGroup(factory: CacheFactory, options: CacheTimingOptions = {}): void {
  const expiryMs = options.expiryMs ?? 300;
  // Slack past the expiry so a busy machine does not make the test flaky.
  const afterExpiry = expiryMs + 150;

  describe("cache: expiry", () => {
    it("drops values at their expiry, keeps the others", () =>
      using(factory, async (cache) => {
        const domain = uniqueDomain("expiry");
        const soon = new Date(Date.now() + expiryMs);
        await cache.set(domain, "short", { value: "gone soon", expiresAt: soon });
        await cache.set(domain, "deleted", { value: "gone soon", expiresAt: soon });
        await cache.set(domain, "long", { value: "stays", expiresAt: new Date(Date.now() + 60_000) });
        await cache.set(domain, "forever", { value: "stays" });
        await cache.set(domain, "renewed", { value: "first", expiresAt: soon });
        await cache.set(domain, "renewed", { value: "second" });
        assert.deepEqual((await cache.get(domain, "short"))?.value, "gone soon");
        await sleep(afterExpiry);
        assert.equal(await cache.get(domain, "short"), undefined);
        assert.equal(await cache.del(domain, "deleted"), false, "an expired value is not there to delete");
        assert.equal((await cache.get(domain, "long"))?.value, "stays");
        assert.deepEqual(await cache.get(domain, "forever"), { value: "stays" });
        assert.deepEqual(
          await cache.get(domain, "renewed"),
          { value: "second" },
          "set without expiry clears the old one",
        );
      }));

    it("treats an expiry in the past as already expired", () =>
      using(factory, async (cache) => {
        const domain = uniqueDomain("expiry");
        await cache.set(domain, "k", { value: "old", expiresAt: new Date(Date.now() - 1000) });
        assert.equal(await cache.get(domain, "k"), undefined);
      }));

    it("can set a new value under an expired key", () =>
      using(factory, async (cache) => {
        const domain = uniqueDomain("expiry");
        await cache.set(domain, "k", { value: 1, expiresAt: new Date(Date.now() + expiryMs) });
        await sleep(afterExpiry);
        await cache.set(domain, "k", { value: 2 });
        assert.deepEqual(await cache.get(domain, "k"), { value: 2 });
      }));
  });
}
