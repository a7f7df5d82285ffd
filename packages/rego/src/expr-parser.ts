import type { Expr, Literal, Term, VarTerm, With } from "./ast.js";
import type { Location } from "./errors.js";
import { RegoError } from "./errors.js";
import type { Token } from "./lexer.js";
import { tokenize } from "./lexer.js";

/** Rego v1 keywords: never variable or rule names. */
export const keywords = new Set([
  "as",
  "contains",
  "default",
  "else",
  "every",
  "false",
  "if",
  "import",
  "in",
  "not",
  "null",
  "package",
  "some",
  "true",
  "with",
]);

const relations: Record<string, string> = {
  "==": "equal",
  "!=": "neq",
  "<": "lt",
  ">": "gt",
  "<=": "lte",
  ">=": "gte",
};
const arith: Record<string, string> = { "+": "plus", "-": "minus" };
const factors: Record<string, string> = { "*": "mul", "/": "div", "%": "rem" };

/**
 * The expression half of the parser: tokens, queries, literals and terms.
 * The module parser (packages, imports, rules) builds on it.
 */
export class ExprParser {
  protected readonly toks: Token[];
  protected i = 0;
  /** Whether a line break ends a literal here (in a query), rather than being blank (inside brackets). */
  protected nlEnds = false;

  constructor(
    source: string,
    protected readonly file: string,
  ) {
    this.toks = tokenize(source, file);
  }

  protected get tok(): Token {
    return this.toks[this.i]!;
  }

  protected kind(): Token["kind"] {
    return this.tok.kind;
  }

  protected peek(n = 1): Token {
    return this.toks[Math.min(this.i + n, this.toks.length - 1)]!;
  }

  protected loc(t: Token = this.tok): Location {
    return { file: this.file, line: t.line, col: t.col };
  }

  protected fail(message: string, t: Token = this.tok): never {
    throw new RegoError("rego_parse_error", message, this.loc(t));
  }

  protected is(text: string, t: Token = this.tok): boolean {
    return (t.kind === "punct" || t.kind === "ident") && t.text === text;
  }

  /** A token that continues the current expression: not one that starts a new literal on a later line. */
  protected continues(text: string): boolean {
    return this.is(text) && !(this.tok.nl && this.nlEnds);
  }

  protected next(): Token {
    const t = this.tok;
    if (t.kind !== "eof") this.i++;
    return t;
  }

  protected expect(text: string, what?: string): Token {
    if (!this.is(text)) this.fail(`expected ${what ?? `"${text}"`}, found ${this.describe()}`);
    return this.next();
  }

  protected describe(t: Token = this.tok): string {
    if (t.kind === "eof") return "end of file";
    if (t.kind === "string" || t.kind === "rawstring") return "a string";
    if (t.kind === "number") return `number ${t.text}`;
    return `"${t.text}"`;
  }

  /** Runs `f` with line breaks meaning `ends` (true in queries, false inside brackets). */
  protected nested<T>(ends: boolean, f: () => T): T {
    const saved = this.nlEnds;
    this.nlEnds = ends;
    try {
      return f();
    } finally {
      this.nlEnds = saved;
    }
  }

  protected braced(): Literal[] {
    this.expect("{");
    return this.queryUntil("}");
  }

  /** Literals up to `end` (consumed), separated by `;` or line breaks. */
  queryUntil(end: "}" | "]" | "eof"): Literal[] {
    return this.nested(true, () => {
      const out: Literal[] = [];
      const atEnd = () => (end === "eof" ? this.kind() === "eof" : this.is(end));
      while (!atEnd()) {
        if (this.kind() === "eof") this.fail(`expected "${end}", found end of file`);
        out.push(this.literal());
        if (this.is(";")) {
          this.next();
          continue;
        }
        if (!atEnd() && !this.tok.nl)
          this.fail(`unexpected ${this.describe()}: expected a line break or ";" between expressions`);
      }
      if (out.length === 0) this.fail("empty body: a query needs at least one expression");
      if (end !== "eof") this.next();
      return out;
    });
  }

