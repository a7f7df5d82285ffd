/**
 * Storage.searchEntities: exact-type filters on nested paths, sorting with
 * stable tie-breaks, and paging; and injection-shaped paths and values, in
 * entity and event searches alike, read as data.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { EntityQuery, FilterTerm, JsonObject, SortSpec, Storage } from "../types.js";
import { put, type StorageFactory, uniqueDomain, using } from "./helpers.js";

// Chosen so every filter below matches a different, known set of keys.
const people: Record<string, JsonObject> = {
  a: { name: "Ann", age: 30, code: "1", active: true, nick: null, address: { city: "Oslo" } },
  b: { name: "Bob", age: 25, code: 1, active: false, address: { city: "Rome" } },
  c: { name: "Cid", age: 30, code: true, active: true, nick: "cc", address: { city: "Oslo" } },
  d: { name: "Dee", age: 41.5, code: 0, active: "true", nick: "null", "address.city": "Oslo" },
  e: { name: "Eve", age: 25, code: "", active: 1, address: { city: "Lima", zip: "15001" } },
};

async function seed(storage: Storage): Promise<{ domain: string; type: string }> {
  const domain = uniqueDomain("search");
  for (const [key, values] of Object.entries(people)) {
    await put(storage, { domain, type: "person", key }, 0, values);
  }
  // Same domain, other type; and same type, other domain: neither may leak in.
  await put(storage, { domain, type: "robot", key: "a" }, 0, { name: "Ann", age: 30 });
  await put(storage, { domain: `${domain}-other`, type: "person", key: "a" }, 0, { name: "Ann", age: 30 });
  return { domain, type: "person" };
}

async function keys(
  storage: Storage,
  scope: { domain: string; type: string },
  filter: FilterTerm[],
  more: { sort?: SortSpec; limit?: number; offset?: number } = {},
): Promise<string[]> {
  const query: EntityQuery = { ...scope, filter, limit: more.limit ?? 100, offset: more.offset ?? 0 };
  if (more.sort !== undefined) {
    query.sort = more.sort;
  }
  return (await storage.searchEntities(query)).map((entity) => entity.key);
}

/**
 * Member names the gateway lets through to storage (dot paths without double quotes,
 * backslashes or control characters), chosen to break a query that splices
 * them in as text: SQL quotes, comments and statement ends, JSON path syntax,
 * placeholders, wildcards, array-literal punctuation.
 */
const oddNames = [
  "'; DROP TABLE x; --",
  "'",
  "' OR '1'='1",
  "*",
  "**",
  "[0]",
  "$",
  "$x",
  "$.a",
  "a b",
  "a.b",
  "%",
  "_",
  "?",
  "$1",
  ":p",
  "@x",
  "`x`",
  // Not a name that starts with "-": MariaDB's JSON paths cannot address such a member at all (`$."-a"` finds
  // nothing, whatever the quoting), so the MySQL adapter would match nothing there.
  "a--",
  "/*",
  ";",
  "{",
  "}",
  ",",
  "()",
  "NULL",
  "null",
  "é",
  "🦄",
];

/** Values whose member names are the odd names (each holding its position, from 1), and more. */
const odd: JsonObject = {
  ...Object.fromEntries(oddNames.map((name, i) => [name, i + 1])),
  a: { b: 7 },
};
const injection = "'; DROP TABLE x; --";

