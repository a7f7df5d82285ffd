import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createMemoryCache } from "../src/cache/memory.js";
import { runCacheConformance } from "../src/conformance/index.js";

runCacheConformance(() => createMemoryCache());

describe("memory cache", () => {
  it("hands out copies, so a caller mutating a value does not change the cache", async () => {
    const cache = await createMemoryCache();
    try {
      const value = { list: [1] };
      await cache.set("d", "k", { value });
      value.list.push(2);
      const read = await cache.get("d", "k");
      assert.deepEqual(read?.value, { list: [1] });
      (read?.value as { list: number[] }).list.push(3);
      assert.deepEqual((await cache.get("d", "k"))?.value, { list: [1] });
    } finally {
      await cache.close();
    }
  });

  it("refuses a value that is not JSON, and an invalid expiry", async () => {
    const cache = await createMemoryCache();
    try {
      await assert.rejects(cache.set("d", "k", { value: undefined as never }), TypeError);
      await assert.rejects(cache.set("d", "k", { value: 1, expiresAt: new Date(Number.NaN) }), TypeError);
      await assert.rejects(cache.lock("d", "k", "t", new Date("not a date")), TypeError);
    } finally {
      await cache.close();
    }
  });
});
