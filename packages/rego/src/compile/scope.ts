import type { Expr, Import, Literal, Term } from "../ast.js";
import type { Builtin } from "../builtins/index.js";
import { builtins } from "../builtins/index.js";
import type { Location } from "../errors.js";
import { RegoError } from "../errors.js";
import type { Group, Node } from "../eval/program.js";

/** A local variable of a body; its value lives in a frame slot. */
export interface VarInfo {
  name: string;
  slot: number;
  wildcard: boolean;
  loc: Location;
}

/** What a variable occurrence means. */
export type Resolution =
  | { k: "local"; v: VarInfo }
  /** `input` or an alias of a path under it. */
  | { k: "input"; path: string[] }
  /** `data`, a rule of the package, or an alias of a path under data. */
  | { k: "data"; path: string[] };

/** What a call calls. */
export type CallTarget = { k: "builtin"; name: string; builtin: Builtin } | { k: "function"; group: Group };

/** The slots of one frame: a rule alternative, a function definition, a query. */
export class Unit {
  slots = 0;
  alloc(): number {
    return this.slots++;
  }
}

/** Variables declared in one body; closures (comprehensions, every) open a child scope. */
export class Scope {
  /** `at`: the index of the literal that declared the variable (with := or some), in this scope's body. */
  readonly vars = new Map<string, { v: VarInfo; declared: boolean; at: number }>();
  /**
   * For a closure: the index of the literal of the parent body it appears in.
   * Variables the parent declares (:=, some) from that literal on are not
   * visible in it, as in OPA: `{x | xs[x]}` before `x := …` has its own x.
   */
  pos = Number.POSITIVE_INFINITY;
  /** Outer variables used inside this closure: it can run only once they are bound. */
  readonly captures = new Map<VarInfo, Location>();
  constructor(
    readonly unit: Unit,
    readonly parent: Scope | undefined,
  ) {}
}

/** The names a module's rules see besides their locals. */
export interface Globals {
  pkg: string[];
  /** First names of the rules of the package (from every module of it). */
  ruleNames: Set<string>;
  /** Import aliases: `import data.lib` gives lib → data lib; `import input.claims` gives claims → input claims. */
  imports: Map<string, { k: "input" | "data"; path: string[] }>;
}

/** Reads a module's imports into aliases; only data, input, rego.v1 and future.keywords can be imported. */
export function importAliases(imports: Import[]): Globals["imports"] {
  const out: Globals["imports"] = new Map();
  for (const imp of imports) {
    const [root, ...rest] = imp.path;
    if (root === "rego" && rest.length === 1 && rest[0] === "v1") continue;
    if (root === "future" && rest[0] === "keywords") continue;
    if (root !== "data" && root !== "input") {
      throw new RegoError(
        "rego_compile_error",
        `cannot import ${imp.path.join(".")}: imports start with data, input, rego.v1 or future.keywords`,
        imp.loc,
      );
    }
    if (out.has(imp.alias)) throw new RegoError("rego_compile_error", `import ${imp.alias} is imported twice`, imp.loc);
    out.set(imp.alias, { k: root, path: rest });
  }
  return out;
}

/** Results of resolving one unit: what each variable and call means, and each closure's scope. */
export interface Resolved {
  res: Map<Term, Resolution>;
  calls: Map<Term, CallTarget>;
  closures: Map<Term | Expr, Scope>;
}

/**
 * Resolves the names of one unit. Each body is resolved outside-in: first its
 * own expressions (so that every variable the body uses is known), then its
 * closures, where a name the body uses refers to the body's variable.
 */
export class Resolver implements Resolved {
  readonly res = new Map<Term, Resolution>();
  readonly calls = new Map<Term, CallTarget>();
  readonly closures = new Map<Term | Expr, Scope>();
  private deferred: [Term | Expr, Scope, number][] = [];
  /** The index of the literal being resolved in the current body. */
  private litIndex = -1;

  constructor(
    private readonly globals: Globals,
    private readonly root: Node,
  ) {}

