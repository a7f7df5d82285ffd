import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { compile, RegoError } from "../src/index.js";
import { refused } from "./helpers.js";

describe("syntax errors stop compile with file:line:col", () => {
  it("message format", () => {
    const err = refused("package p\n\nallow if {\n  input.x ==\n}\n", "rego_parse_error", 5, 1, /unexpected "}"/);
    assert.match(err.message, /^test\.rego:5:1: rego_parse_error: /);
    assert.equal(err.reason, 'unexpected "}"');
  });

  it("missing package", () => {
    refused("allow := true", "rego_parse_error", 1, 1, /starts with "package"/);
  });

  it("unterminated string and bad characters", () => {
    refused('package p\n\nx := "abc', "rego_parse_error", 3, 6, /unterminated string/);
    refused("package p\n\nx := 1 ^ 2", "rego_parse_error", 3, 8, /unexpected character "\^"/);
  });

  it("two expressions on one line", () => {
    refused("package p\n\nallow if { true true }", "rego_parse_error", 3, 17, /line break or ";"/);
  });

  it("positions after a multi-line raw string stay right", () => {
    refused("package p\n\nx := `a\nb\nc`\ny := ]", "rego_parse_error", 6, 6, /unexpected "\]"/);
  });

  it("template strings are refused", () => {
    refused('package p\n\nx := $"a {y}"', "rego_parse_error", 3, 6, /template strings/);
  });
});

describe("pre-1.0 syntax is refused with the v1 spelling", () => {
  it("a body without if", () => {
    refused("package p\n\nallow {\n  input.admin\n}", "rego_parse_error", 3, 7, /write `allow if \{ … \}`/);
  });

  it("a v0 partial set", () => {
    refused(
      'package p\n\ndeny[msg] {\n  msg := "x"\n}',
      "rego_parse_error",
      3,
      11,
      /write `deny contains x if \{ … \}`/,
    );
  });

  it("a value rule, a function and an else without if", () => {
    refused("package p\n\nx = 1 {\n  true\n}", "rego_parse_error", 3, 7, /`x := … if \{ … \}`/);
    refused("package p\n\nf(x) = y {\n  y := x\n}", "rego_parse_error", 3, 10, /`f\(…\) := … if \{ … \}`/);
    refused(
      "package p\n\nx := 1 if {\n  false\n} else = 2 {\n  true\n}",
      "rego_parse_error",
      5,
      12,
      /else := … if \{ … \}/,
    );
  });

  it("but default x = v (valid v1) is accepted", () => {
    assert.equal(compile("package p\n\ndefault allow = true").evaluate("data.p.allow"), true);
  });
});

describe("what the engine cannot run stops compile", () => {
  it("an unknown built-in, named, with its position", () => {
    const err = refused(
      "package p\n\nallow if {\n  crypto.x509.parse_certificates(input.cert)\n}",
      "rego_type_error",
      4,
      3,
      /unknown built-in function crypto\.x509\.parse_certificates/,
    );
    assert.ok(err instanceof RegoError);
  });

  it("a misspelt built-in", () => {
    refused("package p\n\nx := cuont([1])", "rego_type_error", 3, 6, /unknown built-in function cuont/);
  });

  it("an undefined function of a package", () => {
    refused("package p\n\nx := data.lib.nope(1)", "rego_type_error", 3, 6, /undefined function data\.lib\.nope/);
  });

  it("a wrong number of arguments", () => {
    refused("package p\n\nx := count([1], [2], 3)", "rego_type_error", 3, 6, /count takes 1 argument, got 3/);
    refused("package p\n\nf(a) := a\nx := f(1, 2, 3)", "rego_type_error", 4, 6, /takes 1 argument, got 3/);
  });

  it("an invalid constant regular expression", () => {
    refused(
      'package p\n\nx if regex.match("(a", input.s)',
      "rego_type_error",
      3,
      6,
      /regex\.match: invalid regular expression/,
    );
    refused('package p\n\nx if regex.match("(?=a)", input.s)', "rego_type_error", 3, 6, /lookaround/);
  });

  it("an unsafe variable, with its position", () => {
    const err = refused(
      'package p\n\nallow if {\n  inptu.user == "admin"\n}',
      "rego_unsafe_var_error",
      4,
      3,
      /var inptu is unsafe/,
    );
    assert.match(err.message, /test\.rego:4:3/);
    refused("package p\n\np := x if { y := 1 }", "rego_unsafe_var_error", 3, 6, /var x is unsafe/);
    refused("package p\n\np if { x := [y | y > 1] }", "rego_unsafe_var_error", 3, 18, /var y is unsafe/);
    refused("package p\n\np if { not input.xs[i] }", "rego_unsafe_var_error", 3, 21, /var i is unsafe/);
    refused("package p\n\np if { x = y }", "rego_unsafe_var_error", 3, 8, /var x is unsafe/);
  });

  it("assigning a variable twice", () => {
    refused("package p\n\np if { x := 1; x := 2 }", "rego_compile_error", 3, 16, /var x assigned above/);
    refused("package p\n\np if { x > 1; x := 2 }", "rego_compile_error", 3, 15, /var x referenced above/);
  });

  it("recursion", () => {
    refused("package p\n\na if b\nb if a", "rego_recursion_error", undefined, undefined, /recursive/);
    refused("package p\n\nf(x) := f(x)", "rego_recursion_error", 3, 1, /rule data\.p\.f is recursive/);
  });

  it("a function used as a value", () => {
    refused("package p\n\nf(x) := x\ny := f", "rego_type_error", 4, 6, /function data\.p\.f is used as a value/);
  });

  it("with on functions and built-ins", () => {
    refused(
      "package p\n\nf(x) := x\ny if { f(1) with f as 2 }",
      "rego_compile_error",
      4,
      undefined,
      /with cannot replace functions/,
    );
    refused(
      "package p\n\ny if { count([]) == 0 with count as 1 }",
      "rego_compile_error",
      3,
      undefined,
      /with can replace input or data only/,
    );
  });

  it("conflicting kinds of rules", () => {
    refused("package p\n\np := 1\np contains 2", "rego_compile_error", 3, 1, /single-value and a multi-value/);
    refused("package p\n\na := 1\na.b := 2", "rego_compile_error", 3, 1, /conflicts with rules under it/);
    refused("package p\n\nf(x) := 1\nf := 2", "rego_compile_error", undefined, undefined, /function and as a rule/);
    refused("package p\n\nf(x) := 1\nf(x, y) := 2", "rego_compile_error", 4, 1, /1 and 2 arguments/);
  });

  it("defaults", () => {
    refused("package p\n\ndefault x := input.y", "rego_compile_error", 3, 1, /must be a constant/);
    refused("package p\n\ndefault x := 1\ndefault x := 2", "rego_compile_error", 4, 1, /multiple default/);
    refused("package p\n\ndefault x", "rego_parse_error", 3, 10, /needs a value/);
  });

  it("imports", () => {
    refused("package p\n\nimport foo.bar\n\nx := 1", "rego_compile_error", 3, 1, /cannot import foo\.bar/);
  });

  it("errors name the module they are in", () => {
    let caught: unknown;
    try {
      compile([
        { name: "ok.rego", source: "package a\n\nx := 1" },
        { name: "bad.rego", source: "package b\n\ny := nope(1)" },
      ]);
    } catch (err) {
      caught = err;
    }
    assert.ok(caught instanceof RegoError);
    assert.equal(caught.location?.file, "bad.rego");
  });
});
