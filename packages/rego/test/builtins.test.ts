import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { policy, q, throwsEval } from "./helpers.js";

/** The value of one expression. */
const x = (expr: string, input?: unknown) => q(`x := ${expr}`, { input });

describe("aggregates", () => {
  it("count of arrays, objects, sets, strings", () => {
    assert.deepEqual(x('[count([1, 2]), count({"a": 1}), count({1, 2, 3}), count("ab"), count([])]'), [2, 1, 3, 2, 0]);
    assert.equal(x("count(1)"), undefined);
  });

  it("sum, product, max, min", () => {
    assert.deepEqual(x("[sum([1, 2, 3.5]), sum({1, 2}), sum([]), product([2, 3]), product([])]"), [6.5, 3, 0, 6, 1]);
    assert.deepEqual(x('[max([3, 1, 2]), min([3, 1, 2]), max(["a", "b"]), min({3, "a", null})]'), [3, 1, "b", null]);
    assert.equal(x("max([])"), undefined);
    assert.equal(x('sum(["a"])'), undefined);
  });

  it("sort", () => {
    assert.deepEqual(x('sort([3, "a", 1, null, [0]])'), [null, 1, 3, "a", [0]]);
    assert.deepEqual(x("sort({3, 1})"), [1, 3]);
  });

  it("intersection and union of sets of sets", () => {
    assert.deepEqual(x("intersection({{1, 2, 3}, {2, 3, 4}})"), [2, 3]);
    assert.deepEqual(x("union({{1}, {2, 3}})"), [1, 2, 3]);
    assert.deepEqual(x("intersection(set())"), []);
  });
});

describe("numbers", () => {
  it("abs, round (halves away from zero), ceil, floor", () => {
    assert.deepEqual(x("[abs(-2), round(2.5), round(-2.5), round(2.4), ceil(1.1), floor(-1.1)]"), [2, 3, -3, 2, 2, -2]);
  });

  it("numbers.range and range_step", () => {
    assert.deepEqual(x("numbers.range(1, 4)"), [1, 2, 3, 4]);
    assert.deepEqual(x("numbers.range(2, 0)"), [2, 1, 0]);
    assert.deepEqual(x("numbers.range_step(0, 10, 4)"), [0, 4, 8]);
    assert.deepEqual(x("numbers.range_step(10, 0, 4)"), [10, 6, 2]);
    assert.equal(x("numbers.range(1.5, 3)"), undefined);
  });

  it("to_number", () => {
    assert.deepEqual(
      x('[to_number("10"), to_number("-1.5e2"), to_number(true), to_number(null), to_number(3)]'),
      [10, -150, 1, 0, 3],
    );
    assert.equal(x('to_number("ten")'), undefined);
    assert.equal(x('to_number(" 1")'), undefined);
  });

  it("bits", () => {
    assert.deepEqual(
      x("[bits.and(12, 10), bits.or(12, 10), bits.xor(12, 10), bits.negate(5), bits.lsh(1, 40), bits.rsh(8, 2)]"),
      [8, 14, 6, -6, 2 ** 40, 2],
    );
  });
});

describe("types", () => {
  it("is_* and type_name", () => {
    assert.deepEqual(
      x('[is_number(1), is_string("a"), is_boolean(false), is_array([]), is_set(set()), is_object({}), is_null(null)]'),
      [true, true, true, true, true, true, true],
    );
    assert.deepEqual(x('[is_number("1"), is_string(1), is_array({}), is_object([]), is_set([])]'), [
      false,
      false,
      false,
      false,
      false,
    ]);
    assert.deepEqual(
      x(
        '[type_name(null), type_name(true), type_name(1), type_name("a"), type_name([]), type_name({}), type_name(set())]',
      ),
      ["null", "boolean", "number", "string", "array", "object", "set"],
    );
  });

  it("print always holds and writes to the hook, showing undefined", () => {
    const lines: string[] = [];
    const p = policy('p if { print("hello", 1, input.missing, {"a": 1}) }');
    assert.equal(p.evaluate("data.test.p", { input: {}, print: (m) => lines.push(m) }), true);
    assert.deepEqual(lines, ['hello 1 <undefined> {"a": 1}']);
  });
});

