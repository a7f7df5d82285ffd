import type { Literal, Term } from "../ast.js";
import type { Location } from "../errors.js";
import { RegoError } from "../errors.js";
import type { Resolved, VarInfo } from "./scope.js";

/** A variable that must be bound before an expression can run. */
export interface Need {
  v: VarInfo;
  loc: Location;
}

/** How `a = b` unifies, given what is bound. */
export type UnifyPlan =
  | { kind: "values" }
  /** `pattern` has unbound variables that `value` binds. */
  | { kind: "match"; pattern: Term; value: Term }
  /** Both sides are arrays or objects with unbound variables: element pairs in an order that works. */
  | { kind: "pairs"; pairs: [Term, Term][] }
  | { kind: "unsafe"; need: Need };

/**
 * Which variables each expression binds and needs. Reordering a body (so that
 * `x > 1; x := 2` runs as `x := 2; x > 1`) and code generation both use it,
 * so they agree on where each variable is bound.
 */
export class Safety {
  constructor(private readonly r: Resolved) {}

  /** The local variable a term is, if it is one. */
  local(t: Term): VarInfo | undefined {
    if (t.t !== "var") return undefined;
    const res = this.r.res.get(t);
    return res?.k === "local" ? res.v : undefined;
  }

  /**
   * Scans a term evaluated for its value. Unbound variables used as
   * reference keys (`xs[i]`) are bound by iteration and added to `bound`;
   * any other unbound variable is a need.
   */
  value(t: Term, bound: Set<VarInfo>, needs: Need[]): void {
    switch (t.t) {
      case "scalar":
        return;
      case "var": {
        const v = this.local(t);
        if (v && !bound.has(v)) needs.push({ v, loc: t.loc });
        return;
      }
      case "ref":
        this.value(t.head, bound, needs);
        for (const op of t.path) {
          const v = this.local(op);
          if (v && !bound.has(v)) bound.add(v);
          else this.value(op, bound, needs);
        }
        return;
      case "array":
      case "set":
        for (const item of t.items) this.value(item, bound, needs);
        return;
      case "object":
        for (const [k, v] of t.entries) {
          this.value(k, bound, needs);
          this.value(v, bound, needs);
        }
        return;
      case "call":
        for (const a of t.args) this.value(a, bound, needs);
        return;
      default:
        this.captures(t, bound, needs);
    }
  }

  /** A closure (comprehension or every) needs the outer variables it uses. */
  captures(node: Term | object, bound: Set<VarInfo>, needs: Need[]): void {
    const scope = this.r.closures.get(node as Term);
    if (!scope) return;
    for (const [v, loc] of scope.captures) if (!bound.has(v)) needs.push({ v, loc });
  }

  /** Scans a pattern: unbound variables in pattern positions (the term, array items, object values) get bound. */
  pattern(t: Term, bound: Set<VarInfo>, needs: Need[]): void {
    switch (t.t) {
      case "var": {
        const v = this.local(t);
        if (v && !bound.has(v)) bound.add(v);
        return;
      }
      case "array":
        for (const item of t.items) this.pattern(item, bound, needs);
        return;
      case "object":
        for (const [k, v] of t.entries) {
          this.value(k, bound, needs);
          this.pattern(v, bound, needs);
        }
        return;
      default:
        this.value(t, bound, needs);
    }
  }

  /** Whether a term has unbound variables in pattern positions. */
  private hasPatternVars(t: Term, bound: Set<VarInfo>): boolean {
    switch (t.t) {
      case "var": {
        const v = this.local(t);
        return v !== undefined && !bound.has(v);
      }
      case "array":
        return t.items.some((item) => this.hasPatternVars(item, bound));
      case "object":
        return t.entries.some(([, v]) => this.hasPatternVars(v, bound));
      default:
        return false;
    }
  }

