import assert from "node:assert/strict";
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, connect as netConnect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { MaxRetriesPerRequestError, Redis, ReplyError } from "ioredis";
import { createRedisCache, type RedisCacheOptions } from "../src/cache/redis.js";
import { redisError } from "../src/cache/redis-errors.js";
import { redisKey, redisPxat } from "../src/cache/redis-keys.js";
import { resolveRedisSettings as resolveCacheSettings } from "../src/cache/redis-options.js";
import { channelKey, membersKey, streamKey, topics } from "../src/channel/redis-link.js";
import { resolveRedisSettings as resolveChannelSettings } from "../src/channel/redis-options.js";
import { sleep, uniqueDomain, using } from "../src/conformance/helpers.js";
import { runCacheConformance } from "../src/conformance/index.js";
import { ProviderClosedError, ProviderConfigError, ProviderUnavailableError } from "../src/errors.js";
import { createCache } from "../src/registry.js";

const addr = process.env.STATEGATE_TEST_REDIS_ADDR ?? "127.0.0.1:6379";
const [host, port] = [addr.slice(0, addr.lastIndexOf(":")), Number(addr.slice(addr.lastIndexOf(":") + 1))];
// Every key of this run lives under its own prefix, removed at the end.
const prefix = `stategate-test-${randomUUID().slice(0, 8)}:`;
const factory = () => createRedisCache({ addr, prefix });
type RedisCache = Awaited<ReturnType<typeof factory>>;

runCacheConformance(factory);

// A plain ioredis client, to look at what the adapter left on the server.
async function withRaw<R>(body: (raw: Redis) => Promise<R>, options: { port?: number; db?: number } = {}): Promise<R> {
  const raw = new Redis({ host, port: options.port ?? port, db: options.db ?? 0, maxRetriesPerRequest: 0 });
  raw.on("error", () => {});
  try {
    return await body(raw);
  } finally {
    raw.disconnect();
  }
}

after(async () => {
  // Glob characters in the prefix would widen the match; there are none.
  assert.match(prefix, /^[\w:-]+$/);
  for (const db of [0, 1]) {
    await withRaw(
      async (raw) => {
        let cursor = "0";
        do {
          const [next, keys] = await raw.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
          if (keys.length > 0) {
            await raw.del(...keys);
          }
          cursor = next;
        } while (cursor !== "0");
      },
      { db },
    );
  }
});

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect({ host: "127.0.0.1", port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on("error", () => resolve(false));
  });
}

/** A redis-server of this test's own on a free port, for settings the shared one must not get. */
async function startRedis(args: string[], onPort?: number): Promise<{ port: number; stop(): Promise<void> }> {
  const port = onPort ?? (await freePort());
  const portArgs = args.includes("--tls-port") ? ["--port", "0"] : ["--port", String(port)];
  const finalArgs = args.map((arg) => (arg === "{port}" ? String(port) : arg));
  const child: ChildProcess = spawn("redis-server", [...portArgs, "--save", "", "--appendonly", "no", ...finalArgs], {
    stdio: "ignore",
  });
  let up = false;
  const deadline = Date.now() + 10_000;
  while (!up && Date.now() < deadline) {
    up = await listening(port);
    if (!up) await sleep(50);
  }
  if (!up) {
    child.kill("SIGKILL");
    throw new Error(`redis-server ${finalArgs.join(" ")} did not start on port ${port}`);
  }
  return {
    port,
    async stop() {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGKILL");
      await exited;
    },
  };
}

const unavailable =
  (reason?: RegExp, hidden: string[] = []) =>
  (error: unknown) => {
    assert.ok(error instanceof ProviderUnavailableError, `a ProviderUnavailableError, got ${error}`);
    assert.doesNotMatch(error.message, /127\.0\.0\.1|localhost|ECONN/, "the message names no host");
    for (const secret of hidden) assert.ok(!error.message.includes(secret), `the message hides ${secret}`);
    if (reason !== undefined) assert.match(error.message, reason);
    return true;
  };

