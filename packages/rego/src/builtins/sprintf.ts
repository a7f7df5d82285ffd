import type { Value } from "../value.js";
import { formatValue } from "../value.js";

/**
 * OPA hands sprintf's arguments to Go's fmt as int (integral numbers),
 * float64 (other numbers), *big.Int (integers past int64), string (strings),
 * and the Rego text of anything else. This mirrors Go's verbs on those.
 */
type GoArg =
  | { kind: "int"; v: number }
  | { kind: "big"; v: bigint }
  | { kind: "float"; v: number }
  | { kind: "string"; v: string };

function toGo(v: Value): GoArg {
  if (typeof v === "number") {
    if (!Number.isInteger(v)) return { kind: "float", v };
    if (Math.abs(v) < 2 ** 63) return { kind: "int", v };
    return { kind: "big", v: BigInt(v) };
  }
  if (typeof v === "string") return { kind: "string", v };
  return { kind: "string", v: formatValue(v) };
}

const goType = { int: "int", big: "*big.Int", float: "float64", string: "string" } as const;

interface Spec {
  minus: boolean;
  plus: boolean;
  sharp: boolean;
  space: boolean;
  zero: boolean;
  width?: number;
  prec?: number;
}

/** Go's strconv.Quote, close enough: JSON escapes plus Go's short forms. */
function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"' || ch === "\\") out += `\\${ch}`;
    else if (c === 7) out += "\\a";
    else if (c === 8) out += "\\b";
    else if (c === 12) out += "\\f";
    else if (c === 10) out += "\\n";
    else if (c === 13) out += "\\r";
    else if (c === 9) out += "\\t";
    else if (c === 11) out += "\\v";
    else if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, "0")}`;
    else out += ch;
  }
  return `${out}"`;
}

/** The exact decimal digits of a finite |x| (no leading or trailing zeros) and the decimal point position. */
function exactDigits(x: number): { digits: string; dp: number } {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, Math.abs(x));
  const hi = view.getUint32(0);
  const lo = view.getUint32(4);
  const biased = (hi >>> 20) & 0x7ff;
  let mant = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  let exp = biased - 1075;
  if (biased === 0) exp = -1074;
  else mant |= 1n << 52n;
  if (mant === 0n) return { digits: "0", dp: 1 };
  let text: string;
  let dp: number;
  if (exp >= 0) {
    text = (mant << BigInt(exp)).toString();
    dp = text.length;
  } else {
    // m / 2^k = m * 5^k / 10^k
    text = (mant * 5n ** BigInt(-exp)).toString();
    dp = text.length + exp;
  }
  const trimmed = text.replace(/0+$/, "");
  return { digits: trimmed, dp };
}

/** Rounds decimal digits to `nd` of them, halves to even, as Go's strconv does on the exact value. */
function roundDigits(d: { digits: string; dp: number }, nd: number): { digits: string; dp: number } {
  const { digits, dp } = d;
  if (nd >= digits.length) return d;
  if (nd < 0) return { digits: "0", dp: 1 };
  const next = digits.charCodeAt(nd) - 48;
  let up: boolean;
  if (next === 5 && nd + 1 === digits.length) up = nd > 0 && (digits.charCodeAt(nd - 1) - 48) % 2 === 1;
  else up = next >= 5;
  if (!up) {
    const kept = digits.slice(0, nd).replace(/0+$/, "");
    return kept === "" ? { digits: "0", dp: 1 } : { digits: kept, dp };
  }
  // Add one at position nd - 1, carrying.
  const arr = digits.slice(0, nd).split("");
  let i = arr.length - 1;
  while (i >= 0 && arr[i] === "9") {
    arr[i] = "0";
    i--;
  }
  if (i < 0) return { digits: "1", dp: dp + 1 };
  arr[i] = String.fromCharCode(arr[i]!.charCodeAt(0) + 1);
  return { digits: arr.join("").replace(/0+$/, ""), dp };
}

/** Decimal digits of |x| (trailing zeros dropped) and the decimal point position, shortest or to `sig` digits. */
function digitsOf(x: number, sig?: number): { digits: string; dp: number } {
  if (x === 0) return { digits: "0", dp: 1 };
  if (sig !== undefined) return roundDigits(exactDigits(x), Math.max(sig, 1));
  const [mant, exp] = Math.abs(x).toExponential().split("e") as [string, string];
  let digits = mant.replace(".", "").replace(/0+$/, "");
  if (digits === "") digits = "0";
  return { digits, dp: Number(exp) + 1 };
}

