import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { compile } from "../src/index.js";
import { policy, q, refused, throwsEval } from "./helpers.js";

// Numbers are IEEE doubles (OPA's are arbitrary precision). Where a double
// would silently hold another number than the one written, the engine
// refuses: at compile time for literals, as a built-in error at run time.

const x = (expr: string, input?: unknown) => q(`x := ${expr}`, { input });

describe("number literals a double cannot hold are refused at compile time", () => {
  it("an integer literal above 2^53, with its line and column", () => {
    // 9007199254740993 would be read as 9007199254740992: `p` would be true.
    refused(
      "package p\n\np if {\n\tinput.id == 9007199254740993\n}\n",
      "rego_parse_error",
      4,
      14,
      /integer 9007199254740993 is too large: .*exact only up to 2\^53/,
    );
    refused("package p\n\nn := -18014398509481984\n", "rego_parse_error", 3, 7, /integer 18014398509481984/);
    refused("package p\n\nt := 1709214307000000000\n", "rego_parse_error", 3, 6, /too large/);
  });

  it("a literal out of the double range: infinity, or a non-zero that rounds to 0", () => {
    refused("package p\n\nn := 1e400\n", "rego_parse_error", 3, 6, /number 1e400 is out of range/);
    refused("package p\n\nn := [1, 2.5e308]\n", "rego_parse_error", 3, 10, /out of range/);
    refused("package p\n\nn := 1e-400\n", "rego_parse_error", 3, 6, /would round to 0/);
  });

  it("in queries too", () => {
    assert.throws(() => policy("").query("x := 9007199254740993"), /too large/);
  });

  it("2^53 itself, floats, zero and small exponents are fine", () => {
    assert.equal(x("9007199254740992"), 2 ** 53);
    assert.equal(x("-9007199254740992"), -(2 ** 53));
    assert.deepEqual(x("[0, 0.0, 0e10, 1e20, 1.5e300, 2.5e-300]"), [0, 0, 0, 1e20, 1.5e300, 2.5e-300]);
    const p = compile("package p\n\nbig := 1e18\n");
    assert.equal(p.evaluate("data.p.big"), 1e18);
  });
});

describe("at run time, a result a double cannot hold is an error, never another number", () => {
  it("arithmetic that overflows is undefined, or an error with strictBuiltinErrors", () => {
    assert.equal(x("input * input", 1e300), undefined);
    assert.equal(x("input + input", Number.MAX_VALUE), undefined);
    assert.equal(x("sum([input, input])", Number.MAX_VALUE), undefined);
    assert.equal(x("product([input, input])", 1e200), undefined);
    assert.equal(x("input / 0.5", Number.MAX_VALUE), undefined);
    assert.equal(x("input * 2", 1e10), 2e10);
    const strict = compile("package p\n\nn := input * input\n", { strictBuiltinErrors: true });
    throwsEval(() => strict.evaluate("data.p.n", { input: 1e300 }), "eval_builtin_error", /arithmetic overflow/);
  });

  it("to_number of an integer past 2^53 is refused; within it, and floats, are not", () => {
    assert.equal(x('to_number("9007199254740993")'), undefined);
    assert.equal(x('to_number("-9007199254740993")'), undefined);
    assert.equal(x('to_number("9007199254740992")'), 2 ** 53);
    assert.equal(x('to_number("1e20")'), 1e20);
    assert.equal(x('to_number("1e400")'), undefined);
  });

  it("json.unmarshal of a number it cannot hold exactly is refused; strings are left alone", () => {
    assert.equal(x('json.unmarshal("[9007199254740993]")'), undefined);
    assert.equal(x('json.unmarshal("{\\"a\\": -12345678901234567890}")'), undefined);
    assert.equal(x('json.unmarshal("[1e400]")'), undefined);
    assert.deepEqual(x('json.unmarshal("[9007199254740992, 1.5, -2, 1e20]")'), [2 ** 53, 1.5, -2, 1e20]);
    assert.deepEqual(x('json.unmarshal("{\\"id\\": \\"9007199254740993\\", \\"n\\": 1}")'), {
      id: "9007199254740993",
      n: 1,
    });
  });

  it("bit operations whose exact result a double cannot hold are refused", () => {
    assert.equal(x("bits.lsh(1, 60)"), 2 ** 60);
    assert.equal(x("bits.or(bits.lsh(1, 60), 1)"), undefined);
    assert.equal(x("bits.or(bits.lsh(1, 52), 1)"), 2 ** 52 + 1);
  });
});

describe("nanosecond timestamps (past 2^53 today)", () => {
  const exact = (iso: string, ns: bigint) => Number(BigInt(Date.parse(iso)) * 1_000_000n + ns);

  it("time.parse_rfc3339_ns is the double nearest the exact value", () => {
    for (const frac of [0n, 1n, 127n, 128n, 129n, 255n, 256n, 123456789n, 999999999n]) {
      const text = `2024-01-01T00:00:00.${frac.toString().padStart(9, "0")}Z`;
      assert.equal(x(`time.parse_rfc3339_ns("${text}")`), exact("2024-01-01T00:00:00Z", frac), text);
    }
  });

  it("keeps the order of times, but a few hundred nanoseconds apart may compare equal", () => {
    const parse = (t: string) => x(`time.parse_rfc3339_ns("${t}")`) as number;
    assert.equal(parse("2024-01-01T00:00:00.000000001Z"), parse("2024-01-01T00:00:00Z"));
    let last = -Infinity;
    for (let ns = 0; ns < 3000; ns += 37) {
      const t = parse(`2024-01-01T00:00:00.${String(ns).padStart(9, "0")}Z`);
      assert.ok(t >= last, `never out of order at ${ns} ns`);
      last = t;
    }
    assert.ok(parse("2024-01-01T00:00:00.000001Z") > parse("2024-01-01T00:00:00Z"));
  });

  it("time.add_date and time.date work on the exact value of the double they get", () => {
    // 1 ns before midnight, rounded: the double just below 2024-03-01 (a multiple of 256 ns).
    const ns = Number(BigInt(Date.UTC(2024, 2, 1)) * 1_000_000n - 256n);
    assert.deepEqual(x("time.date(input)", ns), [2024, 2, 29]);
    assert.deepEqual(x("time.clock(input)", ns), [23, 59, 59]);
    assert.equal(x("time.add_date(input, 0, 0, 1)", ns), Number(BigInt(Date.UTC(2024, 2, 2)) * 1_000_000n - 256n));
  });
});
