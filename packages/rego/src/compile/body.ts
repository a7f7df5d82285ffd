import type { Expr, Literal, Term } from "../ast.js";
import { RegoError } from "../errors.js";
import type { Body, Frame, K, Override, Sink } from "../eval/runtime.js";
import { Ctx, lookup, setPath } from "../eval/runtime.js";
import type { Value } from "../value.js";
import { equal, isObject, objectEntries, objectSize, RegoSet } from "../value.js";
import type { VarInfo } from "./scope.js";
import type { Gen, Stage } from "./values.js";
import { comparisonOf, value, wrap } from "./values.js";

export const kFalse: K = () => false;
const bodyTrue: Body = () => true;

/** Builds the matcher of a pattern once what follows it is known. */
type PatternBuilder = (next: Body) => Sink;

/**
 * Compiles a body: orders it for safety, then chains its literals; `tail`
 * compiles what runs after the last one (a rule head, a comprehension head),
 * given what is bound then.
 */
export function compileBody(g: Gen, lits: Literal[], bound: Set<VarInfo>, tail: (after: Set<VarInfo>) => Body): Body {
  const plan = g.safety.order(lits, bound);
  let next = tail(new Set(plan.after));
  for (let i = plan.lits.length - 1; i >= 0; i--) next = literal(g, plan.lits[i]!, new Set(plan.before[i]!), next);
  return next;
}

function literal(g: Gen, lit: Literal, bound: Set<VarInfo>, next: Body): Body {
  if (lit.with.length > 0) return withLiteral(g, lit, bound, next);
  if (lit.negated) {
    const inner = expression(g, lit.expr, bound, bodyTrue);
    return (f, k) => (inner(f, k) ? false : next(f, k));
  }
  return expression(g, lit.expr, bound, next);
}

function expression(g: Gen, e: Expr, bound: Set<VarInfo>, next: Body): Body {
  switch (e.e) {
    case "term": {
      const stages: Stage[] = [];
      const cmp = comparisonOf(g, e.term);
      if (cmp && e.term.t === "call") {
        const a = value(g, e.term.args[0]!, bound, stages);
        const b = value(g, e.term.args[1]!, bound, stages);
        return wrap(stages, (f, k) => {
          const x = a(f);
          if (x === undefined) return false;
          const y = b(f);
          return y !== undefined && cmp(x, y) && next(f, k);
        });
      }
      const get = value(g, e.term, bound, stages);
      return wrap(stages, (f, k) => {
        const v = get(f);
        return v !== undefined && v !== false && next(f, k);
      });
    }
    case "unify":
      return unify(g, e.lhs, e.rhs, e.op, bound, next);
    case "some":
      return next;
    case "somein":
      return someIn(g, e, bound, next);
    case "every":
      return every(g, e, bound, next);
  }
}

function unify(g: Gen, a: Term, b: Term, op: "=" | ":=", bound: Set<VarInfo>, next: Body): Body {
  const stages: Stage[] = [];
  let patternTerm: Term;
  let valueTerm: Term;
  if (op === ":=") {
    patternTerm = a;
    valueTerm = b;
  } else {
    const plan = g.safety.planUnify(a, b, bound);
    switch (plan.kind) {
      case "values": {
        const x = value(g, a, bound, stages);
        const y = value(g, b, bound, stages);
        return wrap(stages, (f, k) => {
          const vx = x(f);
          if (vx === undefined) return false;
          const vy = y(f);
          return vy !== undefined && equal(vx, vy) && next(f, k);
        });
      }
      case "match":
        patternTerm = plan.pattern;
        valueTerm = plan.value;
        break;
      case "pairs": {
        const befores: Set<VarInfo>[] = [];
        let cur = bound;
        for (const [x, y] of plan.pairs) {
          befores.push(cur);
          cur = g.safety.unify(x, y, cur).after;
        }
        let body = next;
        for (let i = plan.pairs.length - 1; i >= 0; i--) {
          const [x, y] = plan.pairs[i]!;
          body = unify(g, x, y, "=", new Set(befores[i]!), body);
        }
        return body;
      }
      case "unsafe":
        throw new RegoError("rego_unsafe_var_error", `var ${plan.need.v.name} is unsafe`, plan.need.loc);
    }
  }
  const get = value(g, valueTerm, bound, stages);
  const match = pattern(g, patternTerm, bound, stages)(next);
  return wrap(stages, (f, k) => {
    const v = get(f);
    return v !== undefined && match(f, v, k);
  });
}

