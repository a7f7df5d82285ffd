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
