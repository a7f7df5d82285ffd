import { BuiltinError } from "../errors.js";
import type { Value } from "../value.js";
import { compareStrings, formatNumber, isObject, objectEntries, RegoSet } from "../value.js";
import type { BuiltinTable } from "./args.js";
import { obj, objectOf, str, typeError } from "./args.js";

/** Go's encoding/json string escaping: control characters, <, >, & and U+2028/9 as \u escapes. */
function quote(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const ch = s[i]!;
    if (ch === '"') out += '\\"';
    else if (ch === "\\") out += "\\\\";
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (c < 0x20 || ch === "<" || ch === ">" || ch === "&" || c === 0x2028 || c === 0x2029) {
      out += `\\u${c.toString(16).padStart(4, "0")}`;
    } else out += ch;
  }
  return `${out}"`;
}

/** Compact JSON as OPA's json.marshal writes it: object keys sorted, sets as sorted arrays. */
export function marshal(v: Value): string {
  switch (typeof v) {
    case "string":
      return quote(v);
    case "number":
      return formatNumber(v);
    case "boolean":
      return v ? "true" : "false";
  }
  if (v === null) return "null";
  if (Array.isArray(v)) return `[${v.map(marshal).join(",")}]`;
  if (v instanceof RegoSet) return `[${v.values().map(marshal).join(",")}]`;
  const entries = objectEntries(v).map(([k, x]) => [typeof k === "string" ? k : marshal(k), marshal(x)] as const);
  // Go's encoding/json sorts keys by their UTF-8 bytes.
  entries.sort((a, b) => compareStrings(a[0], b[0]));
  return `{${entries.map(([k, x]) => `${quote(k)}:${x}`).join(",")}}`;
}

/**
 * The first number in JSON text that a double cannot hold as written: one
 * out of range (JSON.parse makes it infinity or 0) or an integer past 2^53
 * (JSON.parse rounds it to another integer). Strings are skipped.
 */
function inexactJsonNumber(s: string): string | undefined {
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '"') {
      for (i++; i < s.length && s[i] !== '"'; i++) if (s[i] === "\\") i++;
    } else if (c === "-" || (c >= "0" && c <= "9")) {
      let j = i + 1;
      while (j < s.length && /[0-9.eE+-]/.test(s[j]!)) j++;
      const text = s.slice(c === "-" ? i + 1 : i, j);
      const value = Number(text);
      if (!Number.isFinite(value) || (value === 0 && /[1-9]/.test(text.replace(/[eE].*$/, "")))) return text;
      if (/^\d+$/.test(text) && !Number.isSafeInteger(value) && BigInt(text) > 2n ** 53n) return text;
      i = j - 1;
    }
  }
  return undefined;
}

function unmarshal(s: string): Value {
  let v: Value;
  try {
    v = JSON.parse(s) as Value;
  } catch (err) {
    throw new BuiltinError(`invalid JSON: ${(err as Error).message}`);
  }
  const inexact = inexactJsonNumber(s);
  if (inexact !== undefined) {
    throw new BuiltinError(`JSON number ${inexact} cannot be held exactly (numbers are IEEE doubles)`);
  }
  return v;
}

const std = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const url = /^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2}==|[A-Za-z0-9_-]{3}=)?$/;
const urlRaw = /^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2,3})?$/;

function decode(s: string, encoding: "base64" | "base64url"): string {
  return Buffer.from(s, encoding).toString("utf8");
}

/**
 * base64url as OPA decodes it: padded, or unpadded when the length allows
 * (RFC 7515 appendix C); a length of 4n+1 or a wrong padding is an error.
 */
export function base64UrlBytes(s: string): Buffer {
  if (!url.test(s) && !urlRaw.test(s)) throw new BuiltinError("illegal base64 data");
  return Buffer.from(s, "base64url");
}

/** Go's url.QueryEscape. */
function queryEscape(s: string): string {
  return encodeURIComponent(s)
    .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%20/g, "+");
}

