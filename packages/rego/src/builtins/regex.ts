import { RE2JS } from "re2js";
import { BuiltinError } from "../errors.js";
import type { Value } from "../value.js";
import type { BuiltinTable } from "./args.js";
import { int, str } from "./args.js";

/**
 * The part of re2js's RE2 object used here: Go's regexp API, whose results
 * are UTF-16 offsets into the JavaScript string (-1 for a group that did not
 * take part).
 */
interface Re2 {
  findAllIndex(s: string, n: number): number[][] | null;
  findAllSubmatchIndex(s: string, n: number): number[][] | null;
}

/** A compiled RE2 pattern: a boolean test, and Go's FindAll family with submatches. */
export interface Regex {
  /** Whether the pattern matches anywhere in `s` (Go's MatchString). */
  test(s: string): boolean;
  /** Successive non-overlapping matches, at most `n` (all when n < 0), as Go's FindAllStringSubmatchIndex. */
  all(s: string, n: number): number[][];
  /** Group numbers by name, for `$name` in replacement templates. */
  names: Record<string, number>;
}

/**
 * Compiles RE2 syntax (Go's regexp, as OPA uses) with re2js, a port of RE2:
 * matching takes time linear in the input, whatever the pattern, so a
 * request cannot make a policy backtrack for minutes. What RE2 refuses
 * (backreferences, lookaround) is an error here too.
 */
export function compileRe2(pattern: string): Regex {
  let re: RE2JS;
  try {
    re = RE2JS.compile(pattern);
  } catch (err) {
    const reason = (err as Error).message.replace(/^error parsing regexp: /, "");
    const hint = /\(\?<?[=!]/.test(pattern) ? " (RE2 has no lookaround)" : "";
    throw new BuiltinError(`invalid regular expression: ${reason}${hint}`);
  }
  const engine = re.re2() as unknown as Re2;
  return {
    test: (s) => re.test(s),
    all: (s, n) => (n === 0 ? [] : (engine.findAllSubmatchIndex(s, n) ?? [])),
    names: re.namedGroups(),
  };
}

/**
 * Compiled patterns. A pattern's lazily built DFA may grow to about 8 MB on
 * long inputs, so patterns known only at evaluation (from input, say) keep
 * only the most recent few; patterns written in policies, seen by compile(),
 * are kept longer.
 */
const written = new Map<string, Regex>();
const recent = new Map<string, Regex>();

function remember(cache: Map<string, Regex>, max: number, pattern: string, re: Regex): Regex {
  if (cache.size >= max) cache.delete(cache.keys().next().value!);
  cache.set(pattern, re);
  return re;
}

/** A compiled pattern; `written` when it is a constant of a policy being compiled. */
export function compileRegex(pattern: string, isWritten = false): Regex {
  const known = written.get(pattern);
  if (known) return known;
  const used = recent.get(pattern);
  if (used) {
    // Most recently used last, so that the least recently used goes first.
    recent.delete(pattern);
    recent.set(pattern, used);
    return used;
  }
  const re = compileRe2(pattern);
  return isWritten ? remember(written, 1000, pattern, re) : remember(recent, 16, pattern, re);
}

/** The text of group `g` of a match (index pairs), "" when it did not take part. */
function group(s: string, m: number[], g: number): string {
  const start = m[2 * g];
  return start === undefined || start < 0 ? "" : s.slice(start, m[2 * g + 1]);
}

/** Go's regexp template expansion: $1, ${1}, $name, ${name}, $$. */
function expand(template: string, s: string, m: number[], names: Record<string, number>): string {
  return template.replace(
    /\$(\$|\{([A-Za-z0-9_]+)\}|([A-Za-z0-9_]+))/g,
    (_all, whole: string, braced?: string, bare?: string) => {
      if (whole === "$") return "$";
      const name = braced ?? bare!;
      if (/^\d+$/.test(name)) return Number(name) < m.length / 2 ? group(s, m, Number(name)) : "";
      const g = names[name];
      return g === undefined ? "" : group(s, m, g);
    },
  );
}

function checkPattern(args: (Value | undefined)[], i = 0): string | undefined {
  const p = args[i];
  if (typeof p !== "string") return undefined;
  try {
    compileRegex(p, true);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** Regular expressions, in RE2 syntax as OPA takes them, matched in linear time. */
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
      for (const m of re.all(s, -1)) {
        end = m[0]!;
        if (m[1] !== 0) out.push(s.slice(beg, end));
        beg = m[1]!;
      }
      if (end !== s.length) out.push(s.slice(beg));
      return out;
    },
    check: (args) => checkPattern(args),
  },
  "regex.find_n": {
    arity: 3,
    fn: (args) => {
      const s = str(args, 1);
      return compileRegex(str(args, 0))
        .all(s, int(args, 2))
        .map((m) => s.slice(m[0], m[1]));
    },
    check: (args) => checkPattern(args),
  },
  "regex.find_all_string_submatch_n": {
    arity: 3,
    fn: (args) => {
      const s = str(args, 1);
      return compileRegex(str(args, 0))
        .all(s, int(args, 2))
        .map((m) => Array.from({ length: m.length / 2 }, (_, g) => group(s, m, g)));
    },
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
      for (const m of re.all(s, -1)) {
        out += s.slice(last, m[0]) + expand(template, s, m, re.names);
        last = m[1]!;
      }
      return out + s.slice(last);
    },
    check: (args) => checkPattern(args, 1),
  },
};