  protected literal(): Literal {
    const start = this.tok;
    let negated = false;
    let expr: Expr;
    if (this.is("some")) {
      expr = this.someDecl();
    } else if (this.is("every")) {
      expr = this.every();
    } else {
      if (this.is("not")) {
        this.next();
        negated = true;
        if (this.is("some") || this.is("every") || this.is("not"))
          this.fail(`"not" cannot be followed by "${this.tok.text}"`);
      }
      expr = this.expression();
    }
    const withs: With[] = [];
    // `with` may start a line of its own, as in tests that mock the input.
    while (this.is("with")) {
      const at = this.next();
      const target = this.nested(false, () => this.term());
      this.expect("as", '"as" after the with target');
      const value = this.nested(true, () => this.expr(false, false));
      withs.push({ target, value, loc: this.loc(at) });
    }
    return { expr, negated, with: withs, loc: this.loc(start) };
  }

  protected expression(): Expr {
    const lhs = this.expr(true, false);
    if (this.continues(":=") || this.continues("=")) {
      const op = this.next().text as ":=" | "=";
      const rhs = this.expr(false, false);
      return { e: "unify", op, lhs, rhs };
    }
    return { e: "term", term: lhs };
  }

  protected someDecl(): Expr {
    const at = this.next();
    const first = this.expr(false, false, true);
    let second: Term | undefined;
    if (this.is(",")) {
      this.next();
      second = this.expr(false, false, true);
      if (!this.is(",") && !this.is("in")) {
        return this.someVars([first, second], at);
      }
    }
    if (this.is("in")) {
      this.next();
      const domain = this.relation(false);
      return second ? { e: "somein", key: first, value: second, domain } : { e: "somein", value: first, domain };
    }
    const vars = [first];
    if (second) vars.push(second);
    while (this.is(",")) {
      this.next();
      vars.push(this.expr(false, false, true));
    }
    return this.someVars(vars, at);
  }

  protected someVars(terms: Term[], at: Token): Expr {
    const vars: VarTerm[] = [];
    for (const t of terms) {
      if (t.t !== "var") throw new RegoError("rego_parse_error", '"some" declares variables: some x, y', t.loc);
      vars.push(t);
    }
    if (vars.length === 0) this.fail('"some" needs a variable', at);
    return { e: "some", vars };
  }

  protected every(): Expr {
    this.next();
    const v1 = this.varName();
    let key: VarTerm | undefined;
    let value = v1;
    if (this.is(",")) {
      this.next();
      key = v1;
      value = this.varName();
    }
    this.expect("in", '"in" after the every variables');
    const domain = this.relation(false);
    if (!this.is("{")) this.fail(`expected "{" to start the every body, found ${this.describe()}`);
    const body = this.braced();
    return key ? { e: "every", key, value, domain, body } : { e: "every", value, domain, body };
  }

  protected varName(): VarTerm {
    const t = this.tok;
    if (t.kind !== "ident" || keywords.has(t.text)) this.fail(`expected a variable, found ${this.describe()}`);
    this.next();
    return { t: "var", name: t.text, loc: this.loc(t) };
  }

  /**
   * An expression term: `in` membership over relations over `|` over `&` over
   * `+ -` over `* / %`. `keyVal` allows `k, v in xs` (at the top of an
   * expression); `noBar` leaves a top-level `|` to a comprehension; `noIn`
   * leaves `in` to `some … in`.
   */
  protected expr(keyVal: boolean, noBar: boolean, noIn = false): Term {
    let lhs = this.relation(noBar);
    if (noIn) return lhs;
    if (keyVal && this.is(",")) {
      const save = this.i;
      this.next();
      const value = this.relation(noBar);
      if (this.continues("in")) {
        const at = this.next();
        const domain = this.relation(noBar);
        lhs = { t: "call", name: ["internal", "member_3"], args: [lhs, value, domain], loc: this.loc(at) };
      } else {
        this.i = save;
        return lhs;
      }
    }
    while (this.continues("in")) {
      const at = this.next();
      const rhs = this.relation(noBar);
      lhs = { t: "call", name: ["internal", "member_2"], args: [lhs, rhs], loc: this.loc(at) };
    }
    return lhs;
  }

