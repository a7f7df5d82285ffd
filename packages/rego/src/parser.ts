import type { Else, HeadPart, Import, Literal, Module, Rule } from "./ast.js";
import { ExprParser, keywords } from "./expr-parser.js";

let parses = 0;

/**
 * How many modules and queries this process has parsed so far. Evaluating a
 * compiled policy parses nothing (a reference or query string is parsed the
 * first time it is used, then cached), so this lets a test prove it.
 */
export function parseCount(): number {
  return parses;
}

/** Parses one Rego v1 module. */
export function parseModule(source: string, file: string): Module {
  parses++;
  return new ModuleParser(source, file).module();
}

/** Parses a query (literals separated by `;` or line breaks), as `evaluate` and `query` take it. */
export function parseQuery(source: string, file = "query"): Literal[] {
  parses++;
  return new ExprParser(source, file).queryUntil("eof");
}

/** Packages, imports and rule heads; bodies and terms are the ExprParser's. */
class ModuleParser extends ExprParser {
  module(): Module {
    if (!this.is("package")) this.fail(`a module starts with "package", found ${this.describe()}`);
    const pkgTok = this.next();
    const pkg = this.path("package");
    if (pkg[0] === "data") this.fail(`write the package without "data.": package ${pkg.slice(1).join(".")}`, pkgTok);
    const imports: Import[] = [];
    const rules: Rule[] = [];
    while (this.is("import")) imports.push(this.importDecl());
    while (this.kind() !== "eof") {
      if (this.is("import")) this.fail("imports go before the rules");
      if (this.is("package")) this.fail("one package per module");
      rules.push(...this.rule());
    }
    return { file: this.file, pkg, pkgLoc: this.loc(pkgTok), imports, rules };
  }

  /** `a.b["c"]` as a list of names (package and import paths). */
  private path(what: string): string[] {
    if (this.kind() !== "ident") this.fail(`expected a ${what} path, found ${this.describe()}`);
    const out = [this.next().text];
    while (true) {
      if (this.is(".") && !this.tok.space) {
        this.next();
        if (this.kind() !== "ident" || this.tok.space) this.fail(`expected a name after "."`);
        out.push(this.next().text);
      } else if (this.is("[") && !this.tok.space) {
        this.next();
        if (this.kind() !== "string" && this.kind() !== "rawstring") this.fail(`expected a string in a ${what} path`);
        out.push(this.next().text);
        this.expect("]");
      } else return out;
    }
  }

  private importDecl(): Import {
    const at = this.next();
    const path = this.path("import");
    let alias = path[path.length - 1]!;
    if (this.is("as") && !this.tok.nl) {
      this.next();
      if (this.kind() !== "ident" || keywords.has(this.tok.text)) this.fail('expected a name after "as"');
      alias = this.next().text;
    }
    return { path, alias, loc: this.loc(at) };
  }

  /** One rule as written; several bodies or else branches stay in the one rule. */
  private rule(): Rule[] {
    const start = this.tok;
    const isDefault = this.is("default");
    if (isDefault) this.next();
    if (this.kind() !== "ident" || keywords.has(this.tok.text)) {
      this.fail(`expected a rule, found ${this.describe()}`);
    }
    const ref = this.headRef();
    const rule: Rule = { loc: this.loc(start), isDefault, ref, kind: "value", bodies: [], elses: [] };
    const shown = ref.map((p, i) => ("name" in p ? (i === 0 ? p.name : `.${p.name}`) : "[…]")).join("");
    if (this.is("(") && !this.tok.space) {
      if (ref.some((p) => "term" in p)) this.fail("a function name cannot have brackets");
      this.next();
      rule.kind = "function";
      rule.args = this.nested(false, () => this.list(")", () => this.expr(false, false)));
    }
    const v1hint = (head: string) =>
      this.fail(
        `Rego v1 needs "if" before a rule body: write \`${head} if { … }\` (rules written for OPA before 1.0 must be updated)`,
      );
    if (this.is("contains")) {
      if (rule.kind === "function") this.fail('a function cannot use "contains"');
      if (isDefault) this.fail('a default rule cannot use "contains"');
      this.next();
      rule.kind = "contains";
      rule.member = this.nested(true, () => this.expr(false, false));
    } else if (this.is(":=") || this.is("=")) {
      this.next();
      rule.value = this.nested(true, () => this.expr(false, false));
    } else if (isDefault) {
      this.fail(`a default rule needs a value: default ${shown} := …`);
    }
    if (this.is("{")) {
      const last = ref[ref.length - 1]!;
      if (rule.kind === "value" && rule.value === undefined && ref.length === 2 && "term" in last) {
        this.fail(
          `Rego v1 needs "if" before a rule body. In Rego before 1.0, \`${shown.replace("[…]", "[x]")} { … }\` made a set: write \`${ref[0] && "name" in ref[0] ? ref[0].name : "p"} contains x if { … }\``,
        );
      }
      if (rule.kind === "function") v1hint(`${shown}(…)${rule.value ? " := …" : ""}`);
      v1hint(`${shown}${rule.kind === "contains" ? " contains …" : rule.value ? " := …" : ""}`);
    }
    if (this.is("if")) {
      if (isDefault) this.fail("a default rule cannot have a body");
      this.next();
      rule.bodies.push(this.ruleBody());
      // Further bodies after the first are alternatives (OR), as in `p if { a } { b }`.
      while (this.is("{")) rule.bodies.push(this.braced());
    } else {
      rule.bodies.push([]);
    }
    while (this.is("else")) {
      const at = this.next();
      if (rule.kind === "contains") this.fail('"else" cannot follow a multi-value rule', at);
      if (isDefault) this.fail('"else" cannot follow a default rule', at);
      const branch: Else = { body: [], loc: this.loc(at) };
      if (this.is(":=") || this.is("=")) {
        this.next();
        branch.value = this.nested(true, () => this.expr(false, false));
      }
      if (this.is("if")) {
        this.next();
        branch.body = this.ruleBody();
      } else if (this.is("{")) {
        this.fail(`Rego v1 needs "if" after else: write \`else${branch.value ? " := …" : ""} if { … }\``);
      }
      rule.elses.push(branch);
    }
    if (this.kind() !== "eof" && !this.tok.nl && !this.is(";")) {
      this.fail(`unexpected ${this.describe()} after the rule (one rule per line)`);
    }
    if (this.is(";")) this.next();
    return [rule];
  }

  /** The head reference: `p`, `a.b.c`, `p[x]`, `p.q["r"][k]`. */
  private headRef(): HeadPart[] {
    const first = this.next();
    const out: HeadPart[] = [{ name: first.text, loc: this.loc(first) }];
    while (!this.tok.space) {
      if (this.is(".")) {
        this.next();
        const t = this.tok;
        if (t.kind !== "ident" || t.space) this.fail(`expected a name after "."`);
        this.next();
        out.push({ name: t.text, loc: this.loc(t) });
      } else if (this.is("[")) {
        const at = this.next();
        const term = this.nested(false, () => this.expr(false, false));
        this.expect("]");
        if (term.t === "scalar" && typeof term.value === "string") out.push({ name: term.value, loc: this.loc(at) });
        else out.push({ term, loc: this.loc(at) });
      } else break;
    }
    return out;
  }

  /** After `if`: a braced query, or one literal on the same line. */
  private ruleBody(): Literal[] {
    if (this.is("{")) return this.braced();
    return this.nested(true, () => [this.literal()]);
  }
}
