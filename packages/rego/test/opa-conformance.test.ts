import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { compile, RegoError } from "../src/index.js";
import { policy, q, refused, throwsEval, value } from "./helpers.js";

/**
 * Places where the engine disagreed with OPA (found by running OPA's own
 * conformance cases and reading its built-ins), each pinned to OPA's answer.
 */

/** The value of one expression. */
const x = (expr: string, input?: unknown) => q(`x := ${expr}`, input === undefined ? {} : { input });

describe("glob.match follows gobwas/glob, as OPA does", () => {
  it("a class is one range or a list, where - is an ordinary character", () => {
    assert.deepEqual(
      x('[glob.match("[m-p]*", [], "oak"), glob.match("[!m-p]*", [], "oak"), glob.match("[xy-]", [], "-")]'),
      [true, false, true],
    );
    // In a list, x-z is three characters, not a range.
    assert.equal(x('glob.match("[x-z]", [], "y")'), true);
    assert.equal(x('glob.match("[ax-z]", [], "y")'), false);
  });

  it("two ranges in one class is a syntax error: refused when constant, undefined at run time", () => {
    refused('package p\n\nok if glob.match("[a-z0-9]*", [], input.host)', "rego_type_error", 3, 7, /one range/);
    assert.equal(x('glob.match(input.pattern, [], "v1")', { pattern: "[a-z0-9]*" }), undefined);
  });

  it("each delimiter is one character", () => {
    assert.equal(x('glob.match("api*", ["::"], "api::v1")'), undefined);
    assert.equal(x('glob.match("api*", [""], "api.v1")'), undefined);
    assert.equal(x('glob.match("api:*", [":"], "api:v1")'), true);
    assert.equal(x('glob.match("api:*", [":"], "api:v1:x")'), false);
  });
});

describe("net.cidr_contains follows Go's net package", () => {
  it("an IPv4 address is not inside an IPv6 network, unless the network is IPv4-mapped", () => {
    assert.equal(x('net.cidr_contains("::/0", "192.0.2.7")'), false);
    assert.equal(x('net.cidr_contains("::ffff:0:0/96", "192.0.2.7")'), true);
    assert.equal(x('net.cidr_contains("::ffff:192.0.2.0/120", "192.0.2.7")'), true);
    assert.equal(x('net.cidr_contains("192.0.2.0/24", "::ffff:192.0.2.7")'), true);
    assert.equal(x('net.cidr_contains("0.0.0.0/0", "2001:db8::1")'), false);
  });

  it("a network contains another when it holds its first and last addresses", () => {
    assert.deepEqual(
      x(
        '[net.cidr_contains("2001:db8::/32", "2001:db8:7::/48"), net.cidr_contains("2001:db8::/48", "2001:db8::/32"), net.cidr_contains("198.51.100.0/24", "198.51.100.128/25")]',
      ),
      [true, false, true],
    );
  });

  it("what Go does not parse is an error (undefined)", () => {
    assert.equal(x('net.cidr_contains("198.51.100.0/24", "198.51.100.07")'), undefined);
    assert.equal(x('net.cidr_contains("198.51.100.0/33", "198.51.100.7")'), undefined);
    assert.equal(x('net.cidr_contains("fe80::/10", "fe80::1%eth0")'), undefined);
  });
});

describe("sprintf rounds as Go does: the exact binary value, halves to even", () => {
  it("%f, %e and %g with a precision", () => {
    assert.equal(x('sprintf("%.1f|%.0f|%.0f|%.0f|%.2f", [0.25, 0.5, 1.5, 2.5, 2.675])'), "0.2|0|2|2|2.67");
    assert.equal(x('sprintf("%.1e|%.3g|%.2g", [12.5, 2.0625, 0.125])'), "1.2e+01|2.06|0.12");
    assert.equal(x('sprintf("%.3f|%8.3f|%.1f", [1.0005, -3.14159, 0.05])'), "1.000|  -3.142|0.1");
  });
});

