import assert from "node:assert/strict";
import { it } from "node:test";
import { compileGlob } from "../src/streams/glob.js";

it("'*' alone matches every name, including odd ones", () => {
  const any = compileGlob("*");
  for (const name of ["a", "", "x y", "日本", "a\nb"]) assert.ok(any(name));
});

it("patterns are anchored at both ends", () => {
  const m = compileGlob("shop-*");
  assert.ok(m("shop-eu"));
  assert.ok(m("shop-"));
  assert.ok(!m("xshop-eu"));
  assert.ok(!m("shop"));
  assert.ok(compileGlob("*-eu")("shop-eu"));
  assert.ok(!compileGlob("*-eu")("shop-eux"));
});

it("'?' matches exactly one character, counting code points", () => {
  const m = compileGlob("v?");
  assert.ok(m("v1"));
  assert.ok(m("v😀"));
  assert.ok(!m("v"));
  assert.ok(!m("v12"));
});

it("regular-expression characters in a pattern are literal", () => {
  for (const literal of ["a.b", "(x)", "[y]", "a-b", "a\\b", "a/b", "^$", "a|b", "{1}", "a+b"]) {
    const m = compileGlob(`${literal}*`);
    assert.ok(m(`${literal}tail`), literal);
    assert.ok(!m(`Z${literal}`), literal);
  }
  assert.ok(!compileGlob("a.b")("axb"), "a dot is not a wildcard");
});

it("a pattern without wildcards is an exact match", () => {
  const m = compileGlob("orders");
  assert.ok(m("orders"));
  assert.ok(!m("orders2"));
});

it("a pathological pattern matches in linear-ish time", () => {
  const m = compileGlob("*a*a*a*a*a*a*a*a*a*a*a*a*b");
  const started = performance.now();
  assert.ok(!m("a".repeat(255)));
  assert.ok(m(`${"a".repeat(254)}b`));
  // A backtracking regular expression takes minutes here; the walk takes microseconds.
  assert.ok(performance.now() - started < 1_000);
});

it("stars match across repeated prefixes", () => {
  assert.ok(compileGlob("a*b*c")("aXbYbZc"));
  assert.ok(compileGlob("*ab")("aab"));
  assert.ok(!compileGlob("a*b")("aXbY"));
  assert.ok(compileGlob("**")(""));
  assert.ok(compileGlob("a?c*")("abc"));
});
