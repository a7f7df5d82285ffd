import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { compile } from "../src/index.js";
import { policy, throwsEval, value } from "./helpers.js";

describe("complete rules", () => {
  it("a rule with if and no value is true when its body holds", () => {
    assert.equal(value("p if { 1 < 2 }"), true);
    assert.equal(value("p if 1 < 2"), true);
  });

  it("a rule whose body fails is undefined, not false", () => {
    assert.equal(value("p if { 1 > 2 }"), undefined);
  });

  it("default gives the value when no body holds", () => {
    assert.equal(value("default p := false\np if { 1 > 2 }"), false);
    assert.equal(value("default p := false\np if { 1 < 2 }"), true);
    assert.equal(value('default p = "x"\np := "y" if false'), "x");
  });

  it("the reference example: default allow = true is valid v1", () => {
    const p = compile("package stategate.authz\n\ndefault allow = true");
    assert.equal(p.evaluate("data.stategate.authz.allow"), true);
  });

  it("a constant rule without body", () => {
    assert.equal(value("p := 7"), 7);
    assert.deepEqual(value('p := {"a": [1, 2], "b": {"c": null}}'), { a: [1, 2], b: { c: null } });
    assert.equal(value("p = 7"), 7);
  });

  it("several definitions are OR", () => {
    const body = "p if input.a\np if input.b";
    assert.equal(value(body, "p", { input: { a: true } }), true);
    assert.equal(value(body, "p", { input: { b: true } }), true);
    assert.equal(value(body, "p", { input: {} }), undefined);
  });

  it("definitions that agree on the value are no conflict", () => {
    assert.equal(value("p := 1 if true\np := 1 if true"), 1);
  });

  it("definitions yielding different values are a conflict error", () => {
    throwsEval(
      () => value("p := 1 if true\np := 2 if true"),
      "eval_conflict_error",
      /complete rules must not produce multiple outputs/,
    );
  });

  it("one body with solutions of different values is a conflict error", () => {
    throwsEval(() => value("p := x if { some x in [1, 2] }"), "eval_conflict_error");
    assert.equal(value("p := x if { some x in [1, 1] }"), 1);
  });

  it("a conflict is reported only when both bodies hold", () => {
    assert.equal(value("p := 1 if true\np := 2 if false"), 1);
  });

  it("the head value may come from the body", () => {
    assert.equal(value("p := x if { x := 3 * 4 }"), 12);
    assert.equal(value("p := x + 1 if { x := 1 }"), 2);
  });

  it("an undefined head value makes the rule undefined", () => {
    assert.equal(value("p := input.missing if true", "p", { input: {} }), undefined);
  });

  it("multiple bodies after one head are alternatives", () => {
    assert.equal(value("p if { false } { true }"), true);
    assert.equal(value("p if { false } { false }"), undefined);
  });

  it("rules read other rules, in any order", () => {
    assert.equal(value("p := q + 1\nq := r * 2\nr := 5"), 11);
  });
});

describe("else", () => {
  const body = `
p := "a" if {
  input.x == 1
} else := "b" if {
  input.x == 2
} else := "c"
`;
  it("takes the first branch that holds", () => {
    assert.equal(value(body, "p", { input: { x: 1 } }), "a");
    assert.equal(value(body, "p", { input: { x: 2 } }), "b");
    assert.equal(value(body, "p", { input: { x: 3 } }), "c");
  });

  it("without a value else is true", () => {
    assert.equal(value("p := false if { false } else if { true }"), true);
  });

  it("with no branch holding and no default the rule is undefined", () => {
    assert.equal(value("p := 1 if { false } else := 2 if { false }"), undefined);
  });

  it("else on functions", () => {
    const p = policy('f(x) := "pos" if { x > 0 } else := "neg" if { x < 0 } else := "zero"\n');
    assert.deepEqual(p.query("a := data.test.f(3); b := data.test.f(-1); c := data.test.f(0)"), [
      { a: "pos", b: "neg", c: "zero" },
    ]);
  });

  it("the else branch wins over a default only when reached", () => {
    assert.equal(value("default p := 0\np := 1 if { false } else := 2 if { true }"), 2);
  });
});

