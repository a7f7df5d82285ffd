import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { policy, q, value } from "./helpers.js";

describe("assignment and unification", () => {
  it(":= assigns, also patterns", () => {
    assert.equal(q("x := 1 + 2"), 3);
    assert.equal(q("[a, x] := [1, 2]"), 2);
    assert.equal(q('{"k": x} := {"k": 5}'), 5);
  });

  it("a pattern that does not match fails", () => {
    assert.equal(q("[a, x] := [1, 2, 3]"), undefined);
    assert.equal(q('{"k": x} := {"k": 5, "j": 6}'), undefined);
    assert.equal(q("[1, x] := [2, 3]"), undefined);
  });

  it("= binds on either side, or compares", () => {
    assert.equal(q("x = 4"), 4);
    assert.equal(q("4 = x"), 4);
    assert.equal(q("[x, 2] = [1, 2]"), 1);
    assert.deepEqual(policy("").query("[1, y] = [x, 2]"), [{ x: 1, y: 2 }]);
    assert.deepEqual(policy("").query("1 = 1"), [{}]);
    assert.deepEqual(policy("").query("1 = 2"), []);
  });

  it("a variable seen twice in a pattern must match the same value", () => {
    assert.equal(q("[x, x] = [1, 1]"), 1);
    assert.equal(q("[x, x] = [1, 2]"), undefined);
  });

  it("= binds through iteration of the other side", () => {
    const rows = policy("").query("x = input.xs[_]", { input: { xs: [1, 2] } });
    assert.deepEqual(
      rows.map((r) => r.x),
      [1, 2],
    );
  });

  it("body order does not matter for binding", () => {
    assert.equal(value("p := x if { x > 1; x = 5 }"), 5);
    assert.equal(value("p := y if { y == x + 1; x = 1; y = 2 }"), 2);
  });
});

describe("comparison and arithmetic", () => {
  it("compares within and across types in OPA's order", () => {
    assert.deepEqual(q("x := [1 < 2, 2 <= 2, 3 > 4, 3 >= 3, 1 == 1.0, 1 != 2]"), [true, true, false, true, true, true]);
    assert.deepEqual(q('x := ["a" < "b", "B" < "a", null < false, false < 0, 0 < "", "" < [], [] < {}, {} < set()]'), [
      true,
      true,
      true,
      true,
      true,
      true,
      true,
      true,
    ]);
    assert.deepEqual(q("x := [[1, 2] < [1, 3], [1] < [1, 0], {1, 2} == {2, 1}]"), [true, true, true]);
  });

  it("a false comparison fails the expression", () => {
    assert.equal(value("p if 1 > 2"), undefined);
  });

  it("arithmetic with precedence", () => {
    assert.equal(q("x := 1 + 2 * 3 - 4 / 2"), 5);
    assert.equal(q("x := (1 + 2) * 3"), 9);
    assert.equal(q("x := 7 % 3"), 1);
    assert.equal(q("x := -7 % 3"), -1);
    assert.equal(q("x := 10 / 4"), 2.5);
    assert.equal(q("x := -(2 + 3)"), -5);
    assert.equal(q("y := 3; x := -y"), -3);
    assert.equal(q("x := 2 - -1"), 3);
  });

  it("division by zero and arithmetic on non-numbers are undefined", () => {
    assert.equal(q("x := 1 / 0"), undefined);
    assert.equal(q("x := 1 % 0"), undefined);
    assert.equal(q('x := 1 + "a"'), undefined);
    assert.equal(q("x := 1.5 % 1"), undefined);
  });

  it("comparison results can be assigned", () => {
    assert.equal(q("x := 1 == 2"), false);
    assert.equal(q("x := 3 in [1, 2]"), false);
  });
});

