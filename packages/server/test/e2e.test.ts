import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { EventOperation } from "@stategate/api";
import type { StategateClient } from "@stategate/sdk-node";
import { Code, ConnectError, expiresIn } from "@stategate/sdk-node";
import type { TestGateway } from "./helpers.js";
import { protocols, startTestGateway, take, unique } from "./helpers.js";

/** Asserts that a call fails with `code`. */
async function rejectsWith(call: Promise<unknown>, code: Code): Promise<ConnectError> {
  try {
    await call;
  } catch (err) {
    const e = ConnectError.from(err);
    assert.equal(Code[e.code], Code[code], e.message);
    return e;
  }
  assert.fail(`expected ${Code[code]}, but the call succeeded`);
}

let tg: TestGateway;
before(async () => {
  tg = await startTestGateway();
});
after(async () => {
  await tg.close();
});

for (const { name, options } of protocols) {
  describe(`every method over ${name}`, () => {
    let client: StategateClient;
    const domain = unique("e2e");
    const ref = { domain, type: "user", key: "ada" };
    before(() => {
      client = tg.client(options);
    });

    it("EntityService: Set, Edit, Get, Search, Revert, Del", async () => {
      const set = await client.entity.set({
        ...ref,
        values: { name: "Ada", langs: ["en", "fr"], address: { city: "Lyon" } },
      });
      assert.equal(set.event?.version, 1n);
      assert.equal(set.event?.operation, EventOperation.SET);
      assert.equal(set.event?.method, "/stategate.v1.EntityService/Set");
      assert.deepEqual(set.event?.claims, {});
      assert.ok((set.event?.time ?? 0n) > 1_700_000_000_000_000_000n);

      const edit = await client.entity.edit({ ...ref, values: { role: "admin" }, expectedVersion: 1n });
      assert.equal(edit.event?.version, 2n);
      assert.deepEqual(edit.event?.entity?.values, {
        name: "Ada",
        langs: ["en", "fr"],
        address: { city: "Lyon" },
        role: "admin",
      });

      const got = await client.entity.get(ref);
      assert.equal(got.entity?.version, 2n);
      assert.deepEqual(got.entity?.values, edit.event?.entity?.values);

      await client.entity.set({ ...ref, key: "bob", values: { name: "Bob", address: { city: "Paris" } } });
      const found = await client.entity.search({
        domain,
        type: "user",
        filter: JSON.stringify({ "address.city": "Lyon" }),
      });
      assert.deepEqual(
        found.entities.map((e) => e.key),
        ["ada"],
      );
      const sorted = await client.entity.search({
        domain,
        type: "user",
        sort: { field: "name", desc: true },
        limit: 1,
      });
      assert.deepEqual(
        sorted.entities.map((e) => e.key),
        ["bob"],
      );

      const reverted = await client.entity.revert({ ...ref, id: set.event?.id ?? "" });
      assert.equal(reverted.event?.version, 3n);
      assert.equal(reverted.event?.operation, EventOperation.REVERT);
      assert.deepEqual(reverted.event?.entity?.values, set.event?.entity?.values);

      const del = await client.entity.del(ref);
      assert.equal(del.event?.operation, EventOperation.DELETE);
      assert.equal(del.event?.version, 4n);
      assert.deepEqual(
        del.event?.entity?.values,
        set.event?.entity?.values,
        "a delete records the state before deletion",
      );
      await rejectsWith(client.entity.get(ref), Code.NotFound);
      await rejectsWith(client.entity.edit({ ...ref, values: { a: 1 } }), Code.NotFound);
      await rejectsWith(client.entity.del(ref), Code.NotFound);
    });

    it("EntityService: Edit replaces a nested object instead of merging into it", async () => {
      const nested = { domain: unique("e2e-edit"), type: "user", key: "ada" };
      await client.entity.set({ ...nested, values: { name: "Ada", address: { city: "x", street: "Rue 1" } } });
      const edit = await client.entity.edit({ ...nested, values: { address: { zip: "1" } } });
      const expected = { name: "Ada", address: { zip: "1" } };
      assert.deepEqual(
        edit.event?.entity?.values,
        expected,
        "top-level keys merge; the nested object is replaced whole",
      );
      assert.deepEqual((await client.entity.get(nested)).entity?.values, expected);
    });

    it("EntityService: Revert with an event of another domain or type is NOT_FOUND and changes nothing", async () => {
      const here = { domain: unique("e2e-rv"), type: "user", key: "k" };
      const own = await client.entity.set({ ...here, values: { who: "here", n: 1 } });
      await client.entity.edit({ ...here, values: { n: 2 } });
      const otherDomain = await client.entity.set({ ...here, domain: unique("e2e-rv"), values: { who: "domain" } });
      const otherType = await client.entity.set({ ...here, type: "robot", values: { who: "type" } });
      for (const [what, id] of [
        ["another domain", otherDomain.event?.id],
        ["another type", otherType.event?.id],
      ] as const) {
        assert.ok(id, what);
        await rejectsWith(client.entity.revert({ ...here, id }), Code.NotFound);
      }
      const { entity } = await client.entity.get(here);
      assert.equal(entity?.version, 2n, "no version was taken");
      assert.deepEqual(entity?.values, { who: "here", n: 2 });
      const { events } = await client.event.search(here);
      assert.deepEqual(
        events.map((e) => e.version),
        [1n, 2n],
        "no event was written",
      );
      // The same call with the entity's own event does revert: the refusals above were about the event.
      const reverted = await client.entity.revert({ ...here, id: own.event?.id ?? "" });
      assert.deepEqual(reverted.event?.entity?.values, { who: "here", n: 1 });
    });

    it("EventService: Search with a filter, a sort, limit and offset, and a time range", async () => {
      const scope = { domain: unique("e2e-hist"), type: "order" };
      const written = [
        await client.entity.set({ ...scope, key: "o1", values: { status: "new", n: 1 } }),
        await client.entity.edit({ ...scope, key: "o1", values: { status: "paid", n: 2 } }),
        await client.entity.set({ ...scope, key: "o2", values: { status: "new", n: 3 } }),
        await client.entity.edit({ ...scope, key: "o2", values: { status: "paid", n: 4 } }),
        await client.entity.set({ ...scope, key: "o3", values: { status: "new", n: 5 } }),
      ].map((r) => r.event);
      // Noise the search must leave out: same domain, other type.
      await client.entity.set({ ...scope, type: "invoice", key: "o1", values: { status: "paid", n: 9 } });
      const times = written.map((e) => e?.time ?? 0n);
      assert.ok(
        times.every((t, i) => i === 0 || t > (times[i - 1] ?? 0n)),
        "each write has a later time",
      );
      const found = async (more: object) =>
        (await client.event.search({ ...scope, ...more })).events.map((e) => `${e.entity?.key}@${e.version}`);

      assert.deepEqual(await found({}), ["o1@1", "o1@2", "o2@1", "o2@2", "o3@1"], "position order by default");
      assert.deepEqual(await found({ filter: JSON.stringify({ status: "paid" }) }), ["o1@2", "o2@2"]);
      assert.deepEqual(await found({ sort: { field: "n", desc: true } }), ["o3@1", "o2@2", "o2@1", "o1@2", "o1@1"]);
      assert.deepEqual(await found({ sort: { field: "n", desc: true }, limit: 2, offset: 1 }), ["o2@2", "o2@1"]);
      assert.deepEqual(
        await found({ minTime: times[1], maxTime: times[3] }),
        ["o1@2", "o2@1", "o2@2"],
        "bounds included",
      );
      assert.deepEqual(await found({ minTime: (times[4] ?? 0n) + 1n }), [], "nothing after the last write");
      assert.deepEqual(
        await found({
          key: "o2",
          filter: JSON.stringify({ status: "paid" }),
          minTime: times[0],
          maxTime: times[4],
          sort: { field: "n", desc: false },
          limit: 5,
          offset: 0,
        }),
        ["o2@2"],
      );
      assert.deepEqual(
        await found({
          filter: JSON.stringify({ status: "new" }),
          minTime: times[1],
          sort: { field: "n", desc: true },
          limit: 1,
          offset: 1,
        }),
        ["o2@1"],
        "all of them at once: new events after o1's Edit are o3@1 and o2@1, by n descending, the second",
      );
    });

    it("EventService: Search, Get, Stream from a position", async () => {
      const history = await client.event.search({ domain, type: "user", key: "ada" });
      assert.deepEqual(
        history.events.map((e) => e.version),
        [1n, 2n, 3n, 4n],
      );
      const positions = history.events.map((e) => e.position);
      assert.deepEqual(
        [...positions].sort((a, b) => (a < b ? -1 : 1)),
        positions,
        "positions rise",
      );

      const first = history.events[0];
      assert.ok(first);
      const one = await client.event.get({ domain, type: "user", key: "ada", id: first.id });
      assert.equal(one.event?.id, first.id);
      assert.equal(one.event?.time, first.time);
      await rejectsWith(client.event.get({ domain, type: "user", key: "bob", id: first.id }), Code.NotFound);

      const abort = new AbortController();
      const stream = client.event.stream(
        { domain, type: "u*", afterPosition: first.position - 1n },
        { signal: abort.signal },
      );
      const live = client.entity.set({ ...ref, key: "cy", values: { name: "Cy" } });
      const got = await take(stream, 6);
      abort.abort();
      await live;
      const keys = got.map((r) => `${r.event?.entity?.key}@${r.event?.version}`);
      assert.deepEqual(keys, ["ada@1", "ada@2", "bob@1", "ada@3", "ada@4", "cy@1"]);
    });

    it("PeerService: Broadcast reaches a matching Stream", async () => {
      const abort = new AbortController();
      const stream = client.peer.stream({ domain, channel: "chat", type: "*" }, { signal: abort.signal });
      const received = take(stream, 1);
      // Messages are not stored: keep sending until the subscription is live.
      let sent = 0;
      const sender = setInterval(() => {
        sent++;
        client.peer
          .broadcast({ domain, channel: "chat", type: "comment", body: { text: "hi", n: sent } })
          .catch(() => {});
      }, 50);
      try {
        const [first] = await received;
        assert.equal(first?.message?.domain, domain);
        assert.equal(first?.message?.type, "comment");
        assert.equal(first?.message?.body?.text, "hi");
        assert.match(first?.message?.id ?? "", /^[0-9a-f-]{36}$/);
      } finally {
        clearInterval(sender);
        abort.abort();
      }
    });

    it("CacheService: Set, Get, Del", async () => {
      const exp = expiresIn(60_000);
      await client.cache.set({ domain, key: "k", value: { a: [1, "two", null, true] }, exp });
      const got = await client.cache.get({ domain, key: "k" });
      assert.deepEqual(got.value, { a: [1, "two", null, true] });
      assert.equal(got.exp?.getTime(), Number(exp.seconds) * 1000 + Math.floor(exp.nanos / 1e6));
      await client.cache.set({ domain, key: "forever", value: null });
      const forever = await client.cache.get({ domain, key: "forever" });
      assert.equal(forever.value, null);
      assert.equal(forever.exp, undefined);
      for (const value of [0, false, "", [], "héllo ✓", 1.5e300, -0.25]) {
        await client.cache.set({ domain, key: "kinds", value, exp: new Date(Date.now() + 60_000) });
        assert.deepEqual((await client.cache.get({ domain, key: "kinds" })).value, value);
      }
      await client.cache.del({ domain, key: "k" });
      await rejectsWith(client.cache.get({ domain, key: "k" }), Code.NotFound);
    });

    it("MutexService: Lock, Unlock, withLock", async () => {
      const { token } = await client.mutex.lock({ domain, key: "m", exp: expiresIn(10_000) });
      assert.ok(token.length >= 16);
      await rejectsWith(client.mutex.lock({ domain, key: "m", exp: expiresIn(10_000) }), Code.AlreadyExists);
      await rejectsWith(client.mutex.unlock({ domain, key: "m", token: "not-the-token" }), Code.FailedPrecondition);
      await client.mutex.unlock({ domain, key: "m", token });
      const result = await client.withLock(domain, "m", 10_000, async () => {
        await rejectsWith(client.mutex.lock({ domain, key: "m", exp: expiresIn(10_000) }), Code.AlreadyExists);
        return 42;
      });
      assert.equal(result, 42);
      const again = await client.mutex.lock({ domain, key: "m", exp: expiresIn(10_000) });
      await client.mutex.unlock({ domain, key: "m", token: again.token });
    });
  });
}