describe("multi-value rules (contains)", () => {
  it("collect every solution into a set", () => {
    assert.deepEqual(value("p contains x if { some x in [3, 1, 2, 1] }"), [1, 2, 3]);
  });

  it("are an empty set, not undefined, when nothing holds", () => {
    assert.deepEqual(value("p contains 1 if false"), []);
    assert.equal(value("p contains 1 if false\nq if count(p) == 0", "q"), true);
  });

  it("several definitions union", () => {
    assert.deepEqual(value('p contains "a"\np contains "b" if true\np contains "c" if false'), ["a", "b"]);
  });

  it("deny messages from input", () => {
    const body = `
deny contains msg if {
  some user in input.users
  not user.active
  msg := sprintf("%s is inactive", [user.name])
}`;
    assert.deepEqual(
      value(body, "deny", {
        input: {
          users: [
            { name: "ada", active: true },
            { name: "bob", active: false },
            { name: "cy", active: false },
          ],
        },
      }),
      ["bob is inactive", "cy is inactive"],
    );
  });

  it("membership and iteration on the set", () => {
    const body = 'p contains x if some x in ["a", "b"]\nq if p["a"]\nr if p["z"]\ns := [x | some x in p]';
    assert.equal(value(body, "q"), true);
    assert.equal(value(body, "r"), undefined);
    assert.deepEqual(value(body, "s"), ["a", "b"]);
  });
});

describe("object rules", () => {
  it("p[k] := v builds an object", () => {
    assert.deepEqual(value('p[k] := v if { some k, v in {"a": 1, "b": 2} }'), { a: 1, b: 2 });
  });

  it("are an empty object when nothing holds", () => {
    assert.deepEqual(value("p[k] := 1 if { some k in [] }"), {});
  });

  it("the same key with two values is a conflict error", () => {
    throwsEval(
      () => value('p[k] := v if { k := "a"; some v in [1, 2] }'),
      "eval_conflict_error",
      /object keys must be unique/,
    );
  });

  it("keys can be any value", () => {
    assert.deepEqual(value("p[x] := x * 10 if { some x in [1, 2] }"), { "1": 10, "2": 20 });
  });

  it("p[x] if … is an object of true values (v1 meaning)", () => {
    assert.deepEqual(value("q[7] := 8\np[x] if q[x]"), { "7": true });
  });

  it("lookup of one key", () => {
    const body = "p[k] := v if { some k, v in input }\nq := p.b";
    assert.equal(value(body, "q", { input: { a: 1, b: 2 } }), 2);
  });

  it("a value that is a set: p[k] contains v", () => {
    assert.deepEqual(value('p[k] contains v if { some v in ["ab", "ac", "bd"]; k := substring(v, 0, 1) }'), {
      a: ["ab", "ac"],
      b: ["bd"],
    });
  });
});

describe("ref heads", () => {
  it("dotted heads nest", () => {
    const p = policy("a.b.c := 1\na.b.d := 2\na.e := 3");
    assert.deepEqual(p.evaluate("data.test.a"), { b: { c: 1, d: 2 }, e: 3 });
    assert.equal(p.evaluate("data.test.a.b.d"), 2);
  });

  it("static and variable parts merge", () => {
    assert.deepEqual(value('p.q.r := 1\np.q[s] := 2 if s := "s"'), { q: { r: 1, s: 2 } });
  });

  it("a variable key colliding with a static one with another value is a conflict", () => {
    throwsEval(() => value('p.q.r := 1\np.q[s] := 2 if s := "r"'), "eval_conflict_error");
  });

  it("several variable parts", () => {
    assert.deepEqual(value("p[a][b] := a + b if { some a in [1, 2]; some b in [10] }"), {
      "1": { "10": 11 },
      "2": { "10": 12 },
    });
  });

  it("default on a dotted head", () => {
    assert.deepEqual(value('default a.b.c := "d"', "a"), { b: { c: "d" } });
  });

  it("multi-value rule at a dotted path", () => {
    assert.deepEqual(value("a.b contains x if some x in [2, 1]", "a"), { b: [1, 2] });
  });

  it("modules of nested packages join in one tree", () => {
    const p = compile([
      { name: "a.rego", source: "package test\n\na.b.c.d contains 1" },
      { name: "b.rego", source: "package test.a\n\nb.c.d contains 2" },
    ]);
    assert.deepEqual(p.evaluate("data.test.a"), { b: { c: { d: [1, 2] } } });
  });
});