describe("sets and set operators", () => {
  it("literals, empty set, and order", () => {
    assert.deepEqual(q("x := {3, 1, 2, 1}"), [1, 2, 3]);
    assert.deepEqual(q("x := set()"), []);
    assert.deepEqual(q("x := {}"), {});
    assert.deepEqual(q('x := {"b", 1, null, [1], true}'), [null, true, 1, "b", [1]]);
  });

  it("| & - are union, intersection, difference", () => {
    assert.deepEqual(q("x := {1, 2} | {2, 3}"), [1, 2, 3]);
    assert.deepEqual(q("x := {1, 2} & {2, 3}"), [2]);
    assert.deepEqual(q("x := {1, 2} - {2, 3}"), [1]);
  });

  it("sets of composite values compare by value", () => {
    assert.equal(q('x := {[1, 2], {"a": 1}} == {{"a": 1}, [1, 2]}'), true);
    assert.equal(q('s := {{"a": [1]}}; x := {"a": [1]} in s'), true);
  });
});

describe("not", () => {
  it("negates an expression, undefined counting as false", () => {
    assert.equal(value("p if not input.admin", "p", { input: {} }), true);
    assert.equal(value("p if not input.admin", "p", { input: { admin: true } }), undefined);
    assert.equal(value("p if not input.admin", "p", { input: { admin: false } }), true);
    assert.equal(value("p if not 1 == 2"), true);
  });

  it("of a rule, a function and membership", () => {
    const body = 'q if false\nf(x) if x == 1\np if { not q; not f(2); not "z" in ["a"] }';
    assert.equal(value(body), true);
  });

  it("with a wildcard: no element matches", () => {
    assert.equal(value('p if not input.roles[_] == "admin"', "p", { input: { roles: ["user"] } }), true);
    assert.equal(value('p if not input.roles[_] == "admin"', "p", { input: { roles: ["user", "admin"] } }), undefined);
  });

  it("with data refs that have a variable key", () => {
    const body = 'p := y if { y := "v0"; not data.test.q[y] }\nq contains x if { data.b[x] = _ }';
    assert.equal(value(body, "p", { data: { b: { v1: "hello" } } }), "v0");
    const body2 = 'p := y if { y := "v1"; not data.test.q[y] }\nq contains x if { data.b[x] = _ }';
    assert.equal(value(body2, "p", { data: { b: { v1: "hello" } } }), undefined);
  });
});

describe("iteration", () => {
  const input = { xs: ["a", "b"], o: { k1: 1, k2: 2 }, nested: [{ ys: [1, 2] }, { ys: [3] }] };

  it("some x in xs, some i, x in xs", () => {
    const p = policy("");
    assert.deepEqual(
      p.query("some x in input.xs", { input }).map((r) => r.x),
      ["a", "b"],
    );
    assert.deepEqual(p.query("some i, x in input.xs", { input }), [
      { i: 0, x: "a" },
      { i: 1, x: "b" },
    ]);
    assert.deepEqual(p.query("some k, v in input.o", { input }), [
      { k: "k1", v: 1 },
      { k: "k2", v: 2 },
    ]);
  });

  it("some x in an object gives its values; in a set its members", () => {
    const p = policy("");
    assert.deepEqual(
      p.query("some v in input.o", { input }).map((r) => r.v),
      [1, 2],
    );
    assert.deepEqual(
      p.query("some k, v in {3, 1}").map((r) => [r.k, r.v]),
      [
        [1, 1],
        [3, 3],
      ],
    );
  });

  it("some with a pattern", () => {
    assert.deepEqual(
      policy("")
        .query("some [a, b] in [[1, 2], [3, 4], [5]]")
        .map((r) => [r.a, r.b]),
      [
        [1, 2],
        [3, 4],
      ],
    );
  });

  it("x[_] and x[i] iterate, nested refs iterate in order", () => {
    const p = policy("");
    assert.deepEqual(
      p.query("x := input.nested[_].ys[_]", { input }).map((r) => r.x),
      [1, 2, 3],
    );
    assert.deepEqual(
      p.query("x := input.xs[i]", { input }).map((r) => [r.i, r.x]),
      [
        [0, "a"],
        [1, "b"],
      ],
    );
  });

  it("some declares variables bound later by iteration", () => {
    assert.deepEqual(value('p contains i if { some i; input.xs[i] == "b" }', "p", { input }), [1]);
  });

  it("iterating a scalar or a missing value gives nothing", () => {
    const p = policy("");
    assert.deepEqual(p.query("some x in 5"), []);
    assert.deepEqual(p.query("some x in input.missing", { input }), []);
    assert.deepEqual(p.query('x := "abc"[_]'), []);
  });

  it("objects iterate in sorted key order", () => {
    assert.deepEqual(value("p := [k | some k, _ in input]", "p", { input: { b: 1, a: 2, "10": 3, "9": 4 } }), [
      "10",
      "9",
      "a",
      "b",
    ]);
  });
});

