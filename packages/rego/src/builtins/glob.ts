import { BuiltinError } from "../errors.js";
import type { BuiltinTable } from "./args.js";
import { str, typeError } from "./args.js";

const reSpecial = /[\\^$.*+?()[\]{}|/-]/g;

function escapeRe(s: string): string {
  return s.replace(reSpecial, "\\$&");
}

/** A character as a JavaScript regex escape, safe inside and outside classes. */
function escapeChar(c: string): string {
  return `\\u{${c.codePointAt(0)!.toString(16)}}`;
}

/**
 * A character class of gobwas/glob, which OPA uses: after `[` (and an
 * optional `!`), either one range `a-z` or a list of characters (where `-`
 * is an ordinary character and `\` escapes), then `]`. Anything else, such
 * as two ranges `[a-z0-9]`, is a syntax error in OPA, so it is here too.
 * Returns the regex text and the index after the class.
 */
function globClass(chars: string[], start: number): [string, number] {
  let i = start;
  let not = "";
  if (chars[i] === "!") {
    not = "^";
    i++;
  }
  if (chars[i] !== undefined && chars[i + 1] === "-") {
    const lo = chars[i]!;
    const hi = chars[i + 2];
    if (hi === undefined) throw new BuiltinError("glob: unexpected end of input in a character range");
    if (chars[i + 3] !== "]") {
      throw new BuiltinError(
        "glob: expected close range character (a class holds one range, such as [a-z], or a list, such as [abc])",
      );
    }
    if (hi.codePointAt(0)! < lo.codePointAt(0)!) throw new BuiltinError("glob: range hi character is less than lo");
    return [`[${not}${escapeChar(lo)}-${escapeChar(hi)}]`, i + 4];
  }
  let body = "";
  let n = 0;
  for (; i < chars.length; i++) {
    const c = chars[i]!;
    if (c === "\\") {
      i++;
      if (i >= chars.length) break;
      body += escapeChar(chars[i]!);
      n++;
    } else if (c === "]") {
      if (n === 0) throw new BuiltinError("glob: could not parse range (empty character class)");
      return [`[${not}${body}]`, i + 1];
    } else {
      body += escapeChar(c);
      n++;
    }
  }
  throw new BuiltinError("glob: unexpected end of input: unclosed [");
}

/**
 * The glob syntax OPA takes (gobwas/glob): `*` any run without delimiters,
 * `**` any run, `?` one character that is not a delimiter, `[abc]`, `[a-z]`,
 * `[!abc]`, `{a,b}` alternatives, `\` escapes.
 */
function globToRegex(pattern: string, delimiters: string[]): RegExp {
  const cls = delimiters.length === 0 ? "[\\s\\S]" : `[^${delimiters.map(escapeChar).join("")}]`;
  let i = 0;
  const chars = Array.from(pattern);
  const parse = (inAlt: boolean): string => {
    let out = "";
    while (i < chars.length) {
      const c = chars[i]!;
      if (inAlt && (c === "," || c === "}")) return out;
      i++;
      switch (c) {
        case "\\": {
          const n = chars[i++];
          if (n === undefined) throw new BuiltinError("glob: trailing backslash");
          out += escapeRe(n);
          break;
        }
        case "*":
          if (chars[i] === "*") {
            i++;
            out += "[\\s\\S]*";
          } else out += `${cls}*`;
          break;
        case "?":
          out += cls;
          break;
        case "[": {
          const [re, next] = globClass(chars, i);
          out += re;
          i = next;
          break;
        }
        case "{": {
          const alts: string[] = [];
          while (true) {
            alts.push(parse(true));
            const end = chars[i++];
            if (end === "}") break;
            if (end !== ",") throw new BuiltinError("glob: unclosed {");
          }
          out += `(?:${alts.join("|")})`;
          break;
        }
        default:
          out += escapeRe(c);
      }
    }
    if (inAlt) throw new BuiltinError("glob: unclosed {");
    return out;
  };
  const body = parse(false);
  try {
    return new RegExp(`^${body}$`, "u");
  } catch (err) {
    throw new BuiltinError(`invalid glob pattern: ${(err as Error).message}`);
  }
}

const cache = new Map<string, RegExp>();

function compileGlob(pattern: string, delimiters: string[]): RegExp {
  const key = `${delimiters.join("\u0000")}\u0001${pattern}`;
  let re = cache.get(key);
  if (!re) {
    re = globToRegex(pattern, delimiters);
    if (cache.size >= 1000) cache.delete(cache.keys().next().value!);
    cache.set(key, re);
  }
  return re;
}

/** glob.match and glob.quote_meta. */
export const globBuiltins: BuiltinTable = {
  "glob.match": {
    arity: 3,
    fn: (args) => {
      const pattern = str(args, 0);
      const d = args[1]!;
      let delimiters: string[];
      if (d === null) delimiters = [];
      else if (Array.isArray(d)) {
        delimiters = [];
        for (const x of d) {
          // OPA takes each delimiter as one character (a rune): "" or "::" is an error.
          if (typeof x !== "string" || Array.from(x).length !== 1) {
            throw new BuiltinError("operand 2 must be array of runes (one-character strings)");
          }
          delimiters.push(x);
        }
        if (d.length === 0) delimiters = ["."];
      } else throw typeError(1, "one of {null, array}", d);
      return compileGlob(pattern, delimiters).test(str(args, 2));
    },
    check: ([p, d]) => {
      if (typeof p !== "string" || !(d === null || Array.isArray(d))) return undefined;
      try {
        compileGlob(p, []);
        return undefined;
      } catch (err) {
        return (err as Error).message;
      }
    },
  },
  "glob.quote_meta": { arity: 1, fn: (args) => str(args, 0).replace(/[*?\\[\]{}]/g, "\\$&") },
};
