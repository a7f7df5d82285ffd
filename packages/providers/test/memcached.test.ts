import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { createServer, connect as netConnect, type Socket } from "node:net";
import { describe, it } from "node:test";
import { Client } from "memjs";
import { createMemcachedCache, defaultMaxValueBytes } from "../src/cache/memcached.js";
import { status } from "../src/cache/memcached-errors.js";
import {
  maxKeyBytes,
  maxRelativeExptime,
  memcachedExptime,
  memcachedKey,
  validKeyPrefix,
} from "../src/cache/memcached-keys.js";
import { call, opcode } from "../src/cache/memcached-protocol.js";
import { sleep, uniqueDomain, using } from "../src/conformance/helpers.js";
import { runCacheConformance } from "../src/conformance/index.js";
import {
  ProviderClosedError,
  ProviderConfigError,
  ProviderUnavailableError,
  ValueTooLargeError,
} from "../src/errors.js";
import { createCache } from "../src/registry.js";

const addr = process.env.STATEGATE_TEST_MEMCACHED_ADDR ?? "127.0.0.1:11211";
const factory = () => createMemcachedCache({ addr });
const prefix = "stategate:";
const day = 24 * 60 * 60 * 1000;

runCacheConformance(factory);

// A plain memjs client, to look at what the adapter left on the server.
async function withRawClient<R>(body: (client: Client) => Promise<R>): Promise<R> {
  const client = Client.create(addr, { retries: 1, logger: { log() {} } });
  try {
    return await body(client);
  } finally {
    client.close();
  }
}

/**
 * A TCP proxy in front of memcached that can hold back delete requests
 * (binary protocol: 24-byte header, opcode at byte 1, body length at 8),
 * and everything after them, until released.
 */