describe("every", () => {
  it("holds when the body holds for every element", () => {
    assert.equal(value("p if every x in [1, 2] { x > 0 }"), true);
    assert.equal(value("p if every x in [1, 2] { x > 1 }"), undefined);
  });

  it("with key and value, over arrays, sets and objects", () => {
    assert.equal(value("p if every i, x in [1, 2] { i + 1 == x }"), true);
    assert.equal(value("p if every k, v in {1, 2} { k == v }"), true);
    assert.equal(value('p if every k, v in {"a": "a"} { k == v }'), true);
  });

  it("an empty domain holds; an undefined domain fails; a non-collection fails", () => {
    assert.equal(value("p if every x in [] { false }"), true);
    assert.equal(value("p if every x in input.none { true }", "p", { input: {} }), undefined);
    assert.equal(value("default p := 1\np := 2 if every v in 42 { v > 1 }"), 1);
  });

  it("sees outer variables, and its own variables stay inside", () => {
    assert.equal(value("p if { i := 10; every k, v in [1, 2] { k + v != i } }"), true);
    assert.deepEqual(value("p contains v if { every v in [1, 2] { v < 3 }; v := 10 }"), [10]);
  });
});

describe("comprehensions", () => {
  it("array, set and object comprehensions", () => {
    assert.deepEqual(q("x := [y * 2 | some y in [3, 1, 3]]"), [6, 2, 6]);
    assert.deepEqual(q("x := {y * 2 | some y in [3, 1, 3]}"), [2, 6]);
    assert.deepEqual(q('x := {k: v | some v, k in ["a", "b"]}'), { a: 0, b: 1 });
  });

  it("an empty result is defined", () => {
    assert.deepEqual(q("x := [y | some y in []]"), []);
    assert.equal(value("p if count([y | some y in []]) == 0"), true);
  });

  it("see outer variables", () => {
    assert.deepEqual(q("n := 2; x := [y | some y in [1, 2, 3]; y >= n]"), [2, 3]);
  });

  it("nest", () => {
    assert.deepEqual(q("x := [[y | some y in row; y > 1] | some row in [[1, 2], [3]]]"), [[2], [3]]);
  });

  it("conflicting keys in an object comprehension are an error", () => {
    assert.throws(() => q('x := {k: v | some v in [1, 2]; k := "a"}'), /object keys must be unique/);
  });

  it("in rule heads", () => {
    assert.deepEqual(value("p := {x | some x in input}", "p", { input: [2, 1] }), [1, 2]);
  });
});

describe("membership with in", () => {
  it("in arrays, sets and object values", () => {
    assert.deepEqual(q('x := [1 in [1, 2], 3 in {1}, "v" in {"k": "v"}, "k" in {"k": "v"}]'), [
      true,
      false,
      true,
      false,
    ]);
  });

  it("key, value in", () => {
    assert.equal(value('p if 0, "a" in ["a"]'), true);
    assert.equal(value('p if "k", "v" in {"k": "v"}'), true);
    assert.equal(value('p if 1, "a" in ["a"]'), undefined);
  });

  it("in a non-collection is false", () => {
    assert.equal(q('x := 1 in "abc"'), false);
  });
});