function expText(digits: string, dp: number, decimals: number, upper: boolean): string {
  const d = digits.padEnd(decimals + 1, "0").slice(0, decimals + 1);
  const exp = dp - 1;
  const e = `${exp < 0 ? "-" : "+"}${String(Math.abs(exp)).padStart(2, "0")}`;
  return `${d[0]}${decimals > 0 ? `.${d.slice(1)}` : ""}${upper ? "E" : "e"}${e}`;
}

function fixedText(digits: string, dp: number, decimals: number): string {
  let int: string;
  let frac: string;
  if (dp <= 0) {
    int = "0";
    frac = "0".repeat(-dp) + digits;
  } else {
    int = digits.slice(0, dp).padEnd(dp, "0");
    frac = digits.slice(dp);
  }
  frac = frac.padEnd(decimals, "0").slice(0, decimals);
  return decimals > 0 ? `${int}.${frac}` : int;
}

/** Go's %g (and %v for floats: shortest digits, exponent from 1e+06 or below 1e-04). */
function gText(x: number, prec: number | undefined, upper: boolean): string {
  const shortest = prec === undefined;
  let p = prec === 0 ? 1 : prec;
  const { digits, dp } = digitsOf(x, p);
  if (p === undefined) p = digits.length;
  let eprec = p;
  if (eprec > digits.length && digits.length >= dp) eprec = digits.length;
  if (shortest) eprec = 6;
  const exp = dp - 1;
  if (exp < -4 || exp >= eprec) return expText(digits, dp, Math.min(p, digits.length) - 1, upper);
  if (p > dp) p = digits.length;
  return fixedText(digits, dp, Math.max(p - dp, 0));
}

function floatText(x: number, verb: string, prec: number | undefined): string | undefined {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? "NaN" : "Inf";
  const ax = Math.abs(x);
  switch (verb) {
    case "v":
      return gText(ax, undefined, false);
    case "g":
    case "G":
      return gText(ax, prec, verb === "G");
    case "e":
    case "E": {
      const p = prec ?? 6;
      const { digits, dp } = digitsOf(ax, p + 1);
      return expText(digits, dp, p, verb === "E");
    }
    case "f":
    case "F": {
      const p = prec ?? 6;
      if (ax === 0) return fixedText("0", 1, p);
      const exact = exactDigits(ax);
      const { digits, dp } = roundDigits(exact, exact.dp + p);
      return fixedText(digits, dp, p);
    }
  }
  return undefined;
}

function intText(v: bigint, verb: string, spec: Spec): string | undefined {
  const a = v < 0n ? -v : v;
  switch (verb) {
    case "v":
    case "d":
      return a.toString(10);
    case "b":
      return (spec.sharp ? "0b" : "") + a.toString(2);
    case "o":
      return (spec.sharp ? "0" : "") + a.toString(8);
    case "O":
      return `0o${a.toString(8)}`;
    case "x":
      return (spec.sharp ? "0x" : "") + a.toString(16);
    case "X":
      return (spec.sharp ? "0X" : "") + a.toString(16).toUpperCase();
  }
  return undefined;
}

function pad(s: string, spec: Spec, numeric: boolean): string {
  const width = spec.width ?? 0;
  const len = Array.from(s).length;
  if (len >= width) return s;
  if (spec.minus) return s + " ".repeat(width - len);
  if (spec.zero && numeric) {
    const sign = /^[+\- ]/.test(s) ? s[0] : "";
    return sign + "0".repeat(width - len) + s.slice(sign.length);
  }
  return " ".repeat(width - len) + s;
}

function withSign(neg: boolean, body: string, spec: Spec): string {
  return (neg ? "-" : spec.plus ? "+" : spec.space ? " " : "") + body;
}

function badVerb(verb: string, a: GoArg): string {
  return `%!${verb}(${goType[a.kind]}=${plain(a)})`;
}