/** Entity search filters by exact JSON type, follows nested paths, sorts with tie-breaks and pages. */
export function storageSearchGroup(factory: StorageFactory): void {
  describe("storage: entity search", () => {
    it("returns the domain and type's entities, ordered by key, with values and versions", () =>
      using(factory, async (storage) => {
        const scope = await seed(storage);
        assert.deepEqual(await keys(storage, scope, []), ["a", "b", "c", "d", "e"]);
        const [first] = await storage.searchEntities({ ...scope, filter: [], limit: 1, offset: 0 });
        assert.deepEqual(first, { ...scope, key: "a", values: people.a, version: 1 });
      }));

    it("matches strings, numbers and booleans by exact type", () =>
      using(factory, async (storage) => {
        const scope = await seed(storage);
        assert.deepEqual(await keys(storage, scope, [{ path: ["code"], value: "1" }]), ["a"]);
        assert.deepEqual(await keys(storage, scope, [{ path: ["code"], value: 1 }]), ["b"]);
        assert.deepEqual(await keys(storage, scope, [{ path: ["code"], value: true }]), ["c"]);
        assert.deepEqual(await keys(storage, scope, [{ path: ["code"], value: 0 }]), ["d"]);
        assert.deepEqual(await keys(storage, scope, [{ path: ["code"], value: "" }]), ["e"]);
        assert.deepEqual(await keys(storage, scope, [{ path: ["code"], value: false }]), []);
        assert.deepEqual(await keys(storage, scope, [{ path: ["active"], value: true }]), ["a", "c"]);
        assert.deepEqual(await keys(storage, scope, [{ path: ["active"], value: "true" }]), ["d"]);
        assert.deepEqual(await keys(storage, scope, [{ path: ["active"], value: 1 }]), ["e"]);
        assert.deepEqual(await keys(storage, scope, [{ path: ["age"], value: 41.5 }]), ["d"]);
      }));

    it("matches null only where the value is JSON null, not where it is missing", () =>
      using(factory, async (storage) => {
        const scope = await seed(storage);
        assert.deepEqual(await keys(storage, scope, [{ path: ["nick"], value: null }]), ["a"]);
        assert.deepEqual(await keys(storage, scope, [{ path: ["nick"], value: "null" }]), ["d"]);
        assert.deepEqual(await keys(storage, scope, [{ path: ["missing"], value: null }]), []);
      }));

    it("follows nested paths, and reads a dotted name as one segment", () =>
      using(factory, async (storage) => {
        const scope = await seed(storage);
        assert.deepEqual(await keys(storage, scope, [{ path: ["address", "city"], value: "Oslo" }]), ["a", "c"]);
        assert.deepEqual(await keys(storage, scope, [{ path: ["address.city"], value: "Oslo" }]), ["d"]);
        assert.deepEqual(await keys(storage, scope, [{ path: ["address", "zip"], value: "15001" }]), ["e"]);
        assert.deepEqual(await keys(storage, scope, [{ path: ["address", "city", "x"], value: "Oslo" }]), []);
      }));

    it("requires every term of a filter to match", () =>
      using(factory, async (storage) => {
        const scope = await seed(storage);
        const oslo = { path: ["address", "city"], value: "Oslo" };
        assert.deepEqual(await keys(storage, scope, [oslo, { path: ["age"], value: 30 }]), ["a", "c"]);
        assert.deepEqual(await keys(storage, scope, [oslo, { path: ["name"], value: "Cid" }]), ["c"]);
        assert.deepEqual(await keys(storage, scope, [oslo, { path: ["age"], value: 25 }]), []);
      }));

    it("sorts ascending and descending, breaking ties by key", () =>
      using(factory, async (storage) => {
        const scope = await seed(storage);
        assert.deepEqual(await keys(storage, scope, [], { sort: { path: ["age"], desc: false } }), [
          "b",
          "e",
          "a",
          "c",
          "d",
        ]);
        assert.deepEqual(await keys(storage, scope, [], { sort: { path: ["age"], desc: true } }), [
          "d",
          "a",
          "c",
          "b",
          "e",
        ]);
        assert.deepEqual(await keys(storage, scope, [], { sort: { path: ["name"], desc: true } }), [
          "e",
          "d",
          "c",
          "b",
          "a",
        ]);
        const oslo = [{ path: ["address", "city"], value: "Oslo" }];
        assert.deepEqual(await keys(storage, scope, oslo, { sort: { path: ["name"], desc: true } }), ["c", "a"]);
      }));

    it("pages with limit and offset over the sorted result", () =>
      using(factory, async (storage) => {
        const scope = await seed(storage);
        const sort = { path: ["age"], desc: false };
        assert.deepEqual(await keys(storage, scope, [], { sort, limit: 2, offset: 0 }), ["b", "e"]);
        assert.deepEqual(await keys(storage, scope, [], { sort, limit: 2, offset: 2 }), ["a", "c"]);
        assert.deepEqual(await keys(storage, scope, [], { sort, limit: 2, offset: 4 }), ["d"]);
        assert.deepEqual(await keys(storage, scope, [], { sort, limit: 2, offset: 6 }), []);
        assert.deepEqual(await keys(storage, scope, [], { limit: 3, offset: 1 }), ["b", "c", "d"]);
      }));

    it("finds nothing in an unknown domain or type", () =>
      using(factory, async (storage) => {
        const scope = await seed(storage);
        assert.deepEqual(await keys(storage, { domain: scope.domain, type: "nobody" }, []), []);
        assert.deepEqual(await keys(storage, { domain: uniqueDomain("search"), type: "person" }, []), []);
      }));

    it("reads injection-shaped path segments as literal member names and values as data", () =>
      using(factory, async (storage) => {
        const domain = uniqueDomain("inject");
        const scope = { domain, type: "p" };
        const stored: Record<string, JsonObject> = {
          odd,
          more: { [injection]: 1000, "'": -1 },
          text: { name: "x' OR '1'='1" },
          list: { list: [7, { b: 8 }], "0": "zero" },
          map: { list: { "0": 7, "1": { b: 8 } } },
        };
        for (const [key, values] of Object.entries(stored)) await put(storage, { ...scope, key }, 0, values);
        const match = (path: string[], value: string | number | null, more = {}) =>
          keys(storage, scope, [{ path, value }], more);

        for (const [i, name] of oddNames.entries()) {
          assert.deepEqual(await match([name], i + 1), ["odd"], name);
          assert.deepEqual(await match([name], String(i + 1)), [], `${name}: the type still counts`);
        }
        assert.deepEqual(await match([injection], 1000), ["more"]);
        assert.deepEqual(await match(["a", "b"], 7), ["odd"]);
        assert.deepEqual(await match(["a.b"], 7), [], "a dotted name is one member, not a path");
        assert.deepEqual(await match(["a.b"], oddNames.indexOf("a.b") + 1), ["odd"]);
        assert.deepEqual(await match(["name"], "x' OR '1'='1"), ["text"]);
        assert.deepEqual(await match(["name"], "' OR '1'='1"), [], "a value is compared, never evaluated");
        assert.deepEqual(await match(["name"], "x' OR '1'='1' --"), []);
        assert.deepEqual(await match(["list", "0"], 7), ["map"], "an array has no member named 0");
        assert.deepEqual(await match(["list", "1", "b"], 8), ["map"]);
        assert.deepEqual(await match(["0"], "zero"), ["list"]);
        assert.deepEqual(await match(["*"], null), [], "a wildcard name matches nothing by itself");

        // Sorting by such a path orders by that member: missing first ascending, last descending.
        const sorted = (path: string[], desc: boolean) => keys(storage, scope, [], { sort: { path, desc } });
        assert.deepEqual(await sorted([injection], false), ["list", "map", "text", "odd", "more"]);
        assert.deepEqual(await sorted([injection], true), ["more", "odd", "list", "map", "text"]);
        assert.deepEqual(await sorted(["'"], false), ["list", "map", "text", "more", "odd"]);
        assert.deepEqual(await sorted(["'"], true), ["odd", "more", "list", "map", "text"]);
        assert.deepEqual(await match([injection], 1, { sort: { path: ["' OR '1'='1"], desc: true } }), ["odd"]);
        assert.deepEqual(
          await sorted(["list", "0"], true),
          ["map", "list", "more", "odd", "text"],
          "members, not indexes",
        );

        // Event search takes the same paths the same way.
        const events = async (filter: FilterTerm[], sort?: SortSpec) =>
          (await storage.searchEvents({ ...scope, filter, limit: 100, offset: 0, ...(sort ? { sort } : {}) })).map(
            (e) => e.key,
          );
        assert.deepEqual(await events([{ path: [injection], value: 1 }]), ["odd"]);
        assert.deepEqual(await events([{ path: ["name"], value: "' OR '1'='1" }]), []);
        // Ties (no such member) keep position order: the order they were written in.
        assert.deepEqual(await events([], { path: [injection], desc: true }), ["more", "odd", "text", "list", "map"]);

        // Nothing was dropped or changed, and storage still takes writes.
        assert.deepEqual(await keys(storage, scope, []), ["list", "map", "more", "odd", "text"]);
        for (const [key, values] of Object.entries(stored)) {
          const entity = await storage.getEntity({ ...scope, key });
          assert.deepEqual(entity?.values, values, key);
          assert.equal(entity?.version, 1, key);
        }
        await put(storage, { ...scope, key: "odd" }, 1, { ...odd, after: true });
        assert.equal(
          (await storage.searchEvents({ ...scope, key: "odd", filter: [], limit: 10, offset: 0 })).length,
          2,
        );
      }));
  });
}