describe("references", () => {
  const input = { a: { "b-c": [10, 20] }, list: [{ id: 1 }, { id: 2 }] };

  it("dots and brackets", () => {
    assert.equal(q('x := input.a["b-c"][1]', { input }), 20);
    assert.equal(q("i := 0; x := input.list[i].id", { input }), 1);
  });

  it("on literals and call results", () => {
    assert.equal(q("x := [1, 2, 3][1]"), 2);
    assert.equal(q('x := {"a": {"b": 5}}.a.b'), 5);
    assert.equal(q('x := split("a.b", ".")[1]'), "b");
  });

  it("into sets give the member", () => {
    assert.equal(q('x := {"a", "b"}["a"]'), "a");
    assert.equal(q('x := {"a", "b"}["z"]'), undefined);
  });

  it("non-integer or out-of-range indexes are undefined", () => {
    assert.equal(q("x := [1, 2][1.5]"), undefined);
    assert.equal(q("x := [1, 2][2]"), undefined);
    assert.equal(q('x := [1, 2]["0"]'), undefined);
    assert.equal(q("x := [1, 2][1.0]"), 2);
  });

  it("does not see JavaScript prototype properties of input objects", () => {
    assert.equal(q("x := input.constructor", { input: {} }), undefined);
    assert.equal(q("x := input.a.toString", { input }), undefined);
    assert.equal(q('x := input["__proto__"]', { input: JSON.parse('{"__proto__": 1}') }), 1);
  });
});

describe("undefined", () => {
  it("propagates through calls, arrays and objects", () => {
    const input = {};
    assert.equal(q("x := count(input.missing)", { input }), undefined);
    assert.equal(q("x := [1, input.missing]", { input }), undefined);
    assert.equal(q('x := {"a": input.missing}', { input }), undefined);
    assert.equal(q("x := input.missing.deeper", { input }), undefined);
  });

  it("an undefined expression fails the body, and the rule is undefined", () => {
    assert.equal(value("p if { input.missing }", "p", { input: {} }), undefined);
    assert.equal(value("p if { input.x == input.missing }", "p", { input: { x: 1 } }), undefined);
  });

  it("a false value fails the expression, other values hold", () => {
    assert.equal(value("p if input.x", "p", { input: { x: false } }), undefined);
    assert.equal(value("p if input.x", "p", { input: { x: 0 } }), true);
    assert.equal(value("p if input.x", "p", { input: { x: null } }), true);
    assert.equal(value("p if input.x", "p", { input: { x: "" } }), true);
  });

  it("with no input at all, input is undefined", () => {
    assert.equal(value("p if not input"), true);
  });
});

describe("with", () => {
  it("replaces input for one expression", () => {
    const body = 'allow if input.user == "admin"\np if allow with input as {"user": "admin"}\nq if allow';
    assert.equal(value(body, "p", { input: { user: "bob" } }), true);
    assert.equal(value(body, "q", { input: { user: "bob" } }), undefined);
  });

  it("replaces part of input", () => {
    const body = "r := [input.a, input.b]\np := x if { x := r with input.b as 2 }";
    assert.deepEqual(value(body, "p", { input: { a: 1, b: 1 } }), [1, 2]);
    assert.deepEqual(value("p := x if { x := input with input.x.y as 1 }", "p"), { x: { y: 1 } });
  });

  it("replaces data and rules", () => {
    const body =
      "limit := 3\nok if count(input.xs) <= limit\np if ok with data.test.limit as 10 with input.xs as [1, 2, 3, 4]\nq if ok with data.cfg as {}";
    assert.equal(value(body, "p"), true);
    const body2 = "ok if data.cfg.on\np if ok with data.cfg.on as true";
    assert.equal(value(body2, "p", { data: { cfg: { on: false } } }), true);
  });

  it("replacing a whole package replaces its rules", () => {
    const body = 'a := 1\nb := 2\np := x if { x := [data.test.a, data.test.b] with data.test as {"a": 5} }';
    assert.equal(value(body), undefined);
    assert.deepEqual(value('a := 1\np := x if { x := data.test.a with data.test as {"a": 5} }'), 5);
  });

  it("may begin on the next line, and applies to not, every and iteration", () => {
    const body = `
deny if input.bad
p if {
  not deny
    with input as {"bad": false}
}
q if every x in input { x > 0 } with input as [1, 2]
r contains x if { some x in input with input as [1, 2] }
`;
    assert.equal(value(body, "p"), true);
    assert.equal(value(body, "q"), true);
    assert.deepEqual(value(body, "r"), [1, 2]);
  });

  it("leaves what follows in the outer context", () => {
    assert.equal(value('p if { input.x == 1 with input as {"x": 1}; input.x == 2 }', "p", { input: { x: 2 } }), true);
  });
});