  protected relation(noBar: boolean): Term {
    let lhs = this.binary(noBar);
    while (this.kind() === "punct" && relations[this.tok.text] && !(this.tok.nl && this.nlEnds)) {
      const at = this.next();
      const rhs = this.binary(noBar);
      lhs = { t: "call", name: [relations[at.text]!], args: [lhs, rhs], loc: lhs.loc };
    }
    return lhs;
  }

  protected binary(noBar: boolean): Term {
    let lhs = this.and();
    while (!noBar && this.continues("|")) {
      this.next();
      lhs = { t: "call", name: ["or"], args: [lhs, this.and()], loc: lhs.loc };
    }
    return lhs;
  }

  protected and(): Term {
    let lhs = this.sum();
    while (this.continues("&")) {
      this.next();
      lhs = { t: "call", name: ["and"], args: [lhs, this.sum()], loc: lhs.loc };
    }
    return lhs;
  }

  protected sum(): Term {
    let lhs = this.factor();
    while (this.kind() === "punct" && arith[this.tok.text] && !(this.tok.nl && this.nlEnds)) {
      const op = this.next();
      lhs = { t: "call", name: [arith[op.text]!], args: [lhs, this.factor()], loc: lhs.loc };
    }
    return lhs;
  }

  protected factor(): Term {
    let lhs = this.term();
    while (this.kind() === "punct" && factors[this.tok.text] && !(this.tok.nl && this.nlEnds)) {
      const op = this.next();
      lhs = { t: "call", name: [factors[op.text]!], args: [lhs, this.term()], loc: lhs.loc };
    }
    return lhs;
  }

  /** A single term, with any `.name`, `[key]` and call suffixes. */
  term(): Term {
    const t = this.tok;
    const loc = this.loc(t);
    let term: Term;
    switch (t.kind) {
      case "number":
        this.next();
        term = { t: "scalar", value: Number(t.text), loc };
        return term;
      case "string":
      case "rawstring":
        this.next();
        term = { t: "scalar", value: t.text, loc };
        break;
      case "eof":
        this.fail("unexpected end of file");
        break;
      case "ident":
        term = this.identTerm();
        break;
      case "punct":
        switch (t.text) {
          case "(": {
            this.next();
            // `(k, v in xs)` is a membership test in parentheses.
            const inner = this.nested(false, () => this.expr(true, false));
            this.expect(")");
            term = inner;
            break;
          }
          case "-": {
            this.next();
            const n = this.tok;
            if (n.kind === "number" && !n.space) {
              this.next();
              return { t: "scalar", value: -Number(n.text), loc };
            }
            const operand = this.term();
            return { t: "call", name: ["minus"], args: [{ t: "scalar", value: 0, loc }, operand], loc };
          }
          case "[":
            term = this.array();
            break;
          case "{":
            term = this.braces();
            break;
          default:
            this.fail(`unexpected ${this.describe()}`);
        }
        break;
    }
    return this.suffixes(term!);
  }