describe("regex", () => {
  it("regex.match is unanchored RE2", () => {
    assert.deepEqual(x('[regex.match("^a+$", "aaa"), regex.match("b", "abc"), regex.match("^b", "abc")]'), [
      true,
      true,
      false,
    ]);
    assert.equal(x('regex.match("(?i)^ABC$", "abc")'), true);
    assert.equal(x('regex.match("^[[:alpha:]]+\\\\d\\\\z", "abc1")'), true);
    assert.equal(x('regex.match("^\\\\s$", "\\u00a0")'), false);
    assert.equal(x('regex.match("(?P<year>\\\\d{4})", "in 2024")'), true);
    assert.equal(x('regex.match("a{", "a{")'), true);
  });

  it("patterns only known at run time: an invalid one is undefined", () => {
    assert.equal(x('regex.match(input, "a")', "("), undefined);
    assert.equal(x('regex.match(input, "a")', "\\1"), undefined);
  });

  it("regex.is_valid, split, find_n, replace, submatches", () => {
    assert.deepEqual(x('[regex.is_valid("a+"), regex.is_valid("(a"), regex.is_valid(1)]'), [true, false, false]);
    assert.deepEqual(x('regex.split("[,;]", "a,b;c")'), ["a", "b", "c"]);
    assert.deepEqual(x('regex.find_n("[0-9]+", "a1b22c333", 2)'), ["1", "22"]);
    assert.deepEqual(x('regex.find_n("[0-9]+", "a1b22c333", -1)'), ["1", "22", "333"]);
    assert.equal(x('regex.replace("ab-cd", "(\\\\w)(\\\\w)", "$2$1")'), "ba-dc");
    assert.deepEqual(x('regex.find_all_string_submatch_n("(a)(b)?", "ab a", -1)'), [
      ["ab", "a", "b"],
      ["a", "a", ""],
    ]);
  });
});

describe("glob.match", () => {
  it("default delimiter is the dot; null means none", () => {
    assert.equal(x('glob.match("*.github.com", [], "api.github.com")'), true);
    assert.equal(x('glob.match("*.github.com", [], "api.cdn.github.com")'), false);
    assert.equal(x('glob.match("*hub.com", null, "api.cdn.github.com")'), true);
    assert.equal(x('glob.match("*:github:com", [":"], "api:github:com")'), true);
  });

  it("super glob, single character, classes and alternatives", () => {
    assert.equal(x('glob.match("api.**.com", [], "api.cdn.github.com")'), true);
    assert.equal(x('glob.match("?at", [], "cat")'), true);
    assert.equal(x('glob.match("?at", [], "at")'), false);
    assert.equal(x('glob.match("[ch]at", [], "hat")'), true);
    assert.equal(x('glob.match("[!ch]at", [], "hat")'), false);
    assert.equal(x('glob.match("[a-c]at", [], "fat")'), false);
    assert.equal(x('glob.match("{cat,bat,[fr]at}", [], "rat")'), true);
    assert.equal(x('glob.match("{cat,bat}", [], "fat")'), false);
    assert.equal(x('glob.match("\\\\*x", [], "*x")'), true);
  });

  it("a delimiter stops * and ?", () => {
    assert.equal(x('glob.match("users/*", ["/"], "users/ada")'), true);
    assert.equal(x('glob.match("users/*", ["/"], "users/ada/keys")'), false);
    assert.equal(x('glob.match("users/**", ["/"], "users/ada/keys")'), true);
  });

  it("output argument form, and quote_meta", () => {
    assert.equal(
      policy('p if glob.match("*.github.com", ["."], input, false)').evaluate("data.test.p", {
        input: "a.example.com",
      }),
      true,
    );
    assert.equal(x('glob.quote_meta("*.github.com")'), "\\*.github.com");
  });
});

