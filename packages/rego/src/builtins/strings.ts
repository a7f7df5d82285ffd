import { BuiltinError } from "../errors.js";
import type { Value } from "../value.js";
import { objectEntries, RegoSet } from "../value.js";
import type { BuiltinTable } from "./args.js";
import { arr, hasSurrogates, int, num, obj, runes, str, strings, typeError } from "./args.js";
import { sprintf } from "./sprintf.js";

/** Code-point index of `sub` in `s` from UTF-16 index `i`, as OPA counts (runes). */
function runeIndex(s: string, i: number): number {
  return hasSurrogates(s) ? Array.from(s.slice(0, i)).length : i;
}

/** Strings, or one string, of a string/array/set operand. */
function stringOrStrings(args: Value[], i: number): string[] {
  const v = args[i]!;
  if (typeof v === "string") return [v];
  if (Array.isArray(v) || v instanceof RegoSet) return strings(args, i);
  throw typeError(i, "one of {string, array, set}", v);
}

function trimLeftSet(s: string, cut: Set<string>): string {
  const rs = runes(s);
  let i = 0;
  while (i < rs.length && cut.has(rs[i]!)) i++;
  return rs.slice(i).join("");
}

function trimRightSet(s: string, cut: Set<string>): string {
  const rs = runes(s);
  let j = rs.length;
  while (j > 0 && cut.has(rs[j - 1]!)) j--;
  return rs.slice(0, j).join("");
}

/** Go's unicode.IsSpace set. */
const goSpace =
  /^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+|[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/g;

/** Go's strings.NewReplacer: at each position the first pattern (in argument order) that matches is replaced. */
function replaceN(pairs: [string, string][], s: string): string {
  let out = "";
  let i = 0;
  const empty = pairs.find(([old]) => old === "");
  while (i <= s.length) {
    const hit = pairs.find(([old]) => old !== "" && s.startsWith(old, i));
    if (hit) {
      out += hit[1];
      i += hit[0].length;
      continue;
    }
    if (empty) out += empty[1];
    if (i < s.length) {
      const cp = s.codePointAt(i)!;
      const ch = String.fromCodePoint(cp);
      out += ch;
      i += ch.length;
    } else break;
  }
  return out;
}

/**
 * Go's strings.ToUpper/ToLower map each code point by Unicode's simple case
 * mapping: "ß" stays "ß" (JavaScript's full mapping gives "SS"), "İ" lowers
 * to "i", and there is no final-sigma rule.
 */
function mapCase(s: string, upper: boolean): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: ASCII range check.
  if (/^[\x00-\x7f]*$/.test(s)) return upper ? s.toUpperCase() : s.toLowerCase();
  let out = "";
  for (const ch of s) {
    const m = upper ? ch.toUpperCase() : ch.toLowerCase();
    if (m.length === 1 || Array.from(m).length === 1) {
      out += m;
      continue;
    }
    const c = ch.codePointAt(0)!;
    if (!upper && c === 0x130) out += "i";
    else if (upper && c >= 0x1f80 && c <= 0x1faf && (c & 0xf) < 8) out += String.fromCodePoint(c + 8);
    else if (upper && (c === 0x1fb3 || c === 0x1fc3 || c === 0x1ff3)) out += String.fromCodePoint(c + 9);
    else out += ch;
  }
  return out;
}