describe("io.jwt.decode follows OPA", () => {
  const part = (json: string) => Buffer.from(json).toString("base64url");
  const token = (header: string, payload: string) => `${part(header)}.${part(payload)}.`;
  const decode = (t: string) => q("x := io.jwt.decode(input.t)", { input: { t } });

  it("a JWE (a header with enc) is an error, so undefined", () => {
    assert.equal(decode(token('{"alg":"RSA-OAEP","enc":"A256GCM"}', "{}")), undefined);
  });

  it("only cty JWT, exactly, means a nested token; its quotes are trimmed", () => {
    const inner = token('{"alg":"none"}', '{"sub":"ada"}');
    assert.deepEqual(decode(token('{"alg":"none","cty":"JWT"}', `"${inner}"`)), [{ alg: "none" }, { sub: "ada" }, ""]);
    assert.deepEqual(decode(token('{"alg":"none","cty":"jwt"}', '{"a":1}')), [
      { alg: "none", cty: "jwt" },
      { a: 1 },
      "",
    ]);
  });

  it("segments are base64url as OPA decodes it", () => {
    const good = token('{"alg":"none"}', '{"a":1}');
    assert.deepEqual(decode(`${good}c2ln`), [{ alg: "none" }, { a: 1 }, "736967"]);
    // A length of 4n+1 and a wrong padding are errors.
    assert.equal(decode(`${good}A`), undefined);
    assert.equal(decode(`${part('{"alg":"none"}')}.${part('{"a":1}')}=.`), undefined);
  });

  it("two or four sections are an error", () => {
    assert.equal(decode("abc.def"), undefined);
    assert.equal(decode("a.b.c.d"), undefined);
  });
});

describe("time built-ins follow Go's time package", () => {
  it("RFC 3339: T and Z upper-case only, a fraction after . or , with digits past nine dropped", () => {
    assert.equal(x('time.parse_rfc3339_ns("1970-01-01t00:00:01Z")'), undefined);
    assert.equal(x('time.parse_rfc3339_ns("1970-01-01T00:00:01z")'), undefined);
    assert.equal(x('time.parse_rfc3339_ns("1970-01-01T00:00:00,5Z")'), 5e8);
    assert.equal(x('time.parse_rfc3339_ns("1970-01-01T00:00:00.1234567891Z")'), 123456789);
  });

  it("times past the int64 nanosecond range are an error", () => {
    assert.equal(x('time.parse_rfc3339_ns("2263-01-01T00:00:00Z")'), undefined);
    assert.equal(x("time.add_date(0, 300, 0, 0)"), undefined);
    assert.equal(x("time.add_date(0, 1, 1, 1)"), 34300800000000000);
  });

  it("nanoseconds must be an integer; [ns] alone is UTC", () => {
    assert.equal(x("time.date(1.5)"), undefined);
    assert.deepEqual(x('[time.date([0]), time.clock([0, "UTC"]), time.weekday([0, ""])]'), [
      [1970, 1, 1],
      [0, 0, 0],
      "Thursday",
    ]);
    assert.equal(x("time.date([])"), undefined);
  });
});

describe("other built-ins where OPA's answer differed", () => {
  it("object.get walks through sets by member, as OPA's Find", () => {
    assert.equal(x('object.get({"roles": {"admin", "dev"}}, ["roles", "admin"], false)'), "admin");
    assert.equal(x('object.get({"roles": {"admin"}}, ["roles", "ops"], false)'), false);
  });

  it("indexof and indexof_n refuse an empty search string", () => {
    assert.equal(x('indexof("abc", "")'), undefined);
    assert.equal(x('indexof_n("abc", "")'), undefined);
    assert.deepEqual(x('indexof_n("abab", "b")'), [1, 3]);
  });

  it("urlquery.decode_object refuses ; as a separator (Go's url.ParseQuery)", () => {
    assert.equal(x('urlquery.decode_object("a=1;b=2")'), undefined);
    assert.deepEqual(x('urlquery.decode_object("a=1&b=x+y&a=2")'), { a: ["1", "2"], b: ["x y"] });
  });

  it("sprintf %T and %#v", () => {
    assert.equal(x('sprintf("%T %T %T %#v", ["a", 1, 1.5, "q"])'), 'string int float64 "q"');
  });

  it("json.marshal orders keys by their UTF-8 bytes", () => {
    assert.equal(x('json.marshal({"\uffff": 1, "\ud83d\ude00": 2})'), '{"\uffff":1,"😀":2}');
  });

  it("upper and lower map each character alone (Go's simple case mapping)", () => {
    assert.deepEqual(x('[upper("straße"), lower("İSTANBUL"), lower("ΟΔΟΣ"), upper("été")]'), [
      "STRAßE",
      "istanbul",
      "οδοσ",
      "ÉTÉ",
    ]);
  });

  it("regex: . leaves out only a line feed; empty matches right after a match are skipped", () => {
    assert.deepEqual(x('[regex.match("^a.b$", "a\\rb"), regex.match("^a.b$", "a\\nb")]'), [true, false]);
    assert.equal(x('regex.replace("baaab", "a*", "-")'), "-b-b-");
    assert.deepEqual(x('regex.find_n("a*", "baaab", -1)'), ["", "aaa", ""]);
    assert.deepEqual(x('regex.split("x*", "ab")'), ["a", "b"]);
  });

  it("regex: Unicode scripts by their bare names", () => {
    assert.deepEqual(x('[regex.match("^\\\\p{Greek}+$", "λόγος"), regex.match("^\\\\PL+$", "123")]'), [true, true]);
  });
});

