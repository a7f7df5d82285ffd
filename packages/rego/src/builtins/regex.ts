import { BuiltinError } from "../errors.js";
import type { Value } from "../value.js";
import type { BuiltinTable } from "./args.js";
import { int, str } from "./args.js";

const posix: Record<string, string> = {
  alnum: "0-9A-Za-z",
  alpha: "A-Za-z",
  ascii: "\\x00-\\x7f",
  blank: "\\t ",
  cntrl: "\\x00-\\x1f\\x7f",
  digit: "0-9",
  graph: "!-~",
  lower: "a-z",
  print: " -~",
  punct: "!-\\/:-@\\[-`{-~",
  space: "\\t\\n\\v\\f\\r ",
  upper: "A-Z",
  word: "0-9A-Za-z_",
  xdigit: "0-9A-Fa-f",
};

/** Unicode general categories (RE2 takes these and script names, such as Greek, bare; JavaScript wants Script=Greek). */
const categories = new Set(
  "C Cc Cf Co Cs L Ll Lm Lo Lt Lu M Mc Me Mn N Nd Nl No P Pc Pd Pe Pf Pi Po Ps S Sc Sk Sm So Z Zl Zp Zs".split(" "),
);

function unicodeClass(name: string): string {
  if (name === "Any") return "Any";
  if (!/^[A-Za-z_]+$/.test(name)) throw new BuiltinError(`invalid character class range: \\p{${name}}`);
  return categories.has(name) ? name : `Script=${name}`;
}

/** Characters JavaScript lets one escape with a backslash in unicode mode, outside and inside classes. */
const jsSyntax = new Set("^$\\.*+?()[]{}|/");

/**
 * Go (RE2) syntax in JavaScript's: leading flag groups become flags, `\z`
 * and `\A` anchors, `(?P<name>` groups, POSIX classes, ASCII `\s`. What RE2
 * refuses (backreferences, lookaround) or JavaScript cannot do (flag groups
 * in the middle) is an error, never a different match.
 */
