import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { NodeClient } from "@stategate/sdk-node";
import { Code, ConnectError } from "@stategate/sdk-node";
import type { TestGateway } from "./helpers.js";
import { startTestGateway, unique } from "./helpers.js";

let tg: TestGateway;
before(async () => {
  tg = await startTestGateway();
});
after(async () => {
  await tg.close();
});

/**
 * Writes `ref` at versions 1 and 2, then sends 20 Edits at once: the even ones
 * (values `fresh<i>`) without an expected version, the odd ones (values
 * `stale<i>`) expecting `expectedVersion`. Settles with each Edit's outcome, in order.
 */
async function raceEdits(
  client: NodeClient,
  ref: { domain: string; type: string; key: string },
  expectedVersion: bigint,
) {
  await client.entity.set({ ...ref, values: { base: true } });
  await client.entity.edit({ ...ref, values: { second: true }, expectedVersion: 1n });
  return Promise.allSettled(
    Array.from({ length: 20 }, (_, i) =>
      i % 2 === 0
        ? client.entity.edit({ ...ref, values: { [`fresh${i}`]: i } })
        : client.entity.edit({ ...ref, values: { [`stale${i}`]: i }, expectedVersion }),
    ),
  );
}

for (const protocol of ["grpc", "connect"] as const) {
  describe(`versions and conflicts over ${protocol}`, () => {
    it("20 concurrent Edits, half with a stale expected version", async () => {
      const client = tg.client({ protocol, binary: protocol === "grpc" });
      const ref = { domain: unique("ver"), type: "counter", key: "c1" };
      // The odd Edits expect version 2, the version when they are sent: they
      // race the even ones (no expected version) on the version check, and at
      // most the first of them to commit can still find version 2.
      const results = await raceEdits(client, ref, 2n);

      const ok = results.flatMap((r, i) => (r.status === "fulfilled" ? [i] : []));
      const rejected = results.flatMap((r, i) =>
        r.status === "rejected" ? [{ i, err: ConnectError.from(r.reason) }] : [],
      );
      const fresh = ok.filter((i) => i % 2 === 0);
      const versioned = ok.filter((i) => i % 2 === 1);
      assert.deepEqual(fresh, [0, 2, 4, 6, 8, 10, 12, 14, 16, 18], "every Edit without an expected version succeeds");
      assert.ok(versioned.length <= 1, `at most one Edit expecting version 2 wins, got ${versioned.join(", ")}`);
      assert.ok(rejected.length >= 9, "the stale ones are refused");
      for (const { i, err } of rejected) assert.equal(Code[err.code], "Aborted", `edit ${i}: ${err.message}`);
      for (const i of versioned) {
        const r = results[i] as PromiseFulfilledResult<{ event?: { version: bigint } }>;
        assert.equal(r.value.event?.version, 3n, "the winner wrote version 3, right after the version it expected");
      }

      const { entity } = await client.entity.get(ref);
      const values = entity?.values ?? {};
      for (const i of ok) {
        assert.equal(values[i % 2 === 0 ? `fresh${i}` : `stale${i}`], i, `edit ${i} is in the final state`);
      }
      for (const { i } of rejected) assert.equal(values[`stale${i}`], undefined, `rejected edit ${i} left no trace`);

      const { events } = await client.event.search({ ...ref, limit: 1000 });
      assert.equal(events.length, 2 + ok.length, "one event per OK mutation (Set, first Edit, and the OK Edits)");
      assert.deepEqual(
        events.map((e) => e.version),
        events.map((_, i) => BigInt(i + 1)),
        "versions are 1..n with no gap",
      );
      for (const e of events) {
        for (const { i } of rejected)
          assert.equal(e.entity?.values?.[`stale${i}`], undefined, "no event holds a rejected edit");
      }
      const last = events.at(-1);
      assert.equal(last?.version, entity?.version);
      assert.deepEqual(last?.entity?.values, entity?.values, "the last event equals Get");
    });

    it("20 concurrent Edits, half expecting version 1 after version 2 exists: exactly 10 OK and 10 ABORTED", async () => {
      const client = tg.client({ protocol, binary: protocol === "grpc" });
      const ref = { domain: unique("ver-det"), type: "counter", key: "c1" };
      // Version 2 exists before any of these is sent: every Edit expecting 1 is stale whatever the order.
      const results = await raceEdits(client, ref, 1n);

      const ok = results.flatMap((r, i) => (r.status === "fulfilled" ? [i] : []));
      const aborted = results.flatMap((r, i) =>
        r.status === "rejected" && ConnectError.from(r.reason).code === Code.Aborted ? [i] : [],
      );
      assert.equal(ok.length, 10, "exactly 10 OK");
      assert.equal(aborted.length, 10, "exactly 10 ABORTED");
      assert.deepEqual(ok, [0, 2, 4, 6, 8, 10, 12, 14, 16, 18], "the OK ones are those without an expected version");
      assert.deepEqual(aborted, [1, 3, 5, 7, 9, 11, 13, 15, 17, 19], "the ABORTED ones are the stale ones");
      const okVersions = ok.map((i) => (results[i] as PromiseFulfilledResult<{ event?: { version: bigint } }>).value);
      assert.deepEqual(
        okVersions.map((r) => r.event?.version).sort((a, b) => Number((a ?? 0n) - (b ?? 0n))),
        Array.from({ length: 10 }, (_, i) => BigInt(i + 3)),
        "the OK Edits wrote versions 3 to 12, one each",
      );

      const { entity } = await client.entity.get(ref);
      const values = entity?.values ?? {};
      for (const i of ok) assert.equal(values[`fresh${i}`], i, `edit ${i} is in the final state`);
      for (const i of aborted) assert.equal(values[`stale${i}`], undefined, `stale edit ${i} left no trace`);
      assert.deepEqual(Object.keys(values).sort(), ["base", "second", ...ok.map((i) => `fresh${i}`)].sort());

      const { events } = await client.event.search({ ...ref, limit: 1000 });
      assert.equal(events.length, 12, "1 Set + 1 Edit + 10 OK Edits");
      assert.deepEqual(
        events.map((e) => e.version),
        Array.from({ length: 12 }, (_, i) => BigInt(i + 1)),
        "versions are 1..12 with no gap",
      );
      for (const e of events) {
        for (const i of aborted)
          assert.equal(e.entity?.values?.[`stale${i}`], undefined, "no event holds a stale edit");
      }
      const last = events.at(-1);
      assert.equal(entity?.version, 12n);
      assert.equal(last?.version, entity?.version);
      assert.deepEqual(last?.entity?.values, entity?.values, "the last event equals Get");
    });

    it("an expected version that matches wins exactly once among racers", async () => {
      const client = tg.client({ protocol });
      const ref = { domain: unique("race"), type: "doc", key: "d" };
      await client.entity.set({ ...ref, values: { n: 0 } });
      const results = await Promise.allSettled(
        Array.from({ length: 10 }, (_, i) => client.entity.set({ ...ref, values: { n: i + 1 }, expectedVersion: 1n })),
      );
      const wins = results.filter((r) => r.status === "fulfilled");
      assert.equal(wins.length, 1);
      for (const r of results) {
        if (r.status === "rejected") assert.equal(ConnectError.from(r.reason).code, Code.Aborted);
      }
      const { events } = await client.event.search({ ...ref });
      assert.equal(events.length, 2);
    });

    it("50 concurrent Sets without an expected version all apply, each at its own version, the last one kept", async () => {
      const client = tg.client({ protocol });
      const ref = { domain: unique("blind"), type: "doc", key: "d" };
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) => client.entity.set({ ...ref, values: { n: i } })),
      );
      const versions = results.map((r) => Number(r.event?.version)).sort((a, b) => a - b);
      assert.deepEqual(
        versions,
        Array.from({ length: 50 }, (_, i) => i + 1),
        "no Set lost a race, none was refused",
      );
      const last = results.find((r) => r.event?.version === 50n);
      const { entity } = await client.entity.get(ref);
      assert.equal(entity?.version, 50n);
      assert.deepEqual(entity?.values, last?.event?.entity?.values, "the state is the last Set's");
      const { events } = await client.event.search({ ...ref, limit: 100 });
      assert.equal(events.length, 50);
    });

    it("Set with expected version 0 creates only when absent; Del and Revert honour it", async () => {
      const client = tg.client({ protocol });
      const ref = { domain: unique("v0"), type: "doc", key: "d" };
      const created = await client.entity.set({ ...ref, values: { a: 1 }, expectedVersion: 0n });
      assert.equal(created.event?.version, 1n);
      await assert.rejects(
        client.entity.set({ ...ref, values: { a: 2 }, expectedVersion: 0n }),
        (e) => ConnectError.from(e).code === Code.Aborted,
      );
      await assert.rejects(
        client.entity.del({ ...ref, expectedVersion: 5n }),
        (e) => ConnectError.from(e).code === Code.Aborted,
      );
      const deleted = await client.entity.del({ ...ref, expectedVersion: 1n });
      assert.equal(deleted.event?.version, 2n);
      await assert.rejects(
        client.entity.revert({ ...ref, id: created.event?.id ?? "", expectedVersion: 0n }),
        (e) => ConnectError.from(e).code === Code.Aborted,
        "a deleted entity is at its delete event's version, not 0",
      );
      const restored = await client.entity.revert({ ...ref, id: created.event?.id ?? "", expectedVersion: 2n });
      assert.equal(restored.event?.version, 3n);
      const { entity } = await client.entity.get(ref);
      assert.equal(entity?.version, 3n);
      assert.deepEqual(entity?.values, { a: 1 });
      const recreated = await client.entity.del(ref).then(() => client.entity.set({ ...ref, values: { b: 2 } }));
      assert.equal(recreated.event?.version, 5n, "versions keep rising across delete and re-create");
    });

    it("Revert refuses an event of another entity and changes nothing", async () => {
      const client = tg.client({ protocol });
      const domain = unique("rv");
      const a = await client.entity.set({ domain, type: "doc", key: "a", values: { who: "a" } });
      await client.entity.set({ domain, type: "doc", key: "b", values: { who: "b" } });
      await assert.rejects(
        client.entity.revert({ domain, type: "doc", key: "b", id: a.event?.id ?? "" }),
        (e) => ConnectError.from(e).code === Code.NotFound,
      );
      const { entity } = await client.entity.get({ domain, type: "doc", key: "b" });
      assert.equal(entity?.version, 1n);
      assert.deepEqual(entity?.values, { who: "b" });
    });
  });
}