async function holdingProxy(target: string) {
  const at = target.lastIndexOf(":");
  const sockets = new Set<Socket>();
  let holding = false;
  let heldOne = () => {};
  const held = new Promise<void>((resolve) => {
    heldOne = resolve;
  });
  const waiting: (() => void)[] = [];
  const server = createServer((client) => {
    const upstream = netConnect({ host: target.slice(0, at), port: Number(target.slice(at + 1)) });
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("error", () => {
        client.destroy();
        upstream.destroy();
      });
    }
    upstream.pipe(client);
    let pending = Buffer.alloc(0);
    const forward = () => {
      while (pending.length >= 24) {
        const size = 24 + pending.readUInt32BE(8);
        if (pending.length < size) return;
        const packet = pending.subarray(0, size);
        if (holding && packet[1] === opcode.delete) {
          // This request and every later one wait, so they keep their order.
          waiting.push(forward);
          heldOne();
          return;
        }
        pending = pending.subarray(size);
        upstream.write(packet);
      }
    };
    client.on("data", (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      forward();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    addr: `127.0.0.1:${(server.address() as { port: number }).port}`,
    held,
    holdDeletes() {
      holding = true;
    },
    release() {
      holding = false;
      for (const resume of waiting.splice(0)) resume();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

const awkwardNames: [string, string][] = [
  ["a:b", "c"],
  ["a", "b:c"],
  ["a", "b"],
  ["", "ab"],
  ["ab", ""],
  ["with space", "tab\there"],
  ["line\nbreak", "\u0000\u0001\u007f"],
  ["émoji 👋", "名前"],
  ["\uD800", "lone surrogate"],
  ["\uFFFD", "lone surrogate"],
  ["long", "k".repeat(10_000)],
  ["long", `${"k".repeat(9_999)}j`],
  ["d".repeat(300), "k"],
];

describe("memcached keys", () => {
  it("maps any names to printable keys of at most 250 bytes", () => {
    for (const [domain, key] of awkwardNames) {
      for (const kind of ["value", "lock"] as const) {
        const name = memcachedKey(prefix, kind, domain, key);
        assert.match(name, /^[\x21-\x7e]+$/, JSON.stringify([domain, key]));
        assert.ok(Buffer.byteLength(name) <= maxKeyBytes, `${name.length} bytes`);
        assert.ok(name.startsWith(prefix));
      }
    }
  });

  it("never gives two pairs, or a value and a lock, the same key", () => {
    const names = awkwardNames.flatMap(([domain, key]) => [
      memcachedKey(prefix, "value", domain, key),
      memcachedKey(prefix, "lock", domain, key),
    ]);
    assert.equal(new Set(names).size, names.length);
  });

  it("hashes long names instead of truncating them, and keeps short ones readable", () => {
    const lengths = Array.from({ length: 300 }, (_, n) => memcachedKey(prefix, "value", "d", "k".repeat(n)));
    const plain = lengths.filter((name) => !name.includes("#"));
    const hashed = lengths.filter((name) => name.includes("#"));
    assert.ok(plain.length > 100 && hashed.length > 100);
    assert.ok(plain.every((name) => name.startsWith(`${prefix}v:`)));
    assert.equal(Math.max(...plain.map((name) => name.length)), maxKeyBytes, "plain keys use all the room there is");
    assert.ok(hashed.every((name) => /^stategate:v#[\w-]{43}$/.test(name)));
    assert.equal(new Set(hashed).size, hashed.length);
    assert.equal(memcachedKey(prefix, "value", "d", "k".repeat(299)), hashed.at(-1), "the same name, the same key");
  });

  it("accepts only printable ASCII prefixes that leave room for a hashed key", () => {
    assert.ok(validKeyPrefix("stategate:"));
    assert.ok(validKeyPrefix(""));
    for (const bad of ["has space", "tab\t", "é", "p".repeat(206)]) {
      assert.equal(validKeyPrefix(bad), false, JSON.stringify(bad));
    }
  });
});

describe("memcached exptime", () => {
  const now = 1_750_000_000_000;

  it("is 0 for never, and a few seconds past a near expiry", () => {
    assert.equal(memcachedExptime(undefined, now), 0);
    assert.equal(memcachedExptime(now + 5_000, now), 6);
    assert.equal(memcachedExptime(now + 4_001, now), 6);
    assert.equal(memcachedExptime(now + 300, now), 2);
    assert.equal(memcachedExptime(now - 60_000, now), 1, "already expired, yet never 0");
  });

  it("switches to a unix time past 30 days, where memcached would read a duration as one", () => {
    const under = memcachedExptime(now + 30 * day - 5_000, now);
    assert.ok(under > 0 && under <= maxRelativeExptime, `${under}`);
    for (const days of [30, 31, 45, 365]) {
      const at = now + days * day;
      assert.equal(memcachedExptime(at, now), Math.ceil(at / 1000) + 1, `${days} days`);
    }
    assert.equal(memcachedExptime(Date.UTC(2200, 0, 1), now), 0, "past the 32-bit field: the stored expiry rules");
  });
});

describe("memcached cache", () => {
  it("keeps values that expire in 31 and 45 days, and returns their expiry", () =>
    using(factory, async (cache) => {
      const domain = uniqueDomain("memcached");
      for (const days of [29, 31, 45]) {
        const expiresAt = new Date(Date.now() + days * day);
        await cache.set(domain, `${days}`, { value: days, expiresAt });
        assert.deepEqual(await cache.get(domain, `${days}`), { value: days, expiresAt }, `${days} days`);
      }
    }));

  it("lets memcached itself drop a value set to expire in 5 s by 7 s", () =>
    using(factory, async (cache) => {
      const domain = uniqueDomain("memcached");
      await cache.set(domain, "k", { value: "brief", expiresAt: new Date(Date.now() + 5_000) });
      const key = memcachedKey(prefix, "value", domain, "k");
      await withRawClient(async (raw) => {
        assert.notEqual((await raw.get(key)).value, null);
        await sleep(7_000);
        assert.equal((await raw.get(key)).value, null, "gone from the server, not only hidden on read");
      });
      assert.equal(await cache.get(domain, "k"), undefined);
    }));

  it("stores values under names with spaces, control characters and 10,000 characters, apart", () =>
    using(factory, async (cache) => {
      const domain = uniqueDomain("memcached");
      for (const [i, [d, k]] of awkwardNames.entries()) {
        await cache.set(`${domain}${d}`, k, { value: i });
      }
      for (const [i, [d, k]] of awkwardNames.entries()) {
        assert.deepEqual(await cache.get(`${domain}${d}`, k), { value: i }, JSON.stringify([d, k]));
      }
    }));

  it("refuses a 2 MiB value before sending it", () =>
    using(factory, async (cache) => {
      const domain = uniqueDomain("memcached");
      await assert.rejects(cache.set(domain, "big", { value: "x".repeat(2 * 1024 * 1024) }), (error) => {
        assert.ok(error instanceof ValueTooLargeError);
        assert.equal(error.limitBytes, defaultMaxValueBytes);
        assert.ok(error.actualBytes > 2 * 1024 * 1024);
        return true;
      });
      assert.equal(await cache.get(domain, "big"), undefined);
    }));

  it("turns the server's own too-large refusal into ValueTooLargeError, never OK and then a miss", () =>
    using(
      () => createMemcachedCache({ addr, maxValueBytes: 4 * 1024 * 1024 }),
      async (cache) => {
        const domain = uniqueDomain("memcached");
        await assert.rejects(cache.set(domain, "big", { value: "x".repeat(2 * 1024 * 1024) }), (error) => {
          assert.ok(error instanceof ValueTooLargeError);
          assert.ok(error.limitBytes < error.actualBytes, "reports the server's limit, not the configured one");
          return true;
        });
        assert.equal(await cache.get(domain, "big"), undefined);
        await cache.set(domain, "small", { value: 1 });
        assert.deepEqual(await cache.get(domain, "small"), { value: 1 }, "the connection survived the refusal");
      },
    ));

  it("stores a value of exactly the default limit under the longest key", () =>
    using(factory, async (cache) => {
      const domain = uniqueDomain("memcached");
      const key = "k".repeat(1_000);
      const envelope = JSON.stringify({ v: "", e: null }).length;
      const value = "x".repeat(defaultMaxValueBytes - envelope);
      await cache.set(domain, key, { value });
      assert.equal((await cache.get(domain, key))?.value, value);
      await assert.rejects(cache.set(domain, key, { value: `${value}x` }), ValueTooLargeError);
    }));

  it("refuses to read an item under its prefix that it did not write", () =>
    using(factory, async (cache) => {
      const domain = uniqueDomain("memcached");
      await withRawClient((raw) => raw.set(memcachedKey(prefix, "value", domain, "k"), "not json", { expires: 60 }));
      await assert.rejects(cache.get(domain, "k"), /not written by stategate/);
    }));
});

describe("memcached locks", () => {
  const inAMinute = () => new Date(Date.now() + 60_000);

  // Several clients stand for several gateways, each with its own connection.
  async function withClients(count: number, body: (caches: Awaited<ReturnType<typeof factory>>[]) => Promise<void>) {
    const caches = await Promise.all(Array.from({ length: count }, factory));
    try {
      await body(caches);
    } finally {
      await Promise.all(caches.map((cache) => cache.close()));
    }
  }

  it("grants exactly one of 50 racing attempts from 5 clients; a wrong token releases nothing", () =>
    withClients(5, async (caches) => {
      const domain = uniqueDomain("memcached-lock");
      const attempts = Array.from({ length: 50 }, (_, i) => ({ cache: caches[i % 5]!, token: randomUUID() }));
      const results = await Promise.all(
        attempts.map(({ cache, token }) => cache.lock(domain, "k", token, inAMinute())),
      );
      assert.equal(results.filter(Boolean).length, 1);
      const winner = attempts[results.indexOf(true)]!;
      const loser = attempts[(results.indexOf(true) + 1) % attempts.length]!;
      assert.equal(await loser.cache.unlock(domain, "k", loser.token), false);
      assert.equal(await loser.cache.lock(domain, "k", loser.token, inAMinute()), false, "the lock stayed");
      assert.equal(await caches[4]!.unlock(domain, "k", winner.token), true, "any gateway may release with the token");
    }));

  it("lets exactly one of many clients take over an expired lock memcached still holds", () =>
    withClients(5, async (caches) => {
      const domain = uniqueDomain("memcached-lock");
      assert.equal(await caches[0]!.lock(domain, "k", "old", new Date(Date.now() + 200)), true);
      await sleep(300);
      const tokens = Array.from({ length: 25 }, () => randomUUID());
      const results = await Promise.all(tokens.map((token, i) => caches[i % 5]!.lock(domain, "k", token, inAMinute())));
      assert.equal(results.filter(Boolean).length, 1);
      assert.equal(await caches[1]!.unlock(domain, "k", "old"), false, "the old owner's late unlock");
      assert.equal(await caches[2]!.unlock(domain, "k", tokens[results.indexOf(true)]!), true);
    }));

  it("releases once when the owner unlocks many times at once", () =>
    withClients(3, async (caches) => {
      const domain = uniqueDomain("memcached-lock");
      await caches[0]!.lock(domain, "k", "t", inAMinute());
      const results = await Promise.all(Array.from({ length: 15 }, (_, i) => caches[i % 3]!.unlock(domain, "k", "t")));
      assert.equal(results.filter(Boolean).length, 1);
    }));

  it("lets a late unlock whose delete arrives after the lock changed hands fail, and leaves the new owner's lock", async () => {
    // Unlock reads the item, checks the token, then deletes. The proxy holds
    // A's delete on the wire while A's lock expires and B takes it over; a
    // delete without the CAS read before would now remove B's lock.
    const proxy = await holdingProxy(addr);
    const a = await createMemcachedCache({ addr: proxy.addr, timeoutMs: 10_000 });
    const b = await factory();
    try {
      const domain = uniqueDomain("memcached-late-unlock");
      assert.equal(await a.lock(domain, "k", "token-a", new Date(Date.now() + 500)), true);
      proxy.holdDeletes();
      const unlockA = a.unlock(domain, "k", "token-a");
      await proxy.held; // A's token matched and its delete is on its way
      await sleep(600);
      assert.equal(await b.lock(domain, "k", "token-b", inAMinute()), true, "B takes over the expired lock");
      proxy.release();
      assert.equal(await unlockA, false, "A's late unlock releases nothing");
      const stored = await withRawClient((client) => client.get(memcachedKey(prefix, "lock", domain, "k")));
      assert.equal(JSON.parse(stored.value?.toString() ?? "null")?.t, "token-b", "B's token is still on the server");
      assert.equal(await a.lock(domain, "k", "token-c", inAMinute()), false, "the lock is still held");
      assert.equal(await b.unlock(domain, "k", "token-b"), true, "B releases its lock");
    } finally {
      await Promise.all([a.close(), b.close()]);
      await proxy.close();
    }
  });

  it("relies on a delete with a stale CAS leaving the item alone", async () => {
    // The step unlock depends on: between its read and its delete a new owner
    // may replace the item; the delete then carries the old CAS and must fail.
    const client = Client.create(addr, { retries: 1, logger: { log() {} } });
    try {
      const server = client.servers[0]!;
      const key = `${prefix}test-cas:${randomUUID()}`;
      await client.set(key, "first", { expires: 60 });
      const read = await call(client, server, { opcode: opcode.get, key }, 1000);
      await client.set(key, "second", { expires: 60 });
      const stale = await call(client, server, { opcode: opcode.delete, key, cas: read.cas }, 1000);
      assert.equal(stale.status, status.exists, "a CAS mismatch");
      assert.equal((await client.get(key)).value?.toString(), "second");
      const fresh = await call(client, server, { opcode: opcode.get, key }, 1000);
      assert.equal(
        (await call(client, server, { opcode: opcode.delete, key, cas: fresh.cas }, 1000)).status,
        status.ok,
      );
      assert.equal((await client.get(key)).value, null);
    } finally {
      client.close();
    }
  });
});

describe("memcached failures and configuration", () => {
  const unavailable = (error: unknown) => {
    assert.ok(error instanceof ProviderUnavailableError, `a ProviderUnavailableError, got ${error}`);
    assert.doesNotMatch(error.message, /127\.0\.0\.1|:1\b|ECONN/, "the message names no host");
    return true;
  };

  it("fails fast with ProviderUnavailableError when nothing listens, logging nothing", async (t) => {
    const logged = ["log", "error", "warn", "info"].map((method) => t.mock.method(console, method as "log"));
    const crashes: unknown[] = [];
    const onCrash = (error: unknown) => crashes.push(error);
    process.on("uncaughtException", onCrash);
    process.on("unhandledRejection", onCrash);
    try {
      const cache = await createMemcachedCache({ addr: "127.0.0.1:1" });
      const started = Date.now();
      const later = new Date(Date.now() + 60_000);
      await assert.rejects(cache.ping(), unavailable);
      await assert.rejects(cache.get("d", "k"), unavailable);
      await assert.rejects(cache.set("d", "k", { value: 1 }), unavailable);
      await assert.rejects(cache.del("d", "k"), unavailable);
      await assert.rejects(cache.lock("d", "k", "t", later), unavailable);
      await assert.rejects(cache.unlock("d", "k", "t"), unavailable);
      assert.ok(Date.now() - started < 3_000, `took ${Date.now() - started} ms`);
      await cache.close();
      await sleep(50);
    } finally {
      process.off("uncaughtException", onCrash);
      process.off("unhandledRejection", onCrash);
    }
    assert.deepEqual(crashes, []);
    assert.deepEqual(
      logged.map((mock) => mock.mock.callCount()),
      [0, 0, 0, 0],
    );
  });

  it("times out a server that accepts connections but never answers", async () => {
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => sockets.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const { port } = silent.address() as { port: number };
    const cache = await createMemcachedCache({ addr: `127.0.0.1:${port}`, timeoutMs: 300 });
    try {
      const started = Date.now();
      await assert.rejects(cache.get("d", "k"), (error) => unavailable(error) && /timed out/.test(String(error)));
      assert.ok(Date.now() - started < 2_000, `took ${Date.now() - started} ms`);
    } finally {
      await cache.close();
      for (const socket of sockets) {
        socket.destroy();
      }
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it("fails a request whose connection the server closes cleanly, and connects afresh for the next", async () => {
    // What a memcached that is stopped (or killed) does to a request in
    // flight: it reads it and closes the connection, with no answer and no reset.
    let requests = 0;
    const closing = createServer((socket) =>
      socket.on("data", () => {
        requests++;
        socket.end();
      }),
    );
    await new Promise<void>((resolve) => closing.listen(0, "127.0.0.1", resolve));
    const { port } = closing.address() as { port: number };
    const cache = await createMemcachedCache({ addr: `127.0.0.1:${port}`, timeoutMs: 300 });
    try {
      for (let round = 1; round <= 2; round++) {
        const started = Date.now();
        await assert.rejects(cache.get("d", "k"), unavailable);
        assert.ok(Date.now() - started < 2_000, `round ${round} took ${Date.now() - started} ms`);
        assert.equal(requests, round, "the request reached the server");
      }
    } finally {
      await cache.close();
      await new Promise((resolve) => closing.close(resolve));
    }
  });

  it("refuses calls after close", async () => {
    const cache = await factory();
    await cache.close();
    await assert.rejects(cache.ping(), ProviderClosedError);
    await assert.rejects(cache.lock("d", "k", "t", new Date(Date.now() + 1000)), ProviderClosedError);
  });

  it("refuses TLS at start-up, saying memjs cannot do it", async () => {
    await assert.rejects(createMemcachedCache({ addr, tls: true }), (error) => {
      assert.ok(error instanceof ProviderConfigError);
      assert.equal(error.option, "tls");
      assert.match(error.message, /memjs.*TLS/);
      return true;
    });
    await assert.rejects(createCache({ name: "memcached", addr, tls: true }), /memjs cannot speak TLS/);
  });

  it("refuses bad options, naming them", async () => {
    const bad: [Parameters<typeof createMemcachedCache>[0], string][] = [
      [{ addr: "host:port" }, "addr"],
      [{ addr: "127.0.0.1:70000" }, "addr"],
      [{ servers: `${addr},` }, "servers"],
      [{ addr, servers: addr }, "servers"],
      [{ addr, user: "u" }, "password"],
      [{ addr, password: "p" }, "user"],
      [{ addr, prefix: "has space" }, "prefix"],
      [{ addr, timeoutMs: 0 }, "timeoutMs"],
      [{ addr, maxValueBytes: -1 }, "maxValueBytes"],
    ];
    for (const [options, option] of bad) {
      await assert.rejects(createMemcachedCache(options), (error) => {
        assert.ok(error instanceof ProviderConfigError, `${JSON.stringify(options)}: ${error}`);
        assert.equal(error.option, option, JSON.stringify(options));
        return true;
      });
    }
  });

  it("is selected by its JSON spec, with a list of servers too", async () => {
    const domain = uniqueDomain("memcached");
    const one = await createCache({ name: "memcached", addr, prefix: "stategate-spec:" });
    const many = await createCache({ name: "memcached", servers: ` ${addr} `, prefix: "stategate-spec:" });
    try {
      assert.equal(one.name, "memcached");
      await one.set(domain, "k", { value: "shared" });
      assert.deepEqual(await many.get(domain, "k"), { value: "shared" });
      await many.ping();
    } finally {
      await one.close();
      await many.close();
    }
  });
});