describe("arrays and objects", () => {
  it("array.concat, array.slice, array.reverse", () => {
    assert.deepEqual(x("array.concat([1], [2, 3])"), [1, 2, 3]);
    assert.deepEqual(x("array.slice([1, 2, 3, 4], 1, 3)"), [2, 3]);
    assert.deepEqual(x("array.slice([1, 2, 3], -1, 10)"), [1, 2, 3]);
    assert.deepEqual(x("array.slice([1, 2, 3], 2, 1)"), []);
    assert.deepEqual(x("array.reverse([1, 2, 3])"), [3, 2, 1]);
  });

  it("object.get with a key, a path, and a default", () => {
    assert.equal(x('object.get({"a": 1}, "a", 0)'), 1);
    assert.equal(x('object.get({"a": 1}, "b", 0)'), 0);
    assert.equal(x('object.get({"a": {"b": [7]}}, ["a", "b", 0], 0)'), 7);
    assert.equal(x('object.get({"a": {"b": 1}}, ["a", "c"], "none")'), "none");
    assert.equal(x('object.get({"a": false}, "a", true)'), false);
  });

  it("object.keys, union, union_n, remove, filter", () => {
    assert.deepEqual(x('object.keys({"b": 1, "a": 2})'), ["a", "b"]);
    assert.deepEqual(x('object.union({"a": 1, "n": {"x": 1}}, {"b": 2, "n": {"y": 2}})'), {
      a: 1,
      b: 2,
      n: { x: 1, y: 2 },
    });
    assert.deepEqual(x('object.union({"a": 1}, {"a": 2})'), { a: 2 });
    assert.deepEqual(x('object.union_n([{"a": 1}, {"b": 2}, {"a": 3}])'), { a: 3, b: 2 });
    assert.deepEqual(x('object.remove({"a": 1, "b": 2, "c": 3}, ["a", "c"])'), { b: 2 });
    assert.deepEqual(x('object.remove({"a": 1, "b": 2}, {"a"})'), { b: 2 });
    assert.deepEqual(x('object.filter({"a": 1, "b": 2, "c": 3}, ["a", "c"])'), { a: 1, c: 3 });
  });
});

describe("encodings", () => {
  it("json.marshal: compact, sorted keys, sets as arrays, HTML-safe", () => {
    assert.equal(x('json.marshal({"b": [1, "x"], "a": {2, 1}, "10": null})'), '{"10":null,"a":[1,2],"b":[1,"x"]}');
    assert.equal(x('json.marshal("<&>")'), '"\\u003c\\u0026\\u003e"');
  });

  it("json.unmarshal and json.is_valid", () => {
    assert.deepEqual(x('json.unmarshal("{\\"a\\": [1, true]}")'), { a: [1, true] });
    assert.equal(x('json.unmarshal("{")'), undefined);
    assert.deepEqual(x('[json.is_valid("[1]"), json.is_valid("[1")]'), [true, false]);
    assert.equal(x('json.unmarshal(json.marshal({"k": [1, {"z": null}]})) == {"k": [1, {"z": null}]}'), true);
  });

  it("base64 and base64url", () => {
    assert.equal(x('base64.encode("hello?")'), "aGVsbG8/");
    assert.equal(x('base64.decode("aGVsbG8/")'), "hello?");
    assert.equal(x('base64.decode("aGVsbG8")'), undefined);
    assert.deepEqual(x('[base64.is_valid("aGk="), base64.is_valid("aGk")]'), [true, false]);
    assert.equal(x('base64url.encode("hello?")'), "aGVsbG8_");
    assert.equal(x('base64url.encode("hi")'), "aGk=");
    assert.equal(x('base64url.encode_no_pad("hi")'), "aGk");
    assert.deepEqual(x('[base64url.decode("aGk="), base64url.decode("aGk")]'), ["hi", "hi"]);
  });

  it("hex and urlquery", () => {
    assert.deepEqual(x('[hex.encode("hi"), hex.decode("6869")]'), ["6869", "hi"]);
    assert.equal(x('hex.decode("6")'), undefined);
    assert.equal(x('urlquery.encode("a b&c=d/é")'), "a+b%26c%3Dd%2F%C3%A9");
    assert.equal(x('urlquery.decode("a+b%26c")'), "a b&c");
    assert.equal(x('urlquery.encode_object({"b": "2", "a": ["1", "x y"]})'), "a=1&a=x+y&b=2");
    assert.deepEqual(x('urlquery.decode_object("a=1&a=2&b=x+y")'), { a: ["1", "2"], b: ["x y"] });
  });
});