function queryUnescape(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, " "));
  } catch {
    throw new BuiltinError(`invalid URL escape in ${JSON.stringify(s)}`);
  }
}

/** JSON, base64, hex and URL query encodings. */
export const encodingBuiltins: BuiltinTable = {
  "json.marshal": { arity: 1, fn: ([v]) => marshal(v!) },
  "json.unmarshal": { arity: 1, fn: (args) => unmarshal(str(args, 0)) },
  "json.is_valid": {
    arity: 1,
    fn: ([s]) => {
      if (typeof s !== "string") return false;
      try {
        JSON.parse(s);
        return true;
      } catch {
        return false;
      }
    },
  },
  "base64.encode": { arity: 1, fn: (args) => Buffer.from(str(args, 0), "utf8").toString("base64") },
  "base64.decode": {
    arity: 1,
    fn: (args) => {
      const s = str(args, 0);
      if (!std.test(s)) throw new BuiltinError("illegal base64 data");
      return decode(s, "base64");
    },
  },
  "base64.is_valid": { arity: 1, fn: ([s]) => typeof s === "string" && std.test(s) },
  "base64url.encode": {
    arity: 1,
    fn: (args) => {
      const raw = Buffer.from(str(args, 0), "utf8").toString("base64url");
      return raw + "=".repeat((4 - (raw.length % 4)) % 4);
    },
  },
  "base64url.encode_no_pad": { arity: 1, fn: (args) => Buffer.from(str(args, 0), "utf8").toString("base64url") },
  "base64url.decode": {
    arity: 1,
    fn: (args) => {
      return base64UrlBytes(str(args, 0)).toString("utf8");
    },
  },
  "hex.encode": { arity: 1, fn: (args) => Buffer.from(str(args, 0), "utf8").toString("hex") },
  "hex.decode": {
    arity: 1,
    fn: (args) => {
      const s = str(args, 0);
      if (!/^(?:[0-9a-fA-F]{2})*$/.test(s)) throw new BuiltinError("invalid hex data");
      return Buffer.from(s, "hex").toString("utf8");
    },
  },
  "urlquery.encode": { arity: 1, fn: (args) => queryEscape(str(args, 0)) },
  "urlquery.decode": { arity: 1, fn: (args) => queryUnescape(str(args, 0)) },
  "urlquery.encode_object": {
    arity: 1,
    fn: (args) => {
      const parts: string[] = [];
      for (const [k, v] of objectEntries(obj(args, 0))) {
        if (typeof k !== "string") throw typeError(0, "object with string keys", args[0]!);
        const values =
          typeof v === "string" ? [v] : Array.isArray(v) ? v : v instanceof RegoSet ? v.values() : undefined;
        if (!values || values.some((x) => typeof x !== "string")) {
          throw typeError(0, "object of strings, arrays of strings or sets of strings", args[0]!);
        }
        for (const x of values) parts.push(`${queryEscape(k)}=${queryEscape(x as string)}`);
      }
      return parts.join("&");
    },
  },
  "urlquery.decode_object": {
    arity: 1,
    fn: (args) => {
      const out = new Map<string, string[]>();
      for (const part of str(args, 0).split(/[&]/)) {
        if (part === "") continue;
        // Go's url.ParseQuery (since Go 1.17) refuses ";" as a separator.
        if (part.includes(";")) throw new BuiltinError("invalid semicolon separator in query");
        const eq = part.indexOf("=");
        const k = queryUnescape(eq < 0 ? part : part.slice(0, eq));
        const v = eq < 0 ? "" : queryUnescape(part.slice(eq + 1));
        out.set(k, [...(out.get(k) ?? []), v]);
      }
      return objectOf(out);
    },
  },
};

/** For callers that need a JSON object check (io.jwt.decode). */
export function parseJsonObject(s: string, what: string): Value {
  const v = unmarshal(s);
  if (!isObject(v)) throw new BuiltinError(`${what} is not a JSON object`);
  return v;
}