describe("language details where OPA's answer differed", () => {
  it("(k, v in xs) in parentheses is a membership test", () => {
    assert.equal(x('(1, "b" in ["a", "b"])'), true);
    assert.deepEqual(x('[(0, "b" in ["a", "b"]), ("k", 1 in {"k": 1})]'), [false, true]);
  });

  it("some … in with a call or a reference as the member compares values", () => {
    assert.equal(value('p if some lower(input.role) in {"admin"}', "p", { input: { role: "ADMIN" } }), true);
    assert.equal(value("p if some numbers.range(1, 2) in [[1, 2]]"), true);
  });

  it("a comprehension before a := of the same name has its own variable", () => {
    assert.equal(value('xs := {"a", "b"}\n\np := n if {\n  ys := {v | xs[v]}\n  v := count(ys)\n  n := v\n}'), 2);
    // Declared earlier, the variable is the body's.
    assert.deepEqual(value("p := ys if {\n  lim := 1\n  ys := [v | some v in [1, 2, 3]; v > lim]\n}"), [2, 3]);
    // Bound by unification (not declared), it is the body's wherever it is bound.
    assert.deepEqual(value("p := ys if {\n  ys := [v | some v in [1, 2, 3]; v > lim]\n  lim = 1\n}"), [2, 3]);
    // every's variables, function arguments and some-in variables reach nested closures.
    assert.equal(value("p if {\n  true\n  every xs in [[1], [2]] { count([y | some y in xs]) == 1 }\n}"), true);
    assert.equal(value('p if every k, vs in {"a": [1]} { every v in vs { v > 0; k == "a" } }'), true);
    assert.deepEqual(value("f(a) := [y | some y in a]\n\np := f([1, 2])"), [1, 2]);
    // Declared later, the comprehension's own variable has nothing binding it.
    refused(
      "package p\n\nq := ys if {\n  ys := [v | some v in [1, 2, 3]; v > lim]\n  lim := 1\n}",
      "rego_unsafe_var_error",
      4,
      39,
      /var lim is unsafe/,
    );
  });

  it("mocking a built-in with a function name is refused as mocking, not as an unsafe variable", () => {
    refused(
      "package p\n\nf(x) := x\n\ny if { f([1]) == 1 with f as count }",
      "rego_compile_error",
      5,
      25,
      /with cannot replace functions/,
    );
    refused(
      "package p\n\ny if { time.now_ns() == 1 with time.now_ns as 1 }",
      "rego_compile_error",
      3,
      32,
      /with can replace input or data only/,
    );
  });
});

describe("authorization-critical semantics (checked against OPA's cases; pinned here)", () => {
  it("a built-in error inside not makes not true, and a default still applies", () => {
    const p = policy("default allow := false\n\nallow if to_number(input.n) > 5\n\nopen if not to_number(input.n) > 5");
    assert.equal(p.evaluate("data.test.allow", { input: { n: "many" } }), false);
    assert.equal(p.evaluate("data.test.open", { input: { n: "many" } }), true);
  });

  it("every over an empty or undefined domain", () => {
    const p = policy('p if every r in input.roles { r == "admin" }');
    assert.equal(p.evaluate("data.test.p", { input: { roles: [] } }), true);
    assert.equal(p.evaluate("data.test.p", { input: {} }), undefined);
    assert.equal(p.evaluate("data.test.p", { input: { roles: "admin" } }), undefined);
  });

  it("two values of a complete rule, of a function, of an object key are conflicts", () => {
    throwsEval(() => value("p := v if some v in input.vs", "p", { input: { vs: [1, 2] } }), "eval_conflict_error");
    assert.equal(value("p := v if some v in input.vs", "p", { input: { vs: [1, 1] } }), 1);
    throwsEval(() => value('f(1) := "a"\nf(_) := "b"\np := f(1)'), "eval_conflict_error");
    throwsEval(() => value('o[k] := 1 if some k in ["a"]\no["a"] := 2', "o"), "eval_conflict_error");
    throwsEval(() => q('x := {k: v | some v in [1, 2]; k := "a"}'), "eval_conflict_error");
  });

  it("errors are RegoErrors", () => {
    assert.throws(() => compile("package p\n\nq if { x := 1; x := 2 }"), RegoError);
  });
});