const awkwardNames: [string, string][] = [
  ["a:b", "c"],
  ["a", "b:c"],
  ["a", "b"],
  ["", "ab"],
  ["ab", ""],
  ['a"', "b"],
  ["a", '"b'],
  ['a","', "b"],
  ["a", '","b'],
  ["a\\", "b"],
  ["a", "\\b"],
  ["v:", "k"],
  ["l:", "k"],
  ["with space", "tab\there"],
  ["line\nbreak", "\u0000\u0001\u007f"],
  ["émoji 👋", "名前"],
  ["\uD800", "lone surrogate"],
  ["\uFFFD", "lone surrogate"],
  ["lone surrogate", "\uDC00"],
  ["lone surrogate", "\uFFFD"],
  ["long", "k".repeat(10_000)],
  ["long", `${"k".repeat(9_999)}j`],
];

describe("redis keys", () => {
  it("never gives two pairs, or a value and a lock, the same bytes", () => {
    // Redis compares bytes, and ioredis sends strings as UTF-8: compare those.
    const names = awkwardNames.flatMap(([domain, key]) =>
      (["value", "lock"] as const).map((kind) =>
        Buffer.from(redisKey("p:", kind, domain, key), "utf8").toString("hex"),
      ),
    );
    assert.equal(new Set(names).size, names.length);
  });

  it("starts every key with the prefix and a kind mark, so no name reaches another key space", () => {
    for (const [domain, key] of awkwardNames) {
      assert.ok(redisKey("p:", "value", domain, key).startsWith('p:v:["'));
      assert.ok(redisKey("p:", "lock", domain, key).startsWith('p:l:["'));
    }
    assert.equal(redisKey("stategate:", "value", "app", "user 1"), 'stategate:v:["app","user 1"]');
    assert.equal(redisKey("stategate:", "lock", "a:b", "c"), 'stategate:l:["a:b","c"]');
    assert.notEqual(redisKey("", "value", "a:b", "c"), redisKey("", "value", "a", "b:c"));
  });

  it("never meets a key of the Redis channel, with both on their default prefixes", () => {
    const cachePrefix = resolveCacheSettings({}).prefix;
    const channel = resolveChannelSettings({});
    assert.equal(cachePrefix, "stategate:");
    assert.equal(channel.prefix, "stategate");
    const names: [string, string][] = [
      ...awkwardNames,
      ["events", ""],
      ["", "events"],
      ["events", "stream"],
      ["messages", "group"],
      [":events", ":stream"],
    ];
    const cacheKeys = names.flatMap(([domain, key]) =>
      (["value", "lock"] as const).map((kind) => redisKey(cachePrefix, kind, domain, key)),
    );
    const groups = ["workers", "", "v", "l:", ...names.flat()];
    const channelKeys = topics.flatMap((topic) => [
      channelKey(channel, topic),
      streamKey(channel, topic),
      ...groups.map((group) => membersKey(channel, topic, group)),
    ]);
    // Disjoint namespaces: after the shared "stategate:" a cache key goes on
    // with a kind mark ("v:[" or "l:["), a channel key with its topic.
    for (const key of cacheKeys) assert.match(key, /^stategate:[vl]:\[/);
    for (const key of channelKeys) assert.match(key, /^stategate:(events|messages)(:|$)/);
    const channelSet = new Set(channelKeys);
    assert.deepEqual(
      cacheKeys.filter((key) => channelSet.has(key)),
      [],
    );
  });

  it("keeps long names whole: no hashing, no truncation", () => {
    const key = "k".repeat(10_000);
    assert.ok(redisKey("p:", "value", "d", key).endsWith(`${key}"]`));
  });

  it("turns expiries at or before the epoch into a PXAT Redis accepts", () => {
    assert.equal(redisPxat(1_750_000_000_123), 1_750_000_000_123);
    assert.equal(redisPxat(0), 1);
    assert.equal(redisPxat(-86_400_000), 1);
  });
});

describe("redis errors", () => {
  it("maps outages to ProviderUnavailableError with a generic message, anything else to a plain error", () => {
    const cases: [unknown, RegExp | undefined][] = [
      [new ReplyError("LOADING Redis is loading the dataset in memory"), /loading/],
      [new ReplyError("READONLY You can't write against a read only replica."), /read-only/],
      [new ReplyError("OOM command not allowed when used memory > 'maxmemory'."), /out of memory/],
      [new ReplyError("WRONGPASS invalid username-password pair or user is disabled."), /authentication/],
      [new ReplyError("NOAUTH Authentication required."), /authentication/],
      [new ReplyError("BUSY Redis is busy running a script."), /busy/],
      [new ReplyError("MASTERDOWN Link with MASTER is down"), /primary/],
      [new ReplyError("MISCONF Redis is configured to save RDB snapshots"), /refuses writes/],
      [new MaxRetriesPerRequestError(0), /cannot reach/],
      [new Error("Connection is closed."), /cannot reach/],
      [new Error("Command timed out"), /timed out/],
      [Object.assign(new Error("connect ECONNREFUSED 10.0.0.7:6379"), { code: "ECONNREFUSED" }), /cannot reach/],
      [Object.assign(new Error("self-signed certificate"), { code: "DEPTH_ZERO_SELF_SIGNED_CERT" }), /TLS/],
      [new ReplyError("WRONGTYPE Operation against a key holding the wrong kind of value"), undefined],
      [new ReplyError("ERR unknown command"), undefined],
    ];
    for (const [error, reason] of cases) {
      const mapped = redisError(error);
      if (reason === undefined) {
        assert.ok(!(mapped instanceof ProviderUnavailableError), `${error} is not an outage`);
      } else {
        unavailable(reason, ["10.0.0.7"])(mapped);
      }
      assert.equal(mapped.cause, error);
    }
  });

  it("explains a lost connection with the client's last connection error", () => {
    const refused = new ReplyError("WRONGPASS invalid username-password pair or user is disabled.");
    const mapped = redisError(new MaxRetriesPerRequestError(0), refused);
    unavailable(/authentication failed/)(mapped);
    assert.equal(mapped.cause, refused);
    assert.match(redisError(new Error("Command timed out"), refused).message, /timed out/);
  });

  it("passes its own errors through", () => {
    const closed = new ProviderClosedError("redis");
    assert.equal(redisError(closed), closed);
  });
});

describe("redis cache", () => {
  const pexpiretime = (key: string) => withRaw((raw) => raw.call("PEXPIRETIME", key) as Promise<number>);

  it("round-trips a 5 MB value", () =>
    using(factory, async (cache) => {
      const domain = uniqueDomain("redis");
      const value = { text: "x".repeat(5 * 1024 * 1024), list: Array.from({ length: 1000 }, (_, i) => i) };
      await cache.set(domain, "big", { value });
      assert.deepEqual(await cache.get(domain, "big"), { value });
      assert.equal(await cache.del(domain, "big"), true);
    }));

  it("tells Redis the exact expiry (PXAT), so Redis frees the key itself", () =>
    using(factory, async (cache) => {
      const domain = uniqueDomain("redis");
      const expiresAt = new Date(Date.now() + 3_600_123);
      await cache.set(domain, "k", { value: 1, expiresAt });
      const key = redisKey(prefix, "value", domain, "k");
      assert.equal(await pexpiretime(key), expiresAt.getTime());
      const pttl = await withRaw((raw) => raw.pttl(key));
      assert.ok(pttl > 3_590_000 && pttl <= 3_600_123, `PTTL ${pttl}`);
    }));

  it("expires at sub-second precision: there just before, gone from Redis just after", () =>
    using(factory, async (cache) => {
      const domain = uniqueDomain("redis");
      const expiresAt = new Date(Date.now() + 400);
      await cache.set(domain, "k", { value: "brief", expiresAt });
      const key = redisKey(prefix, "value", domain, "k");
      assert.deepEqual(await cache.get(domain, "k"), { value: "brief", expiresAt }, "the expiry to the millisecond");
      await sleep(expiresAt.getTime() - Date.now() - 150);
      const read = await cache.get(domain, "k");
      if (Date.now() < expiresAt.getTime()) {
        assert.deepEqual(read, { value: "brief", expiresAt }, "still there before its expiry");
      }
      await sleep(expiresAt.getTime() - Date.now() + 30);
      assert.equal(await cache.get(domain, "k"), undefined);
      assert.equal(await withRaw((raw) => raw.exists(key)), 0, "gone from the server, not only hidden on read");
    }));

  it("clears a previous TTL when a value is set without expiry", () =>
    using(factory, async (cache) => {
      const domain = uniqueDomain("redis");
      const key = redisKey(prefix, "value", domain, "k");
      await cache.set(domain, "k", { value: 1, expiresAt: new Date(Date.now() + 60_000) });
      assert.ok((await withRaw((raw) => raw.pttl(key))) > 0);
      await cache.set(domain, "k", { value: 2 });
      assert.equal(await withRaw((raw) => raw.pttl(key)), -1, "no TTL left");
      assert.deepEqual(await cache.get(domain, "k"), { value: 2 });
    }));

  it("drops the old value when set with an expiry in the past, even before 1970", () =>
    using(factory, async (cache) => {
      const domain = uniqueDomain("redis");
      const key = redisKey(prefix, "value", domain, "k");
      for (const expiresAt of [new Date(Date.now() - 1000), new Date(0), new Date(-86_400_000)]) {
        await cache.set(domain, "k", { value: "live" });
        await cache.set(domain, "k", { value: "dead", expiresAt });
        assert.equal(await cache.get(domain, "k"), undefined, expiresAt.toISOString());
        assert.equal(await withRaw((raw) => raw.exists(key)), 0);
      }
    }));

  it("keeps values that expire in 45 days and in the year 2200, with their expiry", () =>
    using(factory, async (cache) => {
      const domain = uniqueDomain("redis");
      for (const expiresAt of [new Date(Date.now() + 45 * 86_400_000), new Date(Date.UTC(2200, 0, 1, 0, 0, 0, 7))]) {
        await cache.set(domain, "k", { value: 1, expiresAt });
        assert.deepEqual(await cache.get(domain, "k"), { value: 1, expiresAt });
      }
    }));

  it("stores values under names that differ only in escaping, surrogates or length, apart", () =>
    using(factory, async (cache) => {
      const domain = uniqueDomain("redis");
      for (const [i, [d, k]] of awkwardNames.entries()) {
        await cache.set(`${domain}${d}`, k, { value: i });
      }
      for (const [i, [d, k]] of awkwardNames.entries()) {
        assert.deepEqual(await cache.get(`${domain}${d}`, k), { value: i }, JSON.stringify([d, k]));
      }
    }));

  it("refuses to read a key under its prefix that it did not write", () =>
    using(factory, async (cache) => {
      const domain = uniqueDomain("redis");
      await withRaw((raw) => raw.set(redisKey(prefix, "value", domain, "k"), "not json", "EX", 60));
      await assert.rejects(cache.get(domain, "k"), /not written by stategate/);
      await withRaw((raw) => raw.set(redisKey(prefix, "value", domain, "k"), '{"v":1,"e":"soon"}', "EX", 60));
      await assert.rejects(cache.get(domain, "k"), /not written by stategate/);
    }));

  it("uses the database it is given", async () => {
    const domain = uniqueDomain("redis");
    await using(
      () => createRedisCache({ addr, prefix, db: 1 }),
      (cache) => cache.set(domain, "k", { value: "in db 1" }),
    );
    const key = redisKey(prefix, "value", domain, "k");
    assert.equal(await withRaw((raw) => raw.exists(key), { db: 1 }), 1);
    assert.equal(await withRaw((raw) => raw.exists(key), { db: 0 }), 0);
    await using(
      () => createRedisCache({ url: `redis://${addr}/1`, prefix }),
      async (cache) => assert.deepEqual(await cache.get(domain, "k"), { value: "in db 1" }),
    );
  });
});

describe("redis locks", () => {
  const inAMinute = () => new Date(Date.now() + 60_000);

  // Several clients stand for several gateways, each with its own connection.
  async function withClients(count: number, body: (caches: RedisCache[]) => Promise<void>) {
    const caches = await Promise.all(Array.from({ length: count }, factory));
    try {
      await body(caches);
    } finally {
      await Promise.all(caches.map((cache) => cache.close()));
    }
  }

  it("grants exactly one of 50 racing attempts from 5 clients; a wrong token releases nothing", () =>
    withClients(5, async (caches) => {
      const domain = uniqueDomain("redis-lock");
      const attempts = Array.from({ length: 50 }, (_, i) => ({ cache: caches[i % 5]!, token: randomUUID() }));
      const results = await Promise.all(
        attempts.map(({ cache, token }) => cache.lock(domain, "k", token, inAMinute())),
      );
      assert.equal(results.filter(Boolean).length, 1);
      const winner = attempts[results.indexOf(true)]!;
      const loser = attempts[(results.indexOf(true) + 1) % attempts.length]!;
      assert.equal(await loser.cache.unlock(domain, "k", loser.token), false);
      assert.equal(await withRaw((raw) => raw.get(redisKey(prefix, "lock", domain, "k"))), winner.token, "it stayed");
      assert.equal(await loser.cache.lock(domain, "k", loser.token, inAMinute()), false);
      assert.equal(await caches[4]!.unlock(domain, "k", winner.token), true, "any gateway may release with the token");
    }));

  it("sets the lock's expiry in Redis to the instant asked for", () =>
    using(factory, async (cache) => {
      const domain = uniqueDomain("redis-lock");
      const expiresAt = new Date(Date.now() + 90_001);
      assert.equal(await cache.lock(domain, "k", "t", expiresAt), true);
      const key = redisKey(prefix, "lock", domain, "k");
      assert.equal(await withRaw((raw) => raw.call("PEXPIRETIME", key)), expiresAt.getTime());
    }));

  it("lets B take over A's expired lock; A's late unlock then fails and B keeps it", () =>
    withClients(2, async ([a, b]) => {
      const domain = uniqueDomain("redis-lock");
      assert.equal(await a!.lock(domain, "k", "token-a", new Date(Date.now() + 150)), true);
      assert.equal(await b!.lock(domain, "k", "token-b", inAMinute()), false, "held until it expires");
      await sleep(200);
      assert.equal(await b!.lock(domain, "k", "token-b", inAMinute()), true);
      assert.equal(await a!.unlock(domain, "k", "token-a"), false, "A's late unlock");
      assert.equal(await withRaw((raw) => raw.get(redisKey(prefix, "lock", domain, "k"))), "token-b");
      assert.equal(await a!.lock(domain, "k", "token-c", inAMinute()), false, "B still holds it");
      assert.equal(await b!.unlock(domain, "k", "token-b"), true);
    }));

  it("releases once when the owner unlocks many times at once", () =>
    withClients(3, async (caches) => {
      const domain = uniqueDomain("redis-lock");
      await caches[0]!.lock(domain, "k", "t", inAMinute());
      const results = await Promise.all(Array.from({ length: 15 }, (_, i) => caches[i % 3]!.unlock(domain, "k", "t")));
      assert.equal(results.filter(Boolean).length, 1);
    }));

  it("still unlocks after Redis forgot the script (EVALSHA falls back to EVAL)", () =>
    using(factory, async (cache) => {
      const domain = uniqueDomain("redis-lock");
      await cache.lock(domain, "a", "t", inAMinute());
      assert.equal(await cache.unlock(domain, "a", "t"), true);
      await withRaw((raw) => raw.script("FLUSH"));
      await cache.lock(domain, "b", "t", inAMinute());
      assert.equal(await cache.unlock(domain, "b", "t"), true);
    }));
});

describe("redis failures", () => {
  it("starts at once and fails every call fast with ProviderUnavailableError when nothing listens, logging nothing", async (t) => {
    const logged = ["log", "error", "warn", "info"].map((method) => t.mock.method(console, method as "log"));
    const crashes: unknown[] = [];
    const onCrash = (error: unknown) => crashes.push(error);
    process.on("uncaughtException", onCrash);
    process.on("unhandledRejection", onCrash);
    const reported: unknown[] = [];
    try {
      const created = Date.now();
      const cache = await createRedisCache({ addr: "127.0.0.1:1", onError: (error) => reported.push(error) });
      assert.ok(Date.now() - created < 100, `creation took ${Date.now() - created} ms`);
      const started = Date.now();
      const later = new Date(Date.now() + 60_000);
      await assert.rejects(cache.ping(), unavailable(/cannot reach/));
      await assert.rejects(cache.get("d", "k"), unavailable());
      await assert.rejects(cache.set("d", "k", { value: 1 }), unavailable());
      await assert.rejects(cache.del("d", "k"), unavailable());
      await assert.rejects(cache.lock("d", "k", "t", later), unavailable());
      await assert.rejects(cache.unlock("d", "k", "t"), unavailable());
      assert.ok(Date.now() - started < 1_000, `took ${Date.now() - started} ms`);
      await sleep(1_500);
      const again = Date.now();
      await assert.rejects(cache.get("d", "k"), unavailable(/cannot reach/));
      assert.ok(Date.now() - again < 200, `a call during a long outage took ${Date.now() - again} ms`);
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
    assert.ok(reported.length > 0, "the connection errors reached onError");
  });

  it("times out a server that accepts connections but never answers", async () => {
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => sockets.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const { port } = silent.address() as { port: number };
    const cache = await createRedisCache({ addr: `127.0.0.1:${port}`, timeoutMs: 300 });
    try {
      const started = Date.now();
      await assert.rejects(cache.get("d", "k"), unavailable(/timed out/));
      assert.ok(Date.now() - started < 2_000, `took ${Date.now() - started} ms`);
    } finally {
      await cache.close();
      for (const socket of sockets) {
        socket.destroy();
      }
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it("reconnects by itself when the server comes back", async () => {
    const server = await startRedis([]);
    const cache = await createRedisCache({ addr: `127.0.0.1:${server.port}` });
    let restarted: Awaited<ReturnType<typeof startRedis>> | undefined;
    try {
      await cache.set("d", "k", { value: 1 });
      await server.stop();
      await assert.rejects(cache.get("d", "k"), unavailable());
      restarted = await startRedis([], server.port);
      let back = false;
      const deadline = Date.now() + 10_000;
      while (!back && Date.now() < deadline) {
        back = await cache.set("d", "k", { value: 2 }).then(
          () => true,
          () => false,
        );
        if (!back) await sleep(100);
      }
      assert.ok(back, "calls work again without a new client");
      assert.deepEqual(await cache.get("d", "k"), { value: 2 });
    } finally {
      await cache.close();
      await restarted?.stop();
    }
  });

  it("says a wrong password is an authentication failure, without the password", async () => {
    const server = await startRedis(["--requirepass", "right-secret"]);
    try {
      for (const options of [
        { addr: `127.0.0.1:${server.port}`, password: "wrong-secret" },
        { url: `redis://default:wrong-secret@127.0.0.1:${server.port}` },
        { addr: `127.0.0.1:${server.port}` },
      ] satisfies RedisCacheOptions[]) {
        await using(
          () => createRedisCache(options),
          (cache) => assert.rejects(cache.ping(), unavailable(/authentication failed/, ["secret"])),
        );
      }
      await using(
        () => createRedisCache({ addr: `127.0.0.1:${server.port}`, user: "default", password: "right-secret", prefix }),
        async (cache) => {
          await cache.set("d", "k", { value: "authenticated" });
          assert.deepEqual(await cache.get("d", "k"), { value: "authenticated" });
        },
      );
    } finally {
      await server.stop();
    }
  });

  it("says a read-only replica refuses writes", async () => {
    const server = await startRedis(["--replicaof", "127.0.0.1", "1"]);
    try {
      await using(
        () => createRedisCache({ addr: `127.0.0.1:${server.port}` }),
        (cache) => assert.rejects(cache.set("d", "k", { value: 1 }), unavailable(/read-only replica/)),
      );
    } finally {
      await server.stop();
    }
  });

  it("refuses calls after close", async () => {
    const cache = await factory();
    await cache.close();
    await cache.close();
    await assert.rejects(cache.ping(), ProviderClosedError);
    await assert.rejects(cache.lock("d", "k", "t", new Date(Date.now() + 1000)), ProviderClosedError);
  });
});

describe("redis TLS", () => {
  let dir: string;
  let server: Awaited<ReturnType<typeof startRedis>>;
  let tlsAddr: string;
  const file = (name: string) => join(dir, name);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "stategate-redis-tls-"));
    // Commands as text: they run in `dir` on file names without spaces.
    const openssl = (command: string) => execFileSync("openssl", command.split(" "), { cwd: dir, stdio: "ignore" });
    const key = (name: string) => `-newkey rsa:2048 -nodes -keyout ${name}.key`;
    for (const ca of ["ca", "other-ca"]) {
      openssl(`req -x509 ${key(ca)} -out ${ca}.crt -days 1 -subj /CN=stategate-test-${ca}`);
    }
    writeFileSync(file("server.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
    for (const [name, cn, ext] of [
      ["server", "localhost", " -extfile server.ext"],
      ["client", "stategate", ""],
    ] as const) {
      openssl(`req ${key(name)} -out ${name}.csr -subj /CN=${cn}`);
      openssl(`x509 -req -in ${name}.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out ${name}.crt -days 1${ext}`);
    }
    const settings = {
      "tls-port": "{port}",
      "tls-cert-file": file("server.crt"),
      "tls-key-file": file("server.key"),
      "tls-ca-cert-file": file("ca.crt"),
      "tls-auth-clients": "yes",
    };
    server = await startRedis(Object.entries(settings).flatMap(([name, value]) => [`--${name}`, value]));
    tlsAddr = `127.0.0.1:${server.port}`;
  });

  after(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const clientTls = () => ({ ca: file("ca.crt"), cert: file("client.crt"), key: file("client.key") });

  it("talks TLS with the CA, client certificate and key it is given, by addr or rediss:// url", async () => {
    for (const options of [
      { addr: tlsAddr, tls: clientTls() },
      { url: `rediss://${tlsAddr}`, tls: clientTls() },
      { url: `rediss://localhost:${server.port}`, tls: clientTls() },
    ] satisfies RedisCacheOptions[]) {
      await using(
        () => createRedisCache(options),
        async (cache) => {
          await cache.set("d", "k", { value: "over TLS" });
          assert.deepEqual(await cache.get("d", "k"), { value: "over TLS" }, JSON.stringify(options));
        },
      );
    }
  });

  it("fails as a TLS failure when the server's certificate does not verify", async () => {
    for (const options of [
      { addr: tlsAddr, tls: true },
      { addr: tlsAddr, tls: { ...clientTls(), ca: file("other-ca.crt") } },
      { addr: tlsAddr, tls: { ...clientTls(), servername: "not-this-server.example" } },
    ] satisfies RedisCacheOptions[]) {
      await using(
        () => createRedisCache(options),
        (cache) => assert.rejects(cache.ping(), unavailable(/TLS/)),
      );
    }
  });

  it("fails without a client certificate, and in plain text, against a TLS server that wants one", async () => {
    for (const options of [
      { addr: tlsAddr, tls: { ca: file("ca.crt") } },
      { addr: tlsAddr, timeoutMs: 500 },
    ] satisfies RedisCacheOptions[]) {
      await using(
        () => createRedisCache(options),
        (cache) => assert.rejects(cache.ping(), unavailable()),
      );
    }
  });
});

describe("redis configuration", () => {
  it("is selected by its JSON spec, by addr or url", () => {
    const domain = uniqueDomain("redis");
    const spec = { name: "redis", addr, prefix, password: "", timeoutMs: 2000, connectTimeoutMs: 2000 };
    return using(
      () => createCache(spec),
      (one) =>
        using(
          () => createCache({ name: "redis", url: `redis://${addr}/0`, prefix }),
          async (other) => {
            assert.equal(one.name, "redis");
            await one.set(domain, "k", { value: "shared" });
            assert.deepEqual(await other.get(domain, "k"), { value: "shared" });
            await other.ping();
          },
        ),
    );
  });

  it("refuses bad options, naming them, and never echoes a password", async () => {
    const bad: [Record<string, unknown>, string][] = [
      [{ addr: "host:port" }, "addr"],
      [{ addr: "127.0.0.1:70000" }, "addr"],
      [{ addr: "::1" }, "addr"],
      [{ url: "http://127.0.0.1:6379" }, "url"],
      [{ url: "redis://u:secret-pw@127.0.0.1:6379?tls=1" }, "url"],
      [{ url: "redis://u:secret-pw@127.0.0.1:6379/zero" }, "url"],
      [{ url: "redis://u:secret-pw@127.0.0.1:6379", addr }, "addr"],
      [{ url: "redis://127.0.0.1:6379", db: 1 }, "db"],
      [{ url: "rediss://127.0.0.1:6379", tls: false }, "tls"],
      [{ addr, user: "u" }, "password"],
      [{ addr, user: "u", password: "" }, "password"],
      [{ addr, db: -1 }, "db"],
      [{ addr, db: 1.5 }, "db"],
      [{ addr, timeoutMs: 0 }, "timeoutMs"],
      [{ addr, connectTimeoutMs: 2 ** 40 }, "connectTimeoutMs"],
      [{ addr, tls: { ca: "/nonexistent/ca.pem" } }, "tls.ca"],
      [{ addr, tls: { cert: "/etc/hostname" } }, "tls.key"],
      [{ addr, tls: { rejectUnauthorized: "no" } }, "tls.rejectUnauthorized"],
      [{ addr, tls: { verify: true } }, "tls.verify"],
    ];
    for (const [options, option] of bad) {
      await assert.rejects(createCache({ name: "redis", ...options }), (error) => {
        assert.ok(error instanceof ProviderConfigError, `${JSON.stringify(options)}: ${error}`);
        assert.equal(error.option, option, JSON.stringify(options));
        assert.ok(!error.message.includes("secret-pw"), error.message);
        return true;
      });
    }
    const registry: [Record<string, unknown>, string][] = [
      [{ db: "1" }, "db"],
      [{ tls: "yes" }, "tls"],
      [{ prefix: "" }, "prefix"],
      [{ maxValueBytes: 1 }, "maxValueBytes"],
    ];
    for (const [options, option] of registry) {
      await assert.rejects(createCache({ name: "redis", addr, ...options }), (error) => {
        assert.ok(error instanceof ProviderConfigError, `${JSON.stringify(options)}: ${error}`);
        assert.equal(error.option, option);
        return true;
      });
    }
  });
});
