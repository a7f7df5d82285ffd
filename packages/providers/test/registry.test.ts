import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { ProviderConfigError } from "../src/errors.js";
import {
  cacheProviderNames,
  channelProviderNames,
  createCache,
  createChannel,
  createStorage,
  type ProviderSpec,
  storageProviderNames,
} from "../src/registry.js";

const dir = mkdtempSync(join(tmpdir(), "stategate-registry-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const configError = (option: string, message: RegExp) => (error: unknown) => {
  assert.ok(error instanceof ProviderConfigError, `a ProviderConfigError, got ${error}`);
  assert.equal(error.option, option);
  assert.match(error.message, message);
  return true;
};

describe("provider registry", () => {
  it("lists the known provider names", () => {
    assert.deepEqual([...storageProviderNames].sort(), ["mysql", "postgres", "sqlite"]);
    assert.deepEqual([...cacheProviderNames].sort(), ["memcached", "memory", "redis"]);
    assert.deepEqual([...channelProviderNames].sort(), ["amqp", "memory", "nats", "redis"]);
  });

  it("creates sqlite storage at <dataDir>/stategate.db unless a path is given", async () => {
    const defaults = { dataDir: join(dir, "data") };
    const storage = await createStorage({ name: "sqlite" }, defaults);
    assert.equal(storage.name, "sqlite");
    await storage.close();
    assert.ok(existsSync(join(dir, "data", "stategate.db")));
    const elsewhere = join(dir, "elsewhere", "x.db");
    await (await createStorage({ name: "sqlite", path: elsewhere }, defaults)).close();
    assert.ok(existsSync(elsewhere));
  });

  it("creates the memory cache and channel", async () => {
    const cache = await createCache({ name: "memory" });
    const channel = await createChannel({ name: "memory" });
    assert.deepEqual([cache.name, channel.name], ["memory", "memory"]);
    await cache.close();
    await channel.close();
  });

  it("refuses an unknown name, listing the known ones", async () => {
    await assert.rejects(
      createStorage({ name: "mongo" }, { dataDir: dir }),
      configError("name", /unknown name "mongo".*sqlite/),
    );
    await assert.rejects(
      createCache({ name: "hazelcast" }),
      configError("name", /cache provider.*"hazelcast".*memory/),
    );
    await assert.rejects(createChannel({ name: "kafka" }), configError("name", /channel provider.*"kafka".*memory/));
    await assert.rejects(createCache({ name: "constructor" }), configError("name", /unknown name/));
  });

  it("refuses a spec without a string name", async () => {
    await assert.rejects(createCache({} as ProviderSpec), configError("name", /"name" must be a string/));
    await assert.rejects(createCache({ name: 3 } as unknown as ProviderSpec), configError("name", /one of: memory/));
    await assert.rejects(createCache(null as unknown as ProviderSpec), ProviderConfigError);
  });

  it("refuses unknown and wrongly typed options, naming them", async () => {
    await assert.rejects(
      createStorage({ name: "sqlite", addr: "localhost" }, { dataDir: dir }),
      configError("addr", /unknown option "addr".*options are: path/),
    );
    await assert.rejects(
      createStorage({ name: "sqlite", path: 42 }, { dataDir: dir }),
      configError("path", /"path" must be a non-empty string, got 42/),
    );
    await assert.rejects(
      createStorage({ name: "sqlite", path: "" }, { dataDir: dir }),
      configError("path", /non-empty/),
    );
    await assert.rejects(createCache({ name: "memory", ttl: 5 }), configError("ttl", /takes no options/));
    await assert.rejects(createChannel({ name: "memory", user: "x" }), configError("user", /takes no options/));
  });
});
