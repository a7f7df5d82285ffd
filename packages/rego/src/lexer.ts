import type { Location } from "./errors.js";
import { RegoError } from "./errors.js";

/** Token kinds: words (identifiers and keywords), literals, and punctuation as written. */
export type TokenKind = "ident" | "string" | "rawstring" | "number" | "punct" | "eof";

export interface Token {
  kind: TokenKind;
  /** The text: the identifier, the punctuation, the number as written, or a string's decoded value. */
  text: string;
  line: number;
  col: number;
  /** Offset of the first character in the source. */
  start: number;
  /** Offset just past the last character. */
  end: number;
  /** Whether a line break separates this token from the one before. */
  nl: boolean;
  /** Whether blanks or a comment separate this token from the one before. */
  space: boolean;
}

const puncts = [
  ":=",
  "==",
  "!=",
  "<=",
  ">=",
  "{",
  "}",
  "[",
  "]",
  "(",
  ")",
  ".",
  ",",
  ";",
  ":",
  "=",
  "<",
  ">",
  "+",
  "-",
  "*",
  "/",
  "%",
  "&",
  "|",
];

const identStart = /[A-Za-z_]/;
const identPart = /[A-Za-z0-9_]/;
const numberPattern = /(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;

/** 2^53: integers up to this magnitude are exact as IEEE doubles, the engine's numbers. */
const MAX_EXACT_INTEGER = 2n ** 53n;

/**
 * Why a number literal cannot be held as written, or undefined. Numbers are
 * IEEE doubles: an integer literal past 2^53 would silently become another
 * integer (9007199254740993 is 9007199254740992), and a literal past the
 * double range would become infinity or zero. OPA keeps such literals
 * exactly, so a policy written for OPA would compare differently here: it is
 * refused instead.
 */
export function inexactNumber(text: string): string | undefined {
  const value = Number(text);
  if (!Number.isFinite(value)) {
    return `number ${text} is out of range: numbers are IEEE doubles, at most about 1.8e308`;
  }
  if (value === 0 && /[1-9]/.test(text.replace(/[eE].*$/, ""))) {
    return `number ${text} is out of range: it would round to 0 as an IEEE double`;
  }
  if (/^\d+$/.test(text) && BigInt(text) > MAX_EXACT_INTEGER) {
    return `integer ${text} is too large: numbers are IEEE doubles, exact only up to 2^53 (9007199254740992); compare it as a string, or in a larger unit`;
  }
  return undefined;
}

/** Splits a module into tokens; comments and blanks go, line breaks are noted on the next token. */
export function tokenize(source: string, file: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  let line = 1;
  let lineStart = 0;
  let nl = false;
  let space = false;
  const loc = (at: number): Location => ({ file, line, col: at - lineStart + 1 });
  const fail = (at: number, message: string): never => {
    throw new RegoError("rego_parse_error", message, loc(at));
  };
  while (i < source.length) {
    const c = source[i]!;
    if (c === "\n") {
      i++;
      line++;
      lineStart = i;
      nl = true;
      space = true;
      continue;
    }
    if (c === " " || c === "\t" || c === "\r") {
      i++;
      space = true;
      continue;
    }
    if (c === "#") {
      while (i < source.length && source[i] !== "\n") i++;
      space = true;
      continue;
    }
    const start = i;
    const col = i - lineStart + 1;
    const push = (kind: TokenKind, text: string) => {
      out.push({ kind, text, line, col, start, end: i, nl, space });
      nl = false;
      space = false;
    };
    if (identStart.test(c)) {
      while (i < source.length && identPart.test(source[i]!)) i++;
      push("ident", source.slice(start, i));
      continue;
    }
    if (c >= "0" && c <= "9") {
      numberPattern.lastIndex = i;
      const m = numberPattern.exec(source);
      if (!m) fail(i, "malformed number");
      i += m![0].length;
      if (i < source.length && identPart.test(source[i]!))
        fail(start, `malformed number "${source.slice(start, i + 1)}"`);
      const problem = inexactNumber(m![0]);
      if (problem) fail(start, problem);
      push("number", m![0]);
      continue;
    }
    if (c === '"') {
      i++;
      let j = i;
      while (j < source.length && source[j] !== '"') {
        if (source[j] === "\\") j++;
        if (source[j] === "\n")
          fail(start, "unterminated string (a line break inside quotes; use a `raw string` for several lines)");
        j++;
      }
      if (j >= source.length) fail(start, "unterminated string");
      const raw = source.slice(start, j + 1);
      let text: string;
      try {
        text = JSON.parse(raw) as string;
      } catch {
        fail(start, `malformed string ${raw} (escapes are JSON's: \\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)`);
      }
      i = j + 1;
      push("string", text!);
      continue;
    }
    if (c === "`") {
      const j = source.indexOf("`", i + 1);
      if (j < 0) fail(start, "unterminated raw string");
      const text = source.slice(i + 1, j);
      const startLine = line;
      // Raw strings may span lines: keep line numbers right for what follows.
      for (let k = i + 1; k < j; k++) {
        if (source[k] === "\n") {
          line++;
          lineStart = k + 1;
        }
      }
      i = j + 1;
      out.push({ kind: "rawstring", text, line: startLine, col, start, end: i, nl, space });
      nl = false;
      space = false;
      continue;
    }
    if (c === "$" && (source[i + 1] === '"' || source[i + 1] === "`")) {
      fail(i, 'template strings ($"...") are not supported; use sprintf or concat');
    }
    const p = puncts.find((q) => source.startsWith(q, i));
    if (!p) fail(i, `unexpected character ${JSON.stringify(c)}`);
    i += p!.length;
    push("punct", p!);
  }
  out.push({ kind: "eof", text: "end of file", line, col: i - lineStart + 1, start: i, end: i, nl: true, space: true });
  return out;
}