export function translateRegex(pattern: string): RegExp {
  let flags = "u";
  let i = 0;
  const lead = /^\(\?([imsU]+)\)/.exec(pattern);
  if (lead) {
    for (const f of lead[1]!) {
      if (f === "U") throw new BuiltinError("the (?U) flag is not supported");
      if (!flags.includes(f)) flags += f;
    }
    i = lead[0].length;
  }
  const dotAll = flags.includes("s");
  let out = "";
  let inClass = false;
  while (i < pattern.length) {
    const c = pattern[i]!;
    if (c === "\\") {
      const n = pattern[i + 1];
      if (n === undefined) throw new BuiltinError("trailing backslash at end of expression");
      if (n >= "1" && n <= "9")
        throw new BuiltinError(`invalid escape sequence: \\${n} (backreferences are not supported by RE2)`);
      if (n === "z") {
        out += inClass ? "z" : "$(?![\\s\\S])";
        i += 2;
        continue;
      }
      if (n === "A") {
        out += "^(?<![\\s\\S])";
        i += 2;
        continue;
      }
      if (n === "Q") {
        const end = pattern.indexOf("\\E", i + 2);
        const lit = pattern.slice(i + 2, end < 0 ? pattern.length : end);
        out += lit.replace(/[\\^$.*+?()[\]{}|/-]/g, "\\$&");
        i = end < 0 ? pattern.length : end + 2;
        continue;
      }
      if (n === "s" || n === "S") {
        const set = "\\t\\n\\f\\r ";
        out += inClass ? (n === "s" ? set : "") : n === "s" ? `[${set}]` : `[^${set}]`;
        if (inClass && n === "S") throw new BuiltinError("\\S inside a character class is not supported");
        i += 2;
        continue;
      }
      if (n === "p" || n === "P") {
        let name: string;
        if (pattern[i + 2] === "{") {
          const end = pattern.indexOf("}", i + 3);
          if (end < 0) throw new BuiltinError("invalid character class range");
          name = pattern.slice(i + 3, end);
          i = end + 1;
        } else {
          name = pattern[i + 2] ?? "";
          i += 3;
        }
        let neg = n === "P";
        if (name.startsWith("^")) {
          neg = !neg;
          name = name.slice(1);
        }
        out += `\\${neg ? "P" : "p"}{${unicodeClass(name)}}`;
        continue;
      }
      if (n === "x" && pattern[i + 2] === "{") {
        const end = pattern.indexOf("}", i + 3);
        if (end < 0) throw new BuiltinError("invalid escape sequence: \\x{");
        out += `\\u{${pattern.slice(i + 3, end)}}`;
        i = end + 1;
        continue;
      }
      if (/[A-Za-z0-9]/.test(n)) {
        if (!"dDwWbBtnrfvx0".includes(n)) throw new BuiltinError(`invalid escape sequence: \\${n}`);
        if ((n === "b" || n === "B") && inClass) throw new BuiltinError(`invalid escape sequence: \\${n}`);
        out += `\\${n}`;
        i += 2;
        continue;
      }
      // Escaped punctuation: a literal character.
      out += jsSyntax.has(n) || (inClass && n === "-") ? `\\${n}` : `\\u{${n.codePointAt(0)!.toString(16)}}`;
      i += 2;
      continue;
    }
    if (inClass) {
      if (c === "[" && pattern[i + 1] === ":") {
        const end = pattern.indexOf(":]", i + 2);
        const name = end < 0 ? "" : pattern.slice(i + 2, end);
        const negated = name.startsWith("^");
        const cls = posix[negated ? name.slice(1) : name];
        if (!cls) throw new BuiltinError(`invalid character class range: [:${name}:]`);
        if (negated) throw new BuiltinError("negated POSIX classes are not supported");
        out += cls;
        i = end + 2;
        continue;
      }
      if (c === "]") inClass = false;
      out += c === "[" ? "\\[" : c;
      i++;
      continue;
    }
    if (c === "[") {
      inClass = true;
      out += c;
      i++;
      if (pattern[i] === "^") {
        out += "^";
        i++;
      }
      // A "]" first in a class is a literal in RE2.
      if (pattern[i] === "]") {
        out += "\\]";
        i++;
      }
      continue;
    }
    if (c === "(" && pattern[i + 1] === "?") {
      if (pattern.startsWith("(?P<", i)) {
        out += "(?<";
        i += 4;
        continue;
      }
      if (pattern.startsWith("(?<", i) && pattern[i + 3] !== "=" && pattern[i + 3] !== "!") {
        out += "(?<";
        i += 3;
        continue;
      }
      if (pattern.startsWith("(?:", i)) {
        out += "(?:";
        i += 3;
        continue;
      }
      throw new BuiltinError(
        `invalid or unsupported Perl syntax: ${pattern.slice(i, i + 4)} (RE2 has no lookaround; flag groups are supported only at the start)`,
      );
    }
    if (c === "{" && !/^\{\d+(,\d*)?\}/.test(pattern.slice(i))) {
      // Not a repetition: a literal brace in RE2 (JavaScript's unicode mode wants it escaped).
      out += "\\{";
      i++;
      continue;
    }
    if (c === "}" || c === "]") {
      out += `\\${c}`;
      i++;
      continue;
    }
    if (c === "{") {
      const end = pattern.indexOf("}", i);
      out += pattern.slice(i, end + 1);
      i = end + 1;
      continue;
    }
    if (c === ".") {
      // RE2's "." is any character but "\n" (JavaScript's also leaves out \r, U+2028 and U+2029).
      out += dotAll ? "[\\s\\S]" : "[^\\n]";
      i++;
      continue;
    }
    out += c;
    i++;
  }
  if (inClass) throw new BuiltinError("missing closing ]");
  try {
    return new RegExp(out, flags);
  } catch (err) {
    throw new BuiltinError(`invalid regular expression: ${(err as Error).message}`);
  }
}

const cache = new Map<string, RegExp>();