  /**
   * Declares a pattern's variables (`:=` targets, function arguments, some-in
   * variables). With `values`, as in `some f(x) in xs`, a term that cannot be
   * a pattern (a call, a reference, a set) is a value to compare with.
   */
  declare(t: Term, scope: Scope, values = false): void {
    if (values && t.t !== "var" && t.t !== "array" && t.t !== "object" && t.t !== "scalar") {
      this.term(t, scope);
      return;
    }
    switch (t.t) {
      case "var":
        if (t.name === "_") {
          this.res.set(t, { k: "local", v: this.fresh(t, scope) });
          return;
        }
        if (t.name === "input" || t.name === "data") {
          throw new RegoError("rego_compile_error", `cannot declare a variable named ${t.name}`, t.loc);
        }
        {
          const seen = scope.vars.get(t.name);
          if (seen) {
            throw new RegoError(
              "rego_compile_error",
              `var ${t.name} ${seen.declared ? "assigned" : "referenced"} above`,
              t.loc,
            );
          }
          const v: VarInfo = { name: t.name, slot: scope.unit.alloc(), wildcard: false, loc: t.loc };
          scope.vars.set(t.name, { v, declared: true, at: this.litIndex });
          this.res.set(t, { k: "local", v });
        }
        return;
      case "array":
        for (const item of t.items) this.declare(item, scope, values);
        return;
      case "object":
        for (const [k, v] of t.entries) {
          this.term(k, scope);
          this.declare(v, scope, values);
        }
        return;
      case "scalar":
        return;
      default:
        throw new RegoError(
          "rego_compile_error",
          "cannot assign to this: only variables, arrays and objects of them",
          t.loc,
        );
    }
  }

  private fresh(t: Term, scope: Scope): VarInfo {
    return { name: "_", slot: scope.unit.alloc(), wildcard: true, loc: t.loc };
  }

  /** Resolves a body: its literals, then `extra` terms (rule heads), then its closures. */
  body(lits: Literal[], scope: Scope, extra: Term[] = []): void {
    const outer = this.deferred;
    const outerIndex = this.litIndex;
    this.deferred = [];
    lits.forEach((lit, i) => {
      this.litIndex = i;
      this.literal(lit, scope);
    });
    this.litIndex = lits.length;
    for (const t of extra) this.term(t, scope);
    const mine = this.deferred;
    this.deferred = outer;
    for (const [node, parent, pos] of mine) this.closure(node, parent, pos);
    this.litIndex = outerIndex;
  }

  private literal(lit: Literal, scope: Scope): void {
    for (const w of lit.with) {
      // A with target names input or data; mocking a function or a built-in is refused here,
      // before the value (often a function name) could be mistaken for an unsafe variable.
      const head = w.target.t === "ref" ? w.target.head : w.target;
      const global = head.t === "var" ? this.global(head.name) : undefined;
      if (!global) {
        throw new RegoError(
          "rego_compile_error",
          "with can replace input or data only (replacing functions and built-ins is not supported)",
          w.target.loc,
        );
      }
      if (global.k === "data") {
        let node: Node | undefined = this.root;
        const ops = w.target.t === "ref" ? w.target.path : [];
        const path = [...global.path];
        for (const op of ops) if (op.t === "scalar" && typeof op.value === "string") path.push(op.value);
        for (const p of path) node = node?.children.get(p);
        if (node?.fn) {
          throw new RegoError(
            "rego_compile_error",
            "with cannot replace functions: only input and data values",
            w.target.loc,
          );
        }
      }
      this.res.set(head, global);
      this.term(w.value, scope);
    }
    const e = lit.expr;
    switch (e.e) {
      case "term":
        this.term(e.term, scope);
        this.outputArgument(lit);
        return;
      case "unify":
        this.term(e.rhs, scope);
        if (e.op === ":=") this.declare(e.lhs, scope);
        else this.term(e.lhs, scope);
        return;
      case "some":
        for (const v of e.vars) this.declare(v, scope);
        return;
      case "somein":
        this.term(e.domain, scope);
        if (e.key) this.declare(e.key, scope, true);
        this.declare(e.value, scope, true);
        return;
      case "every":
        this.term(e.domain, scope);
        this.deferred.push([e, scope, this.litIndex]);
        return;
    }
  }

  /** `f(a, b, out)` with one argument more than f takes: the last one receives the result. */
  private outputArgument(lit: Literal): void {
    const e = lit.expr;
    if (e.e !== "term" || e.term.t !== "call") return;
    const call = e.term;
    const target = this.calls.get(call)!;
    const arity = target.k === "builtin" ? target.builtin.arity : target.group.arity;
    if (arity < 0 || call.args.length !== arity + 1) return;
    const inner: Term = { t: "call", name: call.name, args: call.args.slice(0, -1), loc: call.loc };
    this.calls.set(inner, target);
    lit.expr = { e: "unify", op: "=", lhs: call.args[arity]!, rhs: inner };
  }

