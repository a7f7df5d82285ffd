import { BuiltinError } from "../errors.js";
import type { BuiltinTable } from "./args.js";
import { str, typeError } from "./args.js";

const reSpecial = /[\\^$.*+?()[\]{}|/-]/g;

function escapeRe(s: string): string {
  return s.replace(reSpecial, "\\$&");
}

/**
 * The glob syntax OPA takes (gobwas/glob): `*` any run without delimiters,
 * `**` any run, `?` one character that is not a delimiter, `[abc]`, `[a-z]`,
 * `[!abc]`, `{a,b}` alternatives, `\` escapes.
 */
function globToRegex(pattern: string, delimiters: string[]): RegExp {
  const cls = delimiters.length === 0 ? "[\\s\\S]" : `[^${delimiters.map(escapeRe).join("")}]`;
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
          if (n === undefined) throw new BuiltinError("unexpected end of glob pattern after \\");
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
          let body = "";
          let negated = false;
          if (chars[i] === "!") {
            negated = true;
            i++;
          }
          while (i < chars.length && chars[i] !== "]") {
            const x = chars[i++]!;
            if (x === "\\" && i < chars.length) body += escapeRe(chars[i++]!);
            else if (x === "-") body += "-";
            else body += escapeRe(x);
          }
          if (chars[i] !== "]") throw new BuiltinError("unexpected end of glob pattern: unclosed [");
          i++;
          if (body === "") throw new BuiltinError("empty character class in glob pattern");
          out += `[${negated ? "^" : ""}${body}]`;
          break;
        }
        case "{": {
          const alts: string[] = [];
          while (true) {
            alts.push(parse(true));
            const end = chars[i++];
            if (end === "}") break;
            if (end !== ",") throw new BuiltinError("unexpected end of glob pattern: unclosed {");
          }
          out += `(?:${alts.join("|")})`;
          break;
        }
        default:
          out += escapeRe(c);
      }
    }
    if (inAlt) throw new BuiltinError("unexpected end of glob pattern: unclosed {");
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
          if (typeof x !== "string") throw typeError(1, "array of strings", d);
          delimiters.push(...Array.from(x));
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
