import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { policy } from "./helpers.js";

// Patterns that make a backtracking engine take exponential (or high
// polynomial) time in the input's length: JavaScript's RegExp takes about
// 100 ms for `^(a+)+$` on 24 "a"s and a "b", and four times as long for each
// two more, so the 40-character inputs below would take hours. Policies see
// request bodies, so that would let one request freeze the gateway. RE2 (and
// the glob matcher) take time linear in the input: each case must finish well
// within a generous bound.

const BOUND_MS = 1_000;

/** Evaluates `p` with `input`, asserting how long it took; returns the value. */
function timed(body: string, input: unknown): unknown {
  const compiled = policy(body);
  const started = performance.now();
  const value = compiled.evaluate("data.test.p", { input });
  const ms = performance.now() - started;
  assert.ok(ms < BOUND_MS, `${body} took ${Math.round(ms)} ms on ${JSON.stringify(input).slice(0, 60)}…`);
  return value;
}

const evil = `${"a".repeat(40)}!`;

describe("regular expressions take linear time (RE2)", () => {
  for (const pattern of ["^(a+)+$", "^(a|aa)+$", "^(a|a?)+$", "^(a*)*$", "^(.*a){20}$", "^(\\\\w+\\\\s?)*$"]) {
    it(`regex.match("${pattern}") on 40 "a"s and a "!" is false, quickly`, () => {
      assert.equal(timed(`p := regex.match("${pattern}", input.s)`, { s: evil }), false);
    });
  }

  it("every regex built-in, on a pathological pattern", () => {
    const p = "(a+)+$";
    assert.deepEqual(timed(`p := regex.find_n("${p}", input.s, -1)`, { s: evil }), []);
    assert.deepEqual(timed(`p := regex.find_all_string_submatch_n("${p}", input.s, -1)`, { s: evil }), []);
    assert.deepEqual(timed(`p := regex.split("${p}", input.s)`, { s: evil }), [evil]);
    assert.equal(timed(`p := regex.replace(input.s, "${p}", "x")`, { s: evil }), evil);
    assert.equal(timed(`p := regex.match("${p}", input.s)`, { s: `${"a".repeat(40)}` }), true);
  });

  it("a long input (200,000 characters) and a pattern of nested repetitions", () => {
    const s = `${"ab".repeat(100_000)}!`;
    assert.equal(timed('p := regex.match("^((a|b)*)*(a|b)*$", input.s)', { s }), false);
    assert.equal(timed('p := count(regex.find_n("(ab)+", input.s, -1))', { s }), 1);
  });
});

describe("glob.match takes linear time", () => {
  it('"*a*a*a*a*a*b" on 60 "a"s is false, quickly', () => {
    assert.equal(timed('p := glob.match("*a*a*a*a*a*b", [], input.s)', { s: "a".repeat(60) }), false);
  });

  it("many stars, super stars and alternatives on a long input", () => {
    const s = "a".repeat(5_000);
    assert.equal(timed(`p := glob.match("${"*a".repeat(30)}*b", [], input.s)`, { s }), false);
    assert.equal(timed(`p := glob.match("${"**a".repeat(30)}**b", ["."], input.s)`, { s }), false);
    assert.equal(timed(`p := glob.match("${"{*a,*aa,a*}".repeat(20)}b", null, input.s)`, { s }), false);
    assert.equal(timed(`p := glob.match("${"*a".repeat(30)}*", [], input.s)`, { s }), true);
  });

  it("delimiters still bound * on long inputs", () => {
    const s = `${"a.".repeat(10_000)}b`;
    assert.equal(timed('p := glob.match("*b", [], input.s)', { s }), false);
    assert.equal(timed('p := glob.match("**b", [], input.s)', { s }), true);
    assert.equal(timed(`p := glob.match("${"*.".repeat(10_000)}b", [], input.s)`, { s }), true);
  });
});