/**
 * A pattern: unbound variables are bound to the matching part of the value;
 * arrays and objects match element by element; anything else must be equal.
 */
export function pattern(g: Gen, p: Term, bound: Set<VarInfo>, stages: Stage[]): PatternBuilder {
  const v = g.safety.local(p);
  if (v && !bound.has(v)) {
    bound.add(v);
    const slot = v.slot;
    return (next) => (f, x, k) => {
      f.v[slot] = x;
      return next(f, k);
    };
  }
  if (p.t === "array") {
    const items = p.items.map((item) => pattern(g, item, bound, stages));
    const holder = g.unit.alloc();
    const n = items.length;
    return (next) => {
      let cont = next;
      for (let i = n - 1; i >= 0; i--) {
        const m = items[i]!(cont);
        const idx = i;
        cont = (f, k) => m(f, (f.v[holder] as Value[])[idx]!, k);
      }
      const first = cont;
      return (f, x, k) => {
        if (!Array.isArray(x) || x.length !== n) return false;
        f.v[holder] = x;
        return first(f, k);
      };
    };
  }
  if (p.t === "object") {
    const entries = p.entries.map(
      ([key, val]) => [value(g, key, bound, stages), pattern(g, val, bound, stages)] as const,
    );
    const holder = g.unit.alloc();
    const n = entries.length;
    return (next) => {
      let cont = next;
      for (let i = n - 1; i >= 0; i--) {
        const [key, build] = entries[i]!;
        const m = build(cont);
        cont = (f, k) => {
          const kv = key(f);
          if (kv === undefined) return false;
          const x = lookup(f.v[holder] as Value, kv);
          return x !== undefined && m(f, x, k);
        };
      }
      const first = cont;
      return (f, x, k) => {
        if (!isObject(x) || objectSize(x) !== n) return false;
        f.v[holder] = x;
        return first(f, k);
      };
    };
  }
  const get = value(g, p, bound, stages);
  return (next) => (f, x, k) => {
    const w = get(f);
    return w !== undefined && equal(w, x) && next(f, k);
  };
}

function someIn(g: Gen, e: Extract<Expr, { e: "somein" }>, bound: Set<VarInfo>, next: Body): Body {
  const stages: Stage[] = [];
  const domain = value(g, e.domain, bound, stages);
  const keyBuild = e.key ? pattern(g, e.key, bound, stages) : undefined;
  const valueMatch = pattern(g, e.value, bound, stages)(next);
  if (!keyBuild) {
    return wrap(stages, (f, k) => {
      const d = domain(f);
      if (typeof d !== "object" || d === null) return false;
      if (Array.isArray(d)) {
        for (let i = 0; i < d.length; i++) if (valueMatch(f, d[i]!, k)) return true;
        return false;
      }
      if (d instanceof RegoSet) {
        for (const x of d.values()) if (valueMatch(f, x, k)) return true;
        return false;
      }
      for (const [, x] of objectEntries(d)) if (valueMatch(f, x, k)) return true;
      return false;
    });
  }
  const holder = g.unit.alloc();
  const keyMatch = keyBuild((f, k) => valueMatch(f, f.v[holder] as Value, k));
  return wrap(stages, (f, k) => {
    const d = domain(f);
    if (typeof d !== "object" || d === null) return false;
    if (Array.isArray(d)) {
      for (let i = 0; i < d.length; i++) {
        f.v[holder] = d[i];
        if (keyMatch(f, i, k)) return true;
      }
      return false;
    }
    if (d instanceof RegoSet) {
      for (const x of d.values()) {
        f.v[holder] = x;
        if (keyMatch(f, x, k)) return true;
      }
      return false;
    }
    for (const [key, x] of objectEntries(d)) {
      f.v[holder] = x;
      if (keyMatch(f, key, k)) return true;
    }
    return false;
  });
}

