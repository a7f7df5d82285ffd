/**
 * Cache get/set/del: every JSON value round-trips, and names never collide.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ProviderClosedError } from "../errors.js";
import type { JsonValue } from "../types.js";
import { type CacheFactory, uniqueDomain, using } from "./helpers.js";

const samples: [string, JsonValue][] = [
  ["null", null],
  ["false", false],
  ["true", true],
  ["zero", 0],
  ["negative fraction", -1.5],
  ["empty string", ""],
  ["string", "hello"],
  ["unicode", "こんにちは 👋 мир"],
  ["empty array", []],
  ["array", [1, "two", null, false, [3]]],
  ["empty object", {}],
  ["nested object", { a: { b: { c: [1, { d: null }] } }, "e.f": true, 名: "値" }],
];

/** Values of every JSON kind round-trip; set replaces; del reports whether a value was there; names never collide. */
export function cacheValuesGroup(factory: CacheFactory): void {
  describe("cache: values", () => {
    it("round-trips JSON values of every kind", () =>
      using(factory, async (cache) => {
        const domain = uniqueDomain("cache");
        for (const [key, value] of samples) {
          await cache.set(domain, key, { value });
        }
        for (const [key, value] of samples) {
          assert.deepEqual(await cache.get(domain, key), { value }, key);
        }
      }));

    it("returns the expiry it was given, and none when none was given", () =>
      using(factory, async (cache) => {
        const domain = uniqueDomain("cache");
        const expiresAt = new Date(Date.now() + 3_600_000);
        await cache.set(domain, "timed", { value: 1, expiresAt });
        await cache.set(domain, "forever", { value: 2 });
        assert.equal((await cache.get(domain, "timed"))?.expiresAt?.getTime(), expiresAt.getTime());
        assert.deepEqual(await cache.get(domain, "forever"), { value: 2 });
      }));

    it("returns undefined for a missing value", () =>
      using(factory, async (cache) => {
        assert.equal(await cache.get(uniqueDomain("cache"), "missing"), undefined);
      }));

    it("replaces a value on set", () =>
      using(factory, async (cache) => {
        const domain = uniqueDomain("cache");
        await cache.set(domain, "k", { value: { v: 1 } });
        await cache.set(domain, "k", { value: [2] });
        assert.deepEqual(await cache.get(domain, "k"), { value: [2] });
      }));

    it("deletes a value, reporting whether one was there", () =>
      using(factory, async (cache) => {
        const domain = uniqueDomain("cache");
        await cache.set(domain, "k", { value: "v" });
        assert.equal(await cache.del(domain, "k"), true);
        assert.equal(await cache.get(domain, "k"), undefined);
        assert.equal(await cache.del(domain, "k"), false);
        assert.equal(await cache.del(domain, "never"), false);
      }));

    it("never confuses domain/key pairs that join to the same text", () =>
      using(factory, async (cache) => {
        const base = uniqueDomain("cache");
        const pairs: [string, string][] = [
          [`${base}:a`, "b"],
          [base, "a:b"],
          [`${base}a`, "b"],
          [base, "ab"],
          [`${base}/a`, "b"],
          [base, "a/b"],
        ];
        for (const [i, [domain, key]] of pairs.entries()) {
          await cache.set(domain, key, { value: i });
        }
        for (const [i, [domain, key]] of pairs.entries()) {
          assert.deepEqual(await cache.get(domain, key), { value: i }, `${domain} | ${key}`);
        }
        assert.equal(await cache.del(base, "a:b"), true);
        assert.deepEqual(await cache.get(`${base}:a`, "b"), { value: 0 });
      }));

    it("keeps values and locks apart under the same domain and key", () =>
      using(factory, async (cache) => {
        const domain = uniqueDomain("cache");
        const later = new Date(Date.now() + 60_000);
        assert.equal(await cache.lock(domain, "k", "token", later), true);
        assert.equal(await cache.get(domain, "k"), undefined);
        assert.equal(await cache.del(domain, "k"), false);
        await cache.set(domain, "k", { value: "v" });
        assert.equal(await cache.lock(domain, "k", "other", later), false, "the value did not replace the lock");
        assert.equal(await cache.del(domain, "k"), true);
        assert.equal(await cache.unlock(domain, "k", "token"), true, "deleting the value kept the lock");
        assert.deepEqual(await cache.get(domain, "k"), undefined);
      }));

    it("answers ping, and refuses calls after close", async () => {
      const cache = await factory();
      await cache.ping();
      await cache.close();
      await assert.rejects(cache.get(uniqueDomain("cache"), "k"), ProviderClosedError);
    });
  });
}