function plain(a: GoArg): string {
  switch (a.kind) {
    case "int":
      return String(a.v);
    case "big":
      return a.v.toString();
    case "float":
      return gText(Math.abs(a.v), undefined, false).replace(/^/, a.v < 0 ? "-" : "");
    case "string":
      return a.v;
  }
}

function formatOne(verb: string, a: GoArg, spec: Spec): string {
  // %T prints Go's type name of the argument.
  if (verb === "T") return pad(goType[a.kind], spec, false);
  switch (a.kind) {
    case "string": {
      let s = a.v;
      switch (verb) {
        case "v":
          // %#v is Go syntax: a quoted string.
          if (spec.sharp) return pad(goQuote(s), spec, false);
          if (spec.prec !== undefined) s = Array.from(s).slice(0, spec.prec).join("");
          return pad(s, spec, false);
        case "s":
          if (spec.prec !== undefined) s = Array.from(s).slice(0, spec.prec).join("");
          return pad(s, spec, false);
        case "q":
          return pad(spec.sharp && !s.includes("`") ? `\`${s}\`` : goQuote(s), spec, false);
        case "x":
        case "X": {
          const hex = Buffer.from(s, "utf8").toString("hex");
          return pad(verb === "X" ? hex.toUpperCase() : hex, spec, false);
        }
      }
      return badVerb(verb, a);
    }
    case "int":
    case "big": {
      const v = typeof a.v === "bigint" ? a.v : BigInt(a.v);
      if (verb === "c" && a.kind === "int") return pad(String.fromCodePoint(a.v), spec, false);
      if (verb === "q" && a.kind === "int") return pad(`'${String.fromCodePoint(a.v)}'`, spec, false);
      if (verb === "U" && a.kind === "int") {
        return pad(`U+${a.v.toString(16).toUpperCase().padStart(4, "0")}`, spec, false);
      }
      if (verb === "s" && a.kind === "big") return pad(v.toString(), spec, false);
      let body = intText(v, verb, spec);
      if (body === undefined) return badVerb(verb, a);
      if (spec.prec !== undefined) body = body.padStart(spec.prec, "0");
      return pad(withSign(v < 0n, body, spec), spec, spec.prec === undefined);
    }
    case "float": {
      const body = floatText(a.v, verb, spec.prec);
      if (body === undefined) return badVerb(verb, a);
      return pad(withSign(a.v < 0 || Object.is(a.v, -0), body, spec), spec, true);
    }
  }
}

/** Go's fmt.Sprintf over Rego values, as OPA's sprintf. */
export function sprintf(format: string, values: readonly Value[]): string {
  const args = values.map(toGo);
  let next = 0;
  let out = "";
  let i = 0;
  while (i < format.length) {
    const c = format[i]!;
    if (c !== "%") {
      out += c;
      i++;
      continue;
    }
    i++;
    if (format[i] === "%") {
      out += "%";
      i++;
      continue;
    }
    const spec: Spec = { minus: false, plus: false, sharp: false, space: false, zero: false };
    for (; i < format.length; i++) {
      const f = format[i];
      if (f === "-") spec.minus = true;
      else if (f === "+") spec.plus = true;
      else if (f === "#") spec.sharp = true;
      else if (f === " ") spec.space = true;
      else if (f === "0") spec.zero = true;
      else break;
    }
    const number = (): number | undefined => {
      if (format[i] === "*") {
        i++;
        const a = args[next++];
        return a?.kind === "int" ? a.v : undefined;
      }
      let s = "";
      while (i < format.length && format[i]! >= "0" && format[i]! <= "9") s += format[i++];
      return s === "" ? undefined : Number(s);
    };
    spec.width = number();
    if (format[i] === ".") {
      i++;
      spec.prec = number() ?? 0;
    }
    if (i >= format.length) {
      out += "%!(NOVERB)";
      break;
    }
    const verb = String.fromCodePoint(format.codePointAt(i)!);
    i += verb.length;
    const a = args[next++];
    if (a === undefined) {
      out += `%!${verb}(MISSING)`;
      continue;
    }
    out += formatOne(verb, a, spec);
  }
  if (next < args.length) {
    out += `%!(EXTRA ${args
      .slice(next)
      .map((a) => `${goType[a.kind]}=${plain(a)}`)
      .join(", ")})`;
  }
  return out;
}