/** A compiled pattern; the most recent thousand are kept. */
export function compileRegex(pattern: string): RegExp {
  let re = cache.get(pattern);
  if (re) return re;
  re = translateRegex(pattern);
  if (cache.size >= 1000) cache.delete(cache.keys().next().value!);
  cache.set(pattern, re);
  return re;
}

function global(re: RegExp): RegExp {
  return new RegExp(re.source, `${re.flags}g`);
}

/** Go's regexp template expansion: $1, ${1}, $name, ${name}, $$. */
function expand(template: string, m: RegExpExecArray): string {
  return template.replace(
    /\$(\$|\{([A-Za-z0-9_]+)\}|([A-Za-z0-9_]+))/g,
    (_all, whole: string, braced?: string, bare?: string) => {
      if (whole === "$") return "$";
      const name = braced ?? bare!;
      if (/^\d+$/.test(name)) return m[Number(name)] ?? "";
      return m.groups?.[name] ?? "";
    },
  );
}

/**
 * At most `n` matches (all when n < 0), as Go's FindAll: successive
 * non-overlapping matches, where an empty match right after the previous
 * match is skipped.
 */
function matches(re: RegExp, s: string, n: number): RegExpExecArray[] {
  const out: RegExpExecArray[] = [];
  const g = global(re);
  let pos = 0;
  let prevEnd = -1;
  while ((n < 0 || out.length < n) && pos <= s.length) {
    g.lastIndex = pos;
    const m = g.exec(s);
    if (!m) break;
    const end = m.index + m[0].length;
    let accept = true;
    if (end === pos) {
      if (m.index === prevEnd) accept = false;
      pos += pos < s.length && s.codePointAt(pos)! > 0xffff ? 2 : 1;
    } else pos = end;
    prevEnd = end;
    if (accept) out.push(m);
  }
  return out;
}

function checkPattern(args: (Value | undefined)[], i = 0): string | undefined {
  const p = args[i];
  if (typeof p !== "string") return undefined;
  try {
    compileRegex(p);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** Regular expressions, in RE2 syntax as OPA takes them. */
export const regexBuiltins: BuiltinTable = {
  "regex.match": {
    arity: 2,
    fn: (args) => compileRegex(str(args, 0)).test(str(args, 1)),
    check: (args) => checkPattern(args),
  },
  "regex.is_valid": {
    arity: 1,
    fn: ([p]) => {
      if (typeof p !== "string") return false;
      try {
        compileRegex(p);
        return true;
      } catch {
        return false;
      }
    },
  },
  "regex.split": {
    arity: 2,
    fn: (args) => {
      // Go's Regexp.Split(s, -1).
      const pattern = str(args, 0);
      const re = compileRegex(pattern);
      const s = str(args, 1);
      if (pattern !== "" && s === "") return [""];
      const out: string[] = [];
      let beg = 0;
      let end = 0;
      for (const m of matches(re, s, -1)) {
        end = m.index;
        const stop = m.index + m[0].length;
        if (stop !== 0) out.push(s.slice(beg, end));
        beg = stop;
      }
      if (end !== s.length) out.push(s.slice(beg));
      return out;
    },
    check: (args) => checkPattern(args),
  },
  "regex.find_n": {
    arity: 3,
    fn: (args) => matches(compileRegex(str(args, 0)), str(args, 1), int(args, 2)).map((m) => m[0]),
    check: (args) => checkPattern(args),
  },
  "regex.find_all_string_submatch_n": {
    arity: 3,
    fn: (args) =>
      matches(compileRegex(str(args, 0)), str(args, 1), int(args, 2)).map((m) => Array.from(m, (g) => g ?? "")),
    check: (args) => checkPattern(args),
  },
  "regex.replace": {
    arity: 3,
    fn: (args) => {
      const s = str(args, 0);
      const re = compileRegex(str(args, 1));
      const template = str(args, 2);
      let out = "";
      let last = 0;
      for (const m of matches(re, s, -1)) {
        out += s.slice(last, m.index) + expand(template, m);
        last = m.index + m[0].length;
      }
      return out + s.slice(last);
    },
    check: (args) => checkPattern(args, 1),
  },
};