  planUnify(a: Term, b: Term, bound: Set<VarInfo>): UnifyPlan {
    const pa = this.hasPatternVars(a, bound);
    const pb = this.hasPatternVars(b, bound);
    if (!pa && !pb) return { kind: "values" };
    if (pa && !pb) return { kind: "match", pattern: a, value: b };
    if (!pa && pb) return { kind: "match", pattern: b, value: a };
    let pairs: [Term, Term][] | undefined;
    if (a.t === "array" && b.t === "array" && a.items.length === b.items.length) {
      pairs = a.items.map((x, i) => [x, b.items[i]!]);
    } else if (a.t === "object" && b.t === "object" && a.entries.length === b.entries.length) {
      const keyOf = (k: Term) => (k.t === "scalar" ? JSON.stringify(k.value) : undefined);
      const bs = new Map(b.entries.map(([k, v]) => [keyOf(k), v]));
      if (a.entries.every(([k]) => keyOf(k) !== undefined && bs.has(keyOf(k)))) {
        pairs = a.entries.map(([k, v]) => [v, bs.get(keyOf(k))!]);
      }
    }
    const firstNeed = (): Need => {
      const needs: Need[] = [];
      this.value(a, new Set(bound), needs);
      return needs[0] ?? { v: this.local(a)!, loc: a.loc };
    };
    if (!pairs) return { kind: "unsafe", need: firstNeed() };
    const ordered: [Term, Term][] = [];
    let remaining = pairs;
    let b2 = new Set(bound);
    while (remaining.length > 0) {
      const next: [Term, Term][] = [];
      for (const p of remaining) {
        const r = this.unify(p[0], p[1], b2);
        if (r.needs.length === 0) {
          ordered.push(p);
          b2 = r.after;
        } else next.push(p);
      }
      if (next.length === remaining.length) {
        const r = this.unify(next[0]![0], next[0]![1], b2);
        return { kind: "unsafe", need: r.needs[0]! };
      }
      remaining = next;
    }
    return { kind: "pairs", pairs: ordered };
  }

  /** What `a = b` needs, and what is bound after it. */
  unify(a: Term, b: Term, bound: Set<VarInfo>): { needs: Need[]; after: Set<VarInfo> } {
    const plan = this.planUnify(a, b, bound);
    const after = new Set(bound);
    const needs: Need[] = [];
    switch (plan.kind) {
      case "values":
        this.value(a, after, needs);
        this.value(b, after, needs);
        break;
      case "match":
        this.value(plan.value, after, needs);
        this.pattern(plan.pattern, after, needs);
        break;
      case "pairs": {
        let cur = after;
        for (const [x, y] of plan.pairs) {
          const r = this.unify(x, y, cur);
          needs.push(...r.needs);
          cur = r.after;
        }
        return { needs, after: cur };
      }
      case "unsafe":
        needs.push(plan.need);
    }
    return { needs, after };
  }

  /** What a literal needs, and what is bound after it. */
  literal(lit: Literal, bound: Set<VarInfo>): { needs: Need[]; after: Set<VarInfo> } {
    let after = new Set(bound);
    const needs: Need[] = [];
    for (const w of lit.with) this.value(w.value, after, needs);
    const e = lit.expr;
    switch (e.e) {
      case "term":
        this.value(e.term, after, needs);
        break;
      case "unify":
        if (e.op === ":=") {
          this.value(e.rhs, after, needs);
          this.pattern(e.lhs, after, needs);
        } else {
          const r = this.unify(e.lhs, e.rhs, after);
          needs.push(...r.needs);
          after = r.after;
        }
        break;
      case "some":
        break;
      case "somein":
        this.value(e.domain, after, needs);
        if (e.key) this.pattern(e.key, after, needs);
        this.pattern(e.value, after, needs);
        break;
      case "every":
        this.value(e.domain, after, needs);
        this.captures(e, after, needs);
        break;
    }
    if (lit.negated) {
      // Inside `not`, only wildcards may be bound there; other variables must come bound.
      for (const v of after) if (!bound.has(v) && !v.wildcard) needs.push({ v, loc: v.loc });
      after = new Set(bound);
    }
    return { needs, after };
  }

  /**
   * Orders a body so that every variable is bound before it is used,
   * keeping the written order where it already works (as OPA does).
   */
  order(lits: Literal[], bound: Set<VarInfo>): { lits: Literal[]; before: Set<VarInfo>[]; after: Set<VarInfo> } {
    const remaining = lits.filter((l) => l.expr.e !== "some");
    const out: Literal[] = [];
    const before: Set<VarInfo>[] = [];
    let cur = bound;
    while (remaining.length > 0) {
      let picked = -1;
      let after: Set<VarInfo> | undefined;
      for (let i = 0; i < remaining.length; i++) {
        const r = this.literal(remaining[i]!, cur);
        if (r.needs.length === 0) {
          picked = i;
          after = r.after;
          break;
        }
      }
      if (picked < 0) {
        const needs = remaining.flatMap((l) => this.literal(l, cur).needs);
        needs.sort((x, y) => x.loc.line - y.loc.line || x.loc.col - y.loc.col);
        throw unsafe(needs[0]!);
      }
      out.push(remaining[picked]!);
      before.push(cur);
      remaining.splice(picked, 1);
      cur = after!;
    }
    return { lits: out, before, after: cur };
  }
}

export function unsafe(n: Need): RegoError {
  const name = n.v.wildcard ? "_" : n.v.name;
  return new RegoError(
    "rego_unsafe_var_error",
    `var ${name} is unsafe: nothing binds it (assign it with :=, iterate with some … in, or check the spelling)`,
    n.loc,
  );
}
