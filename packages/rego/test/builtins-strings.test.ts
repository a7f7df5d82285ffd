import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { q } from "./helpers.js";

/** The value of one expression. */
const x = (expr: string) => q(`x := ${expr}`);

describe("string built-ins", () => {
  it("concat", () => {
    assert.equal(x('concat(", ", ["a", "b"])'), "a, b");
    assert.equal(x('concat("-", {"b", "a"})'), "a-b");
    assert.equal(x('concat("-", [])'), "");
    assert.equal(x('concat("-", [1])'), undefined);
  });

  it("contains, startswith, endswith", () => {
    assert.deepEqual(x('[contains("abc", "b"), contains("abc", "d"), contains("abc", "")]'), [true, false, true]);
    assert.deepEqual(x('[startswith("abc", "ab"), startswith("abc", "bc")]'), [true, false]);
    assert.deepEqual(x('[endswith("abc", "bc"), endswith("abc", "ab")]'), [true, false]);
    assert.equal(x('contains(1, "a")'), undefined);
  });

  it("lower, upper", () => {
    assert.deepEqual(x('[lower("AbC"), upper("aBc")]'), ["abc", "ABC"]);
  });

  it("split", () => {
    assert.deepEqual(x('split("a.b.c", ".")'), ["a", "b", "c"]);
    assert.deepEqual(x('split("abc", "")'), ["a", "b", "c"]);
    assert.deepEqual(x('split("", ".")'), [""]);
    assert.deepEqual(x('split("a😀b", "")'), ["a", "😀", "b"]);
  });

  it("replace and strings.replace_n", () => {
    assert.equal(x('replace("aaa", "a", "b")'), "bbb");
    assert.equal(x('replace("abc", "", "-")'), "-a-b-c-");
    assert.equal(x('strings.replace_n({"a": "1", "b": "2"}, "abcab")'), "12c12");
  });

  it("trim family", () => {
    assert.equal(x('trim("  abc  ", " ")'), "abc");
    assert.equal(x('trim("xxabcxy", "xy")'), "abc");
    assert.equal(x('trim_left("xxabcxx", "x")'), "abcxx");
    assert.equal(x('trim_right("xxabcxx", "x")'), "xxabc");
    assert.equal(x('trim_prefix("prefix-abc", "prefix-")'), "abc");
    assert.equal(x('trim_prefix("abc", "zz")'), "abc");
    assert.equal(x('trim_suffix("abc.rego", ".rego")'), "abc");
    assert.equal(x('trim_space("\\t abc \\n")'), "abc");
  });

  it("substring counts code points; negative length is to the end", () => {
    assert.equal(x('substring("abcdef", 1, 3)'), "bcd");
    assert.equal(x('substring("abcdef", 2, -1)'), "cdef");
    assert.equal(x('substring("abc", 5, 1)'), "");
    assert.equal(x('substring("😀bc", 1, 1)'), "b");
    assert.equal(x('substring("abc", -1, 1)'), undefined);
  });

  it("indexof, indexof_n", () => {
    assert.equal(x('indexof("abcabc", "c")'), 2);
    assert.equal(x('indexof("abc", "z")'), -1);
    assert.equal(x('indexof("😀a", "a")'), 1);
    assert.deepEqual(x('indexof_n("sad book", "o")'), [5, 6]);
    assert.deepEqual(x('indexof_n("aaa", "aa")'), [0, 1]);
  });

  it("strings.reverse, strings.count, any_prefix_match, any_suffix_match", () => {
    assert.equal(x('strings.reverse("abc")'), "cba");
    assert.equal(x('strings.count("cheese", "e")'), 3);
    assert.equal(x('strings.any_prefix_match("abc", ["x", "ab"])'), true);
    assert.equal(x('strings.any_prefix_match(["xyz", "abc"], "q")'), false);
    assert.equal(x('strings.any_suffix_match("abc", {"bc"})'), true);
  });

  it("format_int truncates toward zero (as OPA's big.Float.Int) and takes bases 2, 8, 10, 16", () => {
    assert.deepEqual(
      x("[format_int(255, 16), format_int(8, 2), format_int(8, 8), format_int(3.9, 10), format_int(-1.5, 10)]"),
      ["ff", "1000", "10", "3", "-1"],
    );
    assert.deepEqual(x("[format_int(-5.9, 10), format_int(-255, 16)]"), ["-5", "-ff"]);
    assert.equal(x("format_int(10, 3)"), undefined);
  });

  it("count of a string counts code points", () => {
    assert.equal(x('count("héllo😀")'), 6);
  });
});

describe("sprintf (Go's fmt, as OPA passes values)", () => {
  it("strings, integers and composites with %v and %s", () => {
    assert.equal(x('sprintf("%s is %d", ["ada", 36])'), "ada is 36");
    assert.equal(x('sprintf("%v %v %v", ["a", 1, 1.5])'), "a 1 1.5");
    assert.equal(x('sprintf("%v", [[1, "a"]])'), '[1, "a"]');
    assert.equal(x('sprintf("%v", [{"k": {1, 2}}])'), '{"k": {1, 2}}');
    assert.equal(x('sprintf("%v %v %v", [true, null, set()])'), "true null set()");
  });

  it("Go's mismatched verbs, missing and extra arguments", () => {
    assert.equal(x('sprintf("%d", ["a"])'), "%!d(string=a)");
    assert.equal(x('sprintf("%s", [1])'), "%!s(int=1)");
    assert.equal(x('sprintf("%.2f", [1])'), "%!f(int=1)");
    assert.equal(x('sprintf("%d %d", [1])'), "1 %!d(MISSING)");
    assert.equal(x('sprintf("%d", [1, 2])'), "1%!(EXTRA int=2)");
  });

  it("floats: %f %e %g %v", () => {
    assert.equal(x('sprintf("%.2f", [3.14159])'), "3.14");
    assert.equal(x('sprintf("%f", [1.5])'), "1.500000");
    assert.equal(x('sprintf("%e", [1234.5678])'), "1.234568e+03");
    assert.equal(x('sprintf("%g", [0.00001234])'), "1.234e-05");
    assert.equal(x('sprintf("%v", [1234567.5])'), "1.2345675e+06");
    assert.equal(x('sprintf("%v", [0.5])'), "0.5");
  });

  it("width, flags, bases, quoting, percent", () => {
    assert.equal(x('sprintf("[%5d|%-5d|%05d|%+d]", [42, 42, 42, 42])'), "[   42|42   |00042|+42]");
    assert.equal(x('sprintf("[%6s|%-6s]", ["ab", "ab"])'), "[    ab|ab    ]");
    assert.equal(x('sprintf("%x %X %o %b %#x", [255, 255, 8, 5, 255])'), "ff FF 10 101 0xff");
    assert.equal(x('sprintf("%q", ["a\\"b"])'), '"a\\"b"');
    assert.equal(x('sprintf("%x", ["hi"])'), "6869");
    assert.equal(x('sprintf("100%%", [])'), "100%");
    assert.equal(x('sprintf("%.3s", ["abcdef"])'), "abc");
  });

  it("needs an array of arguments", () => {
    assert.equal(x('sprintf("%s", "a")'), undefined);
  });
});