/** String built-ins, sprintf and format_int. */
export const stringBuiltins: BuiltinTable = {
  concat: { arity: 2, fn: (args) => strings(args, 1).join(str(args, 0)) },
  contains: { arity: 2, fn: (args) => str(args, 0).includes(str(args, 1)) },
  startswith: { arity: 2, fn: (args) => str(args, 0).startsWith(str(args, 1)) },
  endswith: { arity: 2, fn: (args) => str(args, 0).endsWith(str(args, 1)) },
  lower: { arity: 1, fn: (args) => mapCase(str(args, 0), false) },
  upper: { arity: 1, fn: (args) => mapCase(str(args, 0), true) },
  split: {
    arity: 2,
    fn: (args) => {
      const s = str(args, 0);
      const d = str(args, 1);
      return d === "" ? runes(s) : s.split(d);
    },
  },
  replace: {
    arity: 3,
    fn: (args) => {
      const s = str(args, 0);
      const old = str(args, 1);
      const rep = str(args, 2);
      if (old === "")
        return (
          rep +
          runes(s)
            .map((r) => r + rep)
            .join("")
        );
      return s.split(old).join(rep);
    },
  },
  "strings.replace_n": {
    arity: 2,
    fn: (args) => {
      const pairs: [string, string][] = [];
      for (const [k, v] of objectEntries(obj(args, 0))) {
        if (typeof k !== "string" || typeof v !== "string") throw typeError(0, "object of strings", args[0]!);
        pairs.push([k, v]);
      }
      return replaceN(pairs, str(args, 1));
    },
  },
  trim: {
    arity: 2,
    fn: (args) => {
      const cut = new Set(runes(str(args, 1)));
      return trimRightSet(trimLeftSet(str(args, 0), cut), cut);
    },
  },
  trim_left: { arity: 2, fn: (args) => trimLeftSet(str(args, 0), new Set(runes(str(args, 1)))) },
  trim_right: { arity: 2, fn: (args) => trimRightSet(str(args, 0), new Set(runes(str(args, 1)))) },
  trim_prefix: {
    arity: 2,
    fn: (args) => {
      const s = str(args, 0);
      const p = str(args, 1);
      return s.startsWith(p) ? s.slice(p.length) : s;
    },
  },
  trim_suffix: {
    arity: 2,
    fn: (args) => {
      const s = str(args, 0);
      const p = str(args, 1);
      return p !== "" && s.endsWith(p) ? s.slice(0, s.length - p.length) : s;
    },
  },
  trim_space: { arity: 1, fn: (args) => str(args, 0).replace(goSpace, "") },
  substring: {
    arity: 3,
    fn: (args) => {
      const s = str(args, 0);
      const start = int(args, 1);
      const length = int(args, 2);
      if (start < 0) throw new BuiltinError("negative offset");
      const rs = runes(s);
      if (start >= rs.length) return "";
      return (length < 0 ? rs.slice(start) : rs.slice(start, start + length)).join("");
    },
  },
  indexof: {
    arity: 2,
    fn: (args) => {
      const s = str(args, 0);
      const sub = str(args, 1);
      if (sub === "") throw new BuiltinError("empty search character");
      const i = s.indexOf(sub);
      return i < 0 ? -1 : runeIndex(s, i);
    },
  },
  indexof_n: {
    arity: 2,
    fn: (args) => {
      const s = str(args, 0);
      const sub = str(args, 1);
      if (sub === "") throw new BuiltinError("empty search character");
      const out: number[] = [];
      for (let i = s.indexOf(sub); i >= 0; i = s.indexOf(sub, i + 1)) out.push(runeIndex(s, i));
      return out;
    },
  },
  "strings.reverse": { arity: 1, fn: (args) => runes(str(args, 0)).reverse().join("") },
  "strings.count": {
    arity: 2,
    fn: (args) => {
      const s = str(args, 0);
      const sub = str(args, 1);
      if (sub === "") return runes(s).length + 1;
      return s.split(sub).length - 1;
    },
  },
  "strings.any_prefix_match": {
    arity: 2,
    fn: (args) => {
      const bases = stringOrStrings(args, 1);
      return stringOrStrings(args, 0).some((s) => bases.some((b) => s.startsWith(b)));
    },
  },
  "strings.any_suffix_match": {
    arity: 2,
    fn: (args) => {
      const bases = stringOrStrings(args, 1);
      return stringOrStrings(args, 0).some((s) => bases.some((b) => s.endsWith(b)));
    },
  },
  sprintf: { arity: 2, fn: (args) => sprintf(str(args, 0), arr(args, 1)) },
  format_int: {
    arity: 2,
    fn: (args) => {
      // big.Float.Int: toward zero.
      const n = Math.trunc(num(args, 0));
      const base = int(args, 1);
      if (![2, 8, 10, 16].includes(base)) throw new BuiltinError("operand 2 must be one of {2, 8, 10, 16}");
      return Number.isSafeInteger(n) ? n.toString(base) : BigInt(n).toString(base);
    },
  },
};