function every(g: Gen, e: Extract<Expr, { e: "every" }>, bound: Set<VarInfo>, next: Body): Body {
  const stages: Stage[] = [];
  const domain = value(g, e.domain, bound, stages);
  const key = e.key ? g.safety.local(e.key) : undefined;
  const val = g.safety.local(e.value)!;
  const inner = new Set(bound);
  if (key) inner.add(key);
  inner.add(val);
  const body = compileBody(g, e.body, inner, () => bodyTrue);
  const ks = key?.slot ?? g.unit.alloc();
  const vs = val.slot;
  const holds = (f: Frame, k: Value, v: Value): boolean => {
    f.v[ks] = k;
    f.v[vs] = v;
    return body(f, kFalse);
  };
  return wrap(stages, (f, k) => {
    const d = domain(f);
    if (typeof d !== "object" || d === null) return false;
    if (Array.isArray(d)) {
      for (let i = 0; i < d.length; i++) if (!holds(f, i, d[i]!)) return false;
    } else if (d instanceof RegoSet) {
      for (const x of d.values()) if (!holds(f, x, x)) return false;
    } else {
      for (const [kk, x] of objectEntries(d)) if (!holds(f, kk, x)) return false;
    }
    return next(f, k);
  });
}

/** What a `with` replaces: input or data, at a static path. */
function withTarget(g: Gen, t: Term): { doc: "input" | "data"; path: string[] } {
  const head = t.t === "ref" ? t.head : t;
  const ops = t.t === "ref" ? t.path : [];
  const res = head.t === "var" ? g.r.res.get(head) : undefined;
  const path: string[] = [];
  for (const op of ops) {
    if (op.t !== "scalar" || typeof op.value !== "string") {
      throw new RegoError("rego_compile_error", "a with target must be a static path (no variables)", op.loc);
    }
    path.push(op.value);
  }
  if (res?.k === "input") return { doc: "input", path: [...res.path, ...path] };
  if (res?.k === "data") {
    const full = [...res.path, ...path];
    let node: typeof g.root | undefined = g.root;
    for (const p of full) node = node?.children.get(p);
    if (node?.fn) {
      throw new RegoError("rego_compile_error", "with cannot replace functions: only input and data values", t.loc);
    }
    return { doc: "data", path: full };
  }
  throw new RegoError(
    "rego_compile_error",
    "with can replace input or data only (replacing functions and built-ins is not supported)",
    t.loc,
  );
}

/**
 * `expr with input.x as v`: the expression runs in a context with the new
 * documents (and an empty rule cache); what follows runs in the old one.
 */
function withLiteral(g: Gen, lit: Literal, bound: Set<VarInfo>, next: Body): Body {
  const stages: Stage[] = [];
  const mods = lit.with.map((w) => ({ ...withTarget(g, w.target), get: value(g, w.value, bound, stages) }));
  const saved = g.unit.alloc();
  const restore: Body = (f, k) => {
    const inner = f.c;
    f.c = f.v[saved] as Ctx;
    const r = next(f, k);
    f.c = inner;
    return r;
  };
  const inner = literal(g, { ...lit, with: [] }, bound, restore);
  return wrap(stages, (f, k) => {
    const outer = f.c;
    let input = outer.input;
    let data = outer.data;
    const overrides: Override[] = outer.overrides ? [...outer.overrides] : [];
    for (const m of mods) {
      const v = m.get(f);
      if (v === undefined) return false;
      if (m.doc === "input") input = setPath(input, m.path, v);
      else {
        data = setPath(data, m.path, v);
        overrides.push({ path: m.path, value: v });
      }
    }
    f.v[saved] = outer;
    f.c = new Ctx(input, data, outer.env, overrides.length > 0 ? overrides : undefined);
    const r = inner(f, k);
    f.c = outer;
    return r;
  });
}