  protected identTerm(): Term {
    const t = this.next();
    const loc = this.loc(t);
    switch (t.text) {
      case "true":
        return { t: "scalar", value: true, loc };
      case "false":
        return { t: "scalar", value: false, loc };
      case "null":
        return { t: "scalar", value: null, loc };
    }
    if (t.text === "set" && this.is("(") && !this.tok.space && this.is(")", this.peek())) {
      this.next();
      this.next();
      return { t: "set", items: [], loc };
    }
    // "contains" is a keyword in rule heads and a built-in elsewhere.
    const call = t.text === "contains" && this.is("(") && !this.tok.space;
    if (keywords.has(t.text) && !call) this.fail(`unexpected keyword "${t.text}"`, t);
    // A dotted name followed by "(" is a call: count(x), io.jwt.decode(t), data.lib.f(x).
    const name = [t.text];
    let j = this.i;
    while (
      this.is(".", this.toks[j]) &&
      !this.toks[j]!.space &&
      this.toks[j + 1]?.kind === "ident" &&
      !this.toks[j + 1]!.space
    ) {
      name.push(this.toks[j + 1]!.text);
      j += 2;
    }
    if (this.is("(", this.toks[j]) && !this.toks[j]!.space) {
      this.i = j + 1;
      const args = this.nested(false, () => this.list(")", () => this.expr(false, false)));
      return { t: "call", name, args, loc };
    }
    return { t: "var", name: t.text, loc };
  }

  /** `.name`, `[key]` after a term; a line break in a query ends the term instead. */
  protected suffixes(head: Term): Term {
    const path: Term[] = [];
    while (!this.tok.space) {
      if (this.is(".")) {
        this.next();
        const n = this.tok;
        if (n.kind !== "ident" || n.space) this.fail(`expected a name after "."`);
        this.next();
        path.push({ t: "scalar", value: n.text, loc: this.loc(n) });
      } else if (this.is("[")) {
        this.next();
        const key = this.nested(false, () => this.expr(false, false));
        this.expect("]");
        path.push(key);
      } else if (this.is("(") && path.length > 0) {
        this.fail("only names can be called: write the function's dotted name, e.g. data.lib.f(x)");
      } else break;
    }
    if (path.length === 0) return head;
    if (head.t === "ref") return { t: "ref", head: head.head, path: [...head.path, ...path], loc: head.loc };
    return { t: "ref", head, path, loc: head.loc };
  }

  protected array(): Term {
    const at = this.next();
    const loc = this.loc(at);
    return this.nested(false, () => {
      if (this.is("]")) {
        this.next();
        return { t: "array", items: [], loc };
      }
      const first = this.expr(false, true);
      if (this.is("|")) {
        this.next();
        const body = this.queryUntil("]");
        return { t: "arraycompr", head: first, body, loc };
      }
      const items = [first];
      if (this.is(",")) {
        this.next();
        items.push(...this.list("]", () => this.expr(false, false)));
      } else this.expect("]", '"," or "]"');
      return { t: "array", items, loc };
    });
  }

  protected braces(): Term {
    const at = this.next();
    const loc = this.loc(at);
    return this.nested(false, () => {
      if (this.is("}")) {
        this.next();
        return { t: "object", entries: [], loc };
      }
      const first = this.expr(false, true);
      if (this.is(":")) {
        this.next();
        const value = this.expr(false, true);
        if (this.is("|")) {
          this.next();
          const body = this.queryUntil("}");
          return { t: "objectcompr", key: first, value, body, loc };
        }
        const entries: [Term, Term][] = [[first, value]];
        while (this.is(",")) {
          this.next();
          if (this.is("}")) break;
          const k = this.expr(false, false);
          this.expect(":", '":" in an object');
          entries.push([k, this.expr(false, false)]);
        }
        this.expect("}", '"," or "}"');
        return { t: "object", entries, loc };
      }
      if (this.is("|")) {
        this.next();
        const body = this.queryUntil("}");
        return { t: "setcompr", head: first, body, loc };
      }
      const items = [first];
      if (this.is(",")) {
        this.next();
        items.push(...this.list("}", () => this.expr(false, false)));
      } else this.expect("}", '"," or "}"');
      return { t: "set", items, loc };
    });
  }

  /** Items separated by commas up to `end` (consumed); a trailing comma is fine. */
  protected list<T>(end: string, item: () => T): T[] {
    const out: T[] = [];
    while (!this.is(end)) {
      out.push(item());
      if (this.is(",")) this.next();
      else if (!this.is(end)) this.fail(`expected "," or "${end}", found ${this.describe()}`);
    }
    this.next();
    return out;
  }
}