describe("search text shaped like SQL injection", () => {
  it("a filter key `'; DROP TABLE x; --` and a sort field with a quote get a clean answer, and data stays intact", async () => {
    const client = tg.client({ protocol: "grpc" });
    const scope = { domain: unique("inject"), type: "t" };
    const injection = "'; DROP TABLE x; --";
    await client.entity.set({ ...scope, key: "a", values: { [injection]: 1, "it's": 2, name: "a" } });
    await client.entity.set({ ...scope, key: "b", values: { [injection]: 2, "it's": 1, name: "x' OR '1'='1" } });
    await client.entity.edit({ ...scope, key: "b", values: { more: true } });
    const keys = (r: { entities: { key: string }[] }) => r.entities.map((e) => e.key);

    const filtered = await client.entity.search({ ...scope, filter: JSON.stringify({ [injection]: 1 }) });
    assert.deepEqual(keys(filtered), ["a"], "the key is a member name, matched as data");
    assert.deepEqual(
      keys(await client.entity.search({ ...scope, filter: JSON.stringify({ name: "' OR '1'='1" }) })),
      [],
      "a value is compared, never evaluated",
    );
    assert.deepEqual(keys(await client.entity.search({ ...scope, sort: { field: "it's", desc: false } })), ["b", "a"]);
    assert.deepEqual(keys(await client.entity.search({ ...scope, sort: { field: injection, desc: true } })), [
      "b",
      "a",
    ]);
    const events = await client.event.search({
      ...scope,
      filter: JSON.stringify({ [injection]: 2 }),
      sort: { field: "it's", desc: true },
    });
    assert.deepEqual(
      events.events.map((e) => `${e.entity?.key}@${e.version}`),
      ["b@1", "b@2"],
      "event search reads them the same way",
    );
    // A double quote cannot be part of a path on every backend: refused before storage, naming the field.
    const refused = await rejectsWith(
      client.entity.search({ ...scope, sort: { field: 'na"me', desc: false } }),
      Code.InvalidArgument,
    );
    assert.match(refused.rawMessage, /^sort: field /);
    await rejectsWith(
      client.entity.search({ ...scope, filter: JSON.stringify({ 'x"); DROP TABLE x; --': 1 }) }),
      Code.InvalidArgument,
    );

    // Everything is still there and storage still takes writes.
    assert.deepEqual(keys(await client.entity.search(scope)), ["a", "b"]);
    assert.equal((await client.entity.get({ ...scope, key: "b" })).entity?.version, 2n);
    assert.equal((await client.event.search(scope)).events.length, 3);
    const again = await client.entity.set({ ...scope, key: "c", values: { [injection]: 3 } });
    assert.equal(again.event?.version, 1n);
  });
});