describe("time", () => {
  it("time.parse_rfc3339_ns", () => {
    assert.equal(x('time.parse_rfc3339_ns("1970-01-01T00:00:01Z")'), 1e9);
    assert.equal(x('time.parse_rfc3339_ns("1970-01-01T01:00:00+01:00")'), 0);
    assert.equal(x('time.parse_rfc3339_ns("1970-01-01T00:00:00.5Z")'), 5e8);
    assert.equal(x('time.parse_rfc3339_ns("2024-02-30T00:00:00Z")'), undefined);
    assert.equal(x('time.parse_rfc3339_ns("2024-01-01")'), undefined);
    assert.equal(x('time.parse_rfc3339_ns("2024-01-01T00:00:00Z")'), Date.UTC(2024, 0, 1) * 1e6);
  });

  it("time.now_ns is one time per evaluation, or the one given", () => {
    const p = policy("p := [time.now_ns(), time.now_ns()]");
    const [a, b] = p.evaluate("data.test.p") as number[];
    assert.equal(a, b);
    assert.ok(Math.abs(a! / 1e6 - Date.now()) < 5000);
    assert.deepEqual(p.evaluate("data.test.p", { now: new Date(1000) }), [1e9, 1e9]);
  });

  it("parse_duration_ns, date, clock, weekday, add_date", () => {
    assert.equal(x('time.parse_duration_ns("1h30m")'), 5400e9);
    assert.equal(x('time.parse_duration_ns("1.5s")'), 1.5e9);
    assert.equal(x('time.parse_duration_ns("1x")'), undefined);
    // Past 2^53, so given as input: a literal that large is refused (see "numbers").
    const ns = Date.UTC(2024, 1, 29, 13, 45, 7) * 1e6;
    assert.deepEqual(x("[time.date(input), time.clock(input), time.weekday(input)]", ns), [
      [2024, 2, 29],
      [13, 45, 7],
      "Thursday",
    ]);
    assert.equal(x("time.add_date(input, 0, 1, 1)", ns), Date.UTC(2024, 2, 30, 13, 45, 7) * 1e6);
  });
});

describe("net.cidr_contains", () => {
  it("addresses and networks, IPv4 and IPv6", () => {
    assert.deepEqual(
      x(
        '[net.cidr_contains("10.0.0.0/8", "10.1.2.3"), net.cidr_contains("10.0.0.0/8", "11.0.0.1"), net.cidr_contains("10.0.0.0/8", "10.2.0.0/16"), net.cidr_contains("10.0.0.0/16", "10.0.0.0/8")]',
      ),
      [true, false, true, false],
    );
    assert.deepEqual(
      x(
        '[net.cidr_contains("2001:db8::/32", "2001:db8::1"), net.cidr_contains("2001:db8::/32", "2001:db9::1"), net.cidr_contains("10.0.0.0/8", "::ffff:10.0.0.1"), net.cidr_contains("10.0.0.0/8", "2001:db8::1")]',
      ),
      [true, false, true, false],
    );
    assert.equal(x('net.cidr_contains("10.0.0.0/33", "10.0.0.1")'), undefined);
    assert.equal(x('net.cidr_contains("10.0.0.0/8", "10.0.0.256")'), undefined);
  });

  it("cidr_intersects and cidr_is_valid", () => {
    assert.deepEqual(
      x('[net.cidr_intersects("10.0.0.0/8", "10.1.0.0/16"), net.cidr_intersects("10.0.0.0/16", "10.1.0.0/16")]'),
      [true, false],
    );
    assert.deepEqual(x('[net.cidr_is_valid("10.0.0.0/8"), net.cidr_is_valid("10.0.0.0"), net.cidr_is_valid("::/0")]'), [
      true,
      false,
      true,
    ]);
  });
});

describe("io.jwt.decode", () => {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
  const token = `${b64({ alg: "RS256", typ: "JWT" })}.${b64({ sub: "ada", tenant: "acme" })}.${Buffer.from([1, 2, 255]).toString("base64url")}`;

  it("gives header, payload and the signature in hex", () => {
    assert.deepEqual(x("io.jwt.decode(input)", token), [
      { alg: "RS256", typ: "JWT" },
      { sub: "ada", tenant: "acme" },
      "0102ff",
    ]);
    assert.equal(q("[_, payload, _] := io.jwt.decode(input); x := payload.tenant", { input: token }), "acme");
  });

  it("a malformed token is undefined", () => {
    assert.equal(x("io.jwt.decode(input)", "abc"), undefined);
    assert.equal(x("io.jwt.decode(input)", "a.b.c"), undefined);
  });
});

describe("strictBuiltinErrors", () => {
  it("turns built-in errors into evaluation errors with the built-in's name and position", () => {
    const p = policy("p := to_number(input)", { strictBuiltinErrors: true });
    throwsEval(
      () => p.evaluate("data.test.p", { input: "ten" }),
      "eval_builtin_error",
      /test\.rego:3:6: .*to_number: /,
    );
    const t = policy("p := count(input)", { strictBuiltinErrors: true });
    throwsEval(() => t.evaluate("data.test.p", { input: 1 }), "eval_type_error", /count: operand 1 must be one of/);
  });

  it("without it the expression is undefined (OPA's default)", () => {
    assert.equal(policy("p := to_number(input)").evaluate("data.test.p", { input: "ten" }), undefined);
  });
});
