import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { canonical, compare, equal, formatValue, RegoObject, RegoSet, toJson } from "../src/value.js";

describe("value order (OPA's)", () => {
  it("orders types null < boolean < number < string < array < object < set", () => {
    const sorted = [new RegoSet([1]), {}, [], "a", 1, true, false, null].sort(compare);
    assert.deepEqual(
      sorted.map((v) => formatValue(v)),
      ["null", "false", "true", "1", '"a"', "[]", "{}", "{1}"],
    );
  });

  it("orders strings by code point, as Go does", () => {
    // U+FF5E sorts before an astral character in UTF-8, though not in UTF-16.
    assert.ok(compare("\uff5e", "😀") < 0);
    assert.ok(compare("a", "b") < 0);
    assert.ok(compare("ab", "a") > 0);
  });

  it("orders objects by sorted keys, then values, then size", () => {
    assert.ok(compare({ a: 1 }, { b: 0 }) < 0);
    assert.ok(compare({ a: 1 }, { a: 2 }) < 0);
    assert.ok(compare({ a: 1 }, { a: 1, b: 1 }) < 0);
  });
});

describe("equality", () => {
  it("plain objects and RegoObjects with the same entries are equal", () => {
    const r = new RegoObject();
    r.set("a", [1, 2]);
    assert.ok(equal({ a: [1, 2] }, r));
    assert.ok(!equal({ a: [1, 2], b: 1 }, r));
    assert.equal(canonical({ a: [1, 2] }), canonical(r));
  });

  it("sets with composite members", () => {
    assert.ok(equal(new RegoSet([[1], { a: 1 }]), new RegoSet([{ a: 1 }, [1]])));
    assert.ok(new RegoSet([{ a: 1 }]).has({ a: 1 }));
    assert.ok(!new RegoSet([1]).has("1"));
  });

  it("objects with non-string keys", () => {
    const r = new RegoObject();
    r.set(1, "x");
    r.set([1, 2], "y");
    assert.equal(r.get(1), "x");
    assert.equal(r.get("1"), undefined);
    assert.equal(r.get([1, 2]), "y");
    assert.deepEqual(toJson(r), { "1": "x", "[1,2]": "y" });
  });
});