describe("functions", () => {
  it("take arguments and return a value", () => {
    const p = policy("f(x, y) := x + y\ng(x) if x > 1");
    assert.deepEqual(p.query("a := data.test.f(1, 2)"), [{ a: 3 }]);
    assert.deepEqual(p.query("data.test.g(2)"), [{}]);
    assert.deepEqual(p.query("data.test.g(0)"), []);
  });

  it("are called by name in their package", () => {
    assert.equal(value("f(x) := x * 2\np := f(21)"), 42);
  });

  it("arguments can be patterns", () => {
    const body = 'f([a, b]) := a + b\ng("x") := 1\ng("y") := 2\np := [f([1, 2]), g("x"), g("y")]';
    assert.deepEqual(value(body), [3, 1, 2]);
  });

  it("no matching definition makes the call undefined", () => {
    assert.equal(value('g("x") := 1\np := g("z")'), undefined);
  });

  it("definitions yielding different values for the same arguments are a conflict error", () => {
    throwsEval(
      () => value("f(x) := 1\nf(x) := 2\np := f(0)"),
      "eval_conflict_error",
      /functions must not produce multiple outputs/,
    );
  });

  it("a default function", () => {
    assert.deepEqual(value("default f(_) := 0\nf(x) := 1 if x > 5\np := [f(1), f(10)]"), [0, 1]);
  });

  it("through an import alias and with an output argument", () => {
    const p = compile([
      { name: "lib.rego", source: "package lib\n\ndouble(x) := x * 2" },
      {
        name: "main.rego",
        source: "package main\n\nimport data.lib\n\np if { lib.double(2, y); y == 4 }\nq := data.lib.double(5)",
      },
    ]);
    assert.equal(p.evaluate("data.main.p"), true);
    assert.equal(p.evaluate("data.main.q"), 10);
  });

  it("are not part of the package's value", () => {
    assert.deepEqual(policy("f(x) := x\np := 1").evaluate("data.test"), { p: 1 });
  });
});

describe("packages, imports and data", () => {
  it("a whole package evaluates to an object of its rules", () => {
    const p = policy("a := 1\nb if false\nc contains 2");
    assert.deepEqual(p.evaluate("data.test"), { a: 1, c: [2] });
  });

  it("rules of other packages through data and imports", () => {
    const p = compile([
      { name: "roles.rego", source: 'package roles\n\nadmins := {"ada"}' },
      {
        name: "authz.rego",
        source:
          'package authz\n\nimport data.roles\nimport input.user as u\n\nallow if u in roles.admins\nalso if "ada" in data.roles.admins',
      },
    ]);
    assert.equal(p.evaluate("data.authz.allow", { input: { user: "ada" } }), true);
    assert.equal(p.evaluate("data.authz.allow", { input: { user: "bob" } }), undefined);
    assert.equal(p.evaluate("data.authz.also"), true);
  });

  it("base data is readable and merges with rules", () => {
    const p = policy("p := data.config.limit + 1");
    assert.equal(p.evaluate("data.test.p", { data: { config: { limit: 9 } } }), 10);
    assert.deepEqual(p.evaluate("data", { data: { config: { limit: 9 } } }), { config: { limit: 9 }, test: { p: 10 } });
  });

  it("a package path may be read by array", () => {
    assert.equal(policy("p := 3").evaluate(["test", "p"]), 3);
  });

  it("rego.v1 and future.keywords imports are accepted", () => {
    assert.equal(value("import rego.v1\nimport future.keywords.in\np if 1 in [1]"), true);
  });

  it("iterating over rules of a package by key", () => {
    const p = compile([
      { name: "a.rego", source: "package checks.a\n\nok := true" },
      { name: "b.rego", source: "package checks.b\n\nok := false" },
      { name: "m.rego", source: "package m\n\nfailing contains name if { some name, c in data.checks; not c.ok }" },
    ]);
    assert.deepEqual(p.evaluate("data.m.failing"), ["b"]);
  });
});