  term(t: Term, scope: Scope): void {
    switch (t.t) {
      case "scalar":
        return;
      case "var":
        this.res.set(t, this.lookup(t, scope));
        return;
      case "ref":
        this.term(t.head, scope);
        for (const p of t.path) this.term(p, scope);
        return;
      case "array":
      case "set":
        for (const item of t.items) this.term(item, scope);
        return;
      case "object":
        for (const [k, v] of t.entries) {
          this.term(k, scope);
          this.term(v, scope);
        }
        return;
      case "call":
        this.calls.set(t, this.callTarget(t, scope));
        for (const a of t.args) this.term(a, scope);
        return;
      case "arraycompr":
      case "setcompr":
      case "objectcompr":
        this.deferred.push([t, scope, this.litIndex]);
        return;
    }
  }

  private closure(node: Term | Expr, parent: Scope, pos: number): void {
    const scope = new Scope(parent.unit, parent);
    scope.pos = pos;
    this.closures.set(node, scope);
    if ("e" in node) {
      if (node.e !== "every") return;
      // The every variables come before its body: visible in all of it.
      const saved = this.litIndex;
      this.litIndex = -1;
      if (node.key) this.declare(node.key, scope);
      this.declare(node.value, scope);
      this.litIndex = saved;
      this.body(node.body, scope);
      return;
    }
    switch (node.t) {
      case "arraycompr":
      case "setcompr":
        this.body(node.body, scope, [node.head]);
        return;
      case "objectcompr":
        this.body(node.body, scope, [node.key, node.value]);
        return;
    }
  }

  private lookup(t: Extract<Term, { t: "var" }>, scope: Scope): Resolution {
    if (t.name === "_") return { k: "local", v: this.fresh(t, scope) };
    let limit = Number.POSITIVE_INFINITY;
    for (let s: Scope | undefined = scope; s; s = s.parent) {
      const hit = s.vars.get(t.name);
      const visible = hit !== undefined && !(hit.declared && hit.at >= limit);
      limit = s.pos;
      if (hit && visible) {
        for (let c: Scope | undefined = scope; c && c !== s; c = c.parent) c.captures.set(hit.v, t.loc);
        return { k: "local", v: hit.v };
      }
    }
    const global = this.global(t.name);
    if (global) return global;
    const v: VarInfo = { name: t.name, slot: scope.unit.alloc(), wildcard: false, loc: t.loc };
    scope.vars.set(t.name, { v, declared: false, at: this.litIndex });
    return { k: "local", v };
  }

  private global(name: string): Resolution | undefined {
    if (name === "input") return { k: "input", path: [] };
    if (name === "data") return { k: "data", path: [] };
    const alias = this.globals.imports.get(name);
    if (alias) return { k: alias.k, path: alias.path };
    if (this.globals.ruleNames.has(name)) return { k: "data", path: [...this.globals.pkg, name] };
    return undefined;
  }

  private callTarget(t: Extract<Term, { t: "call" }>, scope: Scope): CallTarget {
    const [first, ...rest] = t.name as [string, ...string[]];
    const shown = t.name.join(".");
    for (let s: Scope | undefined = scope; s; s = s.parent) {
      if (s.vars.has(first)) throw new RegoError("rego_type_error", `${first} is a variable, not a function`, t.loc);
    }
    let path: string[] | undefined;
    if (first === "data") path = rest;
    else if (first === "input") throw new RegoError("rego_type_error", `${shown} is input, not a function`, t.loc);
    else if (this.globals.imports.has(first)) {
      const alias = this.globals.imports.get(first)!;
      if (alias.k === "input") throw new RegoError("rego_type_error", `${shown} is input, not a function`, t.loc);
      path = [...alias.path, ...rest];
    } else if (this.globals.ruleNames.has(first)) path = [...this.globals.pkg, first, ...rest];
    if (path) {
      let node: Node | undefined = this.root;
      for (const p of path) node = node?.children.get(p);
      if (node?.fn) return { k: "function", group: node.fn };
      if (node?.hasRules)
        throw new RegoError("rego_type_error", `data.${path.join(".")} is a rule, not a function`, t.loc);
      throw new RegoError("rego_type_error", `undefined function data.${path.join(".")}`, t.loc);
    }
    const builtin = builtins.get(shown);
    if (!builtin) {
      throw new RegoError(
        "rego_type_error",
        `unknown built-in function ${shown}: this engine does not implement it (see the supported list in the README)`,
        t.loc,
      );
    }
    return { k: "builtin", name: shown, builtin };
  }
}
