import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { compile, parseCount, RegoError, supportedBuiltins } from "../src/index.js";
import { policy } from "./helpers.js";

describe("compile and evaluate", () => {
  const p = compile([
    {
      name: "authz.rego",
      source: `package stategate.authz

import rego.v1

default allow := false

allow if input.claims.tenant == input.body.domain
`,
    },
  ]);

  it("evaluates many times with different inputs", () => {
    for (let i = 0; i < 3; i++) {
      assert.equal(
        p.evaluate("data.stategate.authz.allow", { input: { claims: { tenant: "a" }, body: { domain: "a" } } }),
        true,
      );
      assert.equal(
        p.evaluate("data.stategate.authz.allow", { input: { claims: { tenant: "a" }, body: { domain: "b" } } }),
        false,
      );
    }
  });

  it("parses nothing per evaluation: the module once at compile, a reference once at its first use", () => {
    const before = parseCount();
    const fresh = compile("package a\n\nallow if input.x == 1\n");
    assert.equal(parseCount(), before + 1, "compile parses the module");
    fresh.evaluate("data.a.allow", { input: { x: 1 } });
    const warm = parseCount();
    for (let i = 0; i < 100; i++)
      assert.equal(fresh.evaluate("data.a.allow", { input: { x: i } }), i === 1 ? true : undefined);
    fresh.query("input.x == 1", { input: { x: 1 } });
    fresh.query("input.x == 1", { input: { x: 2 } });
    assert.equal(parseCount(), warm + 1, "100 evaluations parse nothing; a query is parsed once");
  });

  it("lists its packages and rules", () => {
    assert.deepEqual(p.packages, ["stategate.authz"]);
    assert.deepEqual(p.rules, ["data.stategate.authz.allow"]);
    assert.deepEqual(policy("a.b := 1\nf(x) := x\nc[k] := 1 if k := 2").rules, [
      "data.test.a.b",
      "data.test.c",
      "data.test.f",
    ]);
  });

  it("takes a reference as a string or a path", () => {
    assert.equal(p.evaluate(["stategate", "authz", "allow"]), false);
    assert.equal(p.evaluate('data.stategate["authz"].allow'), false);
  });

  it("an undefined reference is undefined", () => {
    assert.equal(p.evaluate("data.stategate.authz.nothing"), undefined);
    assert.equal(p.evaluate("data.other"), undefined);
  });

  it("refuses what is not a reference into data", () => {
    assert.throws(() => p.evaluate("input.x"), RegoError);
    assert.throws(() => p.evaluate("data.stategate.authz.allow == true"), RegoError);
    assert.throws(() => p.evaluate("data.x[y]"), /use query\(\)/);
  });

  it("refuses data that is not an object", () => {
    assert.throws(() => p.evaluate("data.stategate.authz.allow", { data: [1] }), TypeError);
  });

  it("a single source string compiles as policy.rego", () => {
    assert.equal(compile("package a\n\nx := 1").evaluate("data.a.x"), 1);
    assert.throws(
      () => compile("package a\n\nx := nope()"),
      (err: unknown) => err instanceof RegoError && err.location?.file === "policy.rego",
    );
  });
});

describe("query", () => {
  const p = policy('users := {"ada": 36, "bob": 41}\nold(name) if users[name] > 40');

  it("returns one binding per solution", () => {
    assert.deepEqual(p.query("some name, age in data.test.users"), [
      { name: "ada", age: 36 },
      { name: "bob", age: 41 },
    ]);
    assert.deepEqual(p.query('data.test.old("bob")'), [{}]);
    assert.deepEqual(p.query('data.test.old("ada")'), []);
  });

  it("sees input and data", () => {
    assert.deepEqual(p.query("x := input.a + data.b", { input: { a: 1 }, data: { b: 2 } }), [{ x: 3 }]);
  });

  it("reports syntax and safety errors with positions in the query", () => {
    assert.throws(
      () => p.query("x := "),
      (err: unknown) => err instanceof RegoError && err.code === "rego_parse_error" && err.location?.file === "query",
    );
    assert.throws(
      () => p.query("x > 1"),
      (err: unknown) => err instanceof RegoError && err.code === "rego_unsafe_var_error",
    );
  });
});

describe("values out", () => {
  it("sets become sorted arrays, objects plain objects", () => {
    const out = policy('p := {"s": {3, 1}, "o": {"b": 1, "a": 2}, "n": {1: "x"}}').evaluate("data.test.p");
    assert.deepEqual(out, { n: { "1": "x" }, o: { a: 2, b: 1 }, s: [1, 3] });
    assert.equal(Object.getPrototypeOf(out), Object.prototype);
  });

  it("a __proto__ key stays a key", () => {
    const out = policy('p := {"__proto__": 1}').evaluate("data.test.p") as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(out), Object.prototype);
    assert.deepEqual(Object.keys(out), ["__proto__"]);
  });
});

describe("supportedBuiltins", () => {
  it("lists the implemented built-ins, sorted, without internal ones", () => {
    const names = supportedBuiltins();
    assert.deepEqual(names, [...names].sort());
    for (const n of [
      "count",
      "sprintf",
      "regex.match",
      "glob.match",
      "io.jwt.decode",
      "net.cidr_contains",
      "time.now_ns",
    ]) {
      assert.ok(names.includes(n), n);
    }
    assert.ok(!names.some((n) => n.startsWith("internal.")));
  });
});
