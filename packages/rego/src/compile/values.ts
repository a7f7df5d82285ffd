import type { Term } from "../ast.js";
import type { Location } from "../errors.js";
import { BuiltinError, RegoError } from "../errors.js";
import type { Node } from "../eval/program.js";
import { callFunction, groupValue, nodeValue } from "../eval/program.js";
import type { Body, Ctx, Frame, Getter, K } from "../eval/runtime.js";
import { lookup, walk } from "../eval/runtime.js";
import type { Value } from "../value.js";
import { compare, equal, objectEntries, RegoObject, RegoSet } from "../value.js";
import { compileBody, kFalse } from "./body.js";
import type { Safety } from "./safety.js";
import { unsafe } from "./safety.js";
import type { Resolved, Unit, VarInfo } from "./scope.js";

/** What code generation for one unit needs. */
export interface Gen {
  r: Resolved;
  safety: Safety;
  unit: Unit;
  root: Node;
  /** The node whose rule is compiled (its dependencies are recorded there); none for queries. */
  node: Node | undefined;
}

/** Wraps the part of an expression that iterates around what follows. */
export type Stage = (inner: Body) => Body;

/** Runs the stages, outermost first, around `core`. */
export function wrap(stages: Stage[], core: Body): Body {
  let b = core;
  for (let i = stages.length - 1; i >= 0; i--) b = stages[i]!(b);
  return b;
}

/** The value of a term made of literals only, or undefined. */
export function constOf(t: Term): Value | undefined {
  switch (t.t) {
    case "scalar":
      return t.value;
    case "array": {
      const items = t.items.map(constOf);
      return items.every((x) => x !== undefined) ? (items as Value[]) : undefined;
    }
    case "set": {
      const items = t.items.map(constOf);
      return items.every((x) => x !== undefined) ? new RegoSet(items as Value[]) : undefined;
    }
    case "object": {
      const out = new RegoObject();
      for (const [k, v] of t.entries) {
        const kv = constOf(k);
        const vv = constOf(v);
        if (kv === undefined || vv === undefined) return undefined;
        out.set(kv, vv);
      }
      return out;
    }
  }
  return undefined;
}

const comparisons: Record<string, (a: Value, b: Value) => boolean> = {
  equal,
  neq: (a, b) => !equal(a, b),
  lt: (a, b) => compare(a, b) < 0,
  lte: (a, b) => compare(a, b) <= 0,
  gt: (a, b) => compare(a, b) > 0,
  gte: (a, b) => compare(a, b) >= 0,
};

/** The comparison a call is, if it is one (for the fast path of `a == b` as an expression). */
export function comparisonOf(g: Gen, t: Term): ((a: Value, b: Value) => boolean) | undefined {
  if (t.t !== "call" || t.args.length !== 2) return undefined;
  const target = g.r.calls.get(t);
  return target?.k === "builtin" ? comparisons[target.name] : undefined;
}

/**
 * Compiles a term to a getter of its value. Parts that iterate (references
 * with unbound keys, `xs[_]`) become stages that run first and leave their
 * value in a slot; variables they bind are added to `bound`.
 */
export function value(g: Gen, t: Term, bound: Set<VarInfo>, stages: Stage[]): Getter {
  const c = constOf(t);
  if (c !== undefined) return () => c;
  switch (t.t) {
    case "var":
      return varValue(g, t, bound, stages);
    case "ref":
      return refValue(g, t, bound, stages);
    case "array": {
      const items = t.items.map((x) => value(g, x, bound, stages));
      return (f) => allDefined(items, f);
    }
    case "set": {
      const items = t.items.map((x) => value(g, x, bound, stages));
      return (f) => {
        const out = new RegoSet();
        for (const item of items) {
          const v = item(f);
          if (v === undefined) return undefined;
          out.add(v);
        }
        return out;
      };
    }
    case "object": {
      const entries = t.entries.map(([k, v]) => [value(g, k, bound, stages), value(g, v, bound, stages)] as const);
      return (f) => {
        const out = new RegoObject();
        for (const [gk, gv] of entries) {
          const k = gk(f);
          if (k === undefined) return undefined;
          const v = gv(f);
          if (v === undefined) return undefined;
          out.set(k, v);
        }
        return out;
      };
    }
    case "call":
      return callValue(g, t, bound, stages);
    case "arraycompr":
    case "setcompr":
    case "objectcompr":
      return comprehension(g, t, bound);
    case "scalar":
      return () => t.value;
  }
}

/** Every getter's value in the frame, or undefined as soon as one is undefined (Rego's undefined propagates). */
function allDefined(getters: readonly Getter[], f: Frame): Value[] | undefined {
  const out: Value[] = new Array(getters.length);
  for (let i = 0; i < getters.length; i++) {
    const v = getters[i]!(f);
    if (v === undefined) return undefined;
    out[i] = v;
  }
  return out;
}

function varValue(g: Gen, t: Extract<Term, { t: "var" }>, bound: Set<VarInfo>, stages: Stage[]): Getter {
  const res = g.r.res.get(t);
  if (!res) throw new RegoError("rego_compile_error", `unresolved variable ${t.name}`, t.loc);
  switch (res.k) {
    case "local": {
      if (!bound.has(res.v)) throw unsafe({ v: res.v, loc: t.loc });
      const s = res.v.slot;
      return (f) => f.v[s];
    }
    case "input": {
      const path = res.path;
      if (path.length === 0) return (f) => f.c.input;
      return (f) => walk(f.c.input, path);
    }
    case "data":
      return dataRef(g, res.path, [], bound, stages, t.loc);
  }
}

function refValue(g: Gen, t: Extract<Term, { t: "ref" }>, bound: Set<VarInfo>, stages: Stage[]): Getter {
  const head = t.head;
  if (head.t === "var") {
    const res = g.r.res.get(head);
    if (res?.k === "data") return dataRef(g, res.path, t.path, bound, stages, t.loc);
    if (res?.k === "input" && res.path.length > 0) {
      const path = res.path;
      return opsOn(g, (f) => walk(f.c.input, path), t.path, bound, stages);
    }
  }
  return opsOn(g, value(g, head, bound, stages), t.path, bound, stages);
}

function stringOf(t: Term): string | undefined {
  return t.t === "scalar" && typeof t.value === "string" ? t.value : undefined;
}

/** Nodes with rules at or below `node`: what reading the whole node depends on. */
function ruleNodes(node: Node, out: Node[] = []): Node[] {
  if (node.hasRules) out.push(node);
  for (const c of node.children.values()) ruleNodes(c, out);
  return out;
}

/**
 * A reference into `data`. Its static prefix is walked through the rule tree
 * now: a rule's value, a package's whole value, or plain base data.
 */
function dataRef(g: Gen, base: string[], ops: Term[], bound: Set<VarInfo>, stages: Stage[], loc: Location): Getter {
  const full = [...base];
  let k = 0;
  for (; k < ops.length && stringOf(ops[k]!) !== undefined; k++) full.push(stringOf(ops[k])!);
  let node = g.root;
  let i = 0;
  for (; i < full.length; i++) {
    if (node.hasRules) break;
    const child = node.children.get(full[i]!);
    if (!child) {
      const path = full.slice();
      return opsOn(g, (f) => walk(f.c.data, path), ops.slice(k), bound, stages);
    }
    node = child;
  }
  const rest: Term[] = [...full.slice(i).map((s): Term => ({ t: "scalar", value: s, loc })), ...ops.slice(k)];
  let head: Getter;
  if (node.fn) {
    throw new RegoError(
      "rego_type_error",
      `function data.${node.path.join(".")} is used as a value: call it with its arguments`,
      loc,
    );
  }
  const group = node.single ?? node.multi;
  if (group) {
    g.node?.deps.add(node);
    head = (f) => groupValue(group, f.c);
  } else {
    for (const n of ruleNodes(node)) g.node?.deps.add(n);
    const at = node;
    head = (f) => nodeValue(at, f.c);
  }
  return opsOn(g, head, rest, bound, stages);
}

type Step = (f: Frame, cur: Value, k: K) => boolean;

function iterateInto(f: Frame, cur: Value, k: K, slot: number, next: Step): boolean {
  if (typeof cur !== "object" || cur === null) return false;
  if (Array.isArray(cur)) {
    for (let i = 0; i < cur.length; i++) {
      f.v[slot] = i;
      if (next(f, cur[i]!, k)) return true;
    }
    return false;
  }
  if (cur instanceof RegoSet) {
    for (const x of cur.values()) {
      f.v[slot] = x;
      if (next(f, x, k)) return true;
    }
    return false;
  }
  for (const [key, x] of objectEntries(cur)) {
    f.v[slot] = key;
    if (next(f, x, k)) return true;
  }
  return false;
}

/** `head[op]…`: lookups, and iteration over the keys given as unbound variables. */
function opsOn(g: Gen, head: Getter, ops: Term[], bound: Set<VarInfo>, stages: Stage[]): Getter {
  if (ops.length === 0) return head;
  type Op = { iter: number } | { key: Getter; constant?: Value };
  const plan: Op[] = [];
  for (const op of ops) {
    const v = g.safety.local(op);
    if (v && !bound.has(v)) {
      bound.add(v);
      plan.push({ iter: v.slot });
      continue;
    }
    const own: Stage[] = [];
    const key = value(g, op, bound, own);
    if (own.length > 0) {
      if (plan.some((p) => "iter" in p)) {
        throw new RegoError(
          "rego_compile_error",
          "a reference key that iterates, after a key that iterates, is not supported: bind it in an expression of its own first",
          op.loc,
        );
      }
      stages.push(...own);
    }
    plan.push({ key, constant: constOf(op) });
  }
  if (plan.every((p) => "key" in p)) {
    const keys = plan as { key: Getter; constant?: Value }[];
    if (keys.every((p) => p.constant !== undefined)) {
      const path = keys.map((p) => p.constant!);
      if (path.length === 1) {
        const k0 = path[0]!;
        return (f) => {
          const v = head(f);
          return v === undefined ? undefined : lookup(v, k0);
        };
      }
      return (f) => walk(head(f), path);
    }
    const getters = keys.map((p) => p.key);
    return (f) => {
      let cur = head(f);
      for (let i = 0; i < getters.length && cur !== undefined; i++) {
        const key = getters[i]!(f);
        if (key === undefined) return undefined;
        cur = lookup(cur, key);
      }
      return cur;
    };
  }
  const out = g.unit.alloc();
  stages.push((inner) => {
    let step: Step = (f, cur, k) => {
      f.v[out] = cur;
      return inner(f, k);
    };
    for (let i = plan.length - 1; i >= 0; i--) {
      const p = plan[i]!;
      const next = step;
      if ("iter" in p) {
        const slot = p.iter;
        step = (f, cur, k) => iterateInto(f, cur, k, slot, next);
      } else {
        const key = p.key;
        step = (f, cur, k) => {
          const kv = key(f);
          if (kv === undefined) return false;
          const v = lookup(cur, kv);
          return v !== undefined && next(f, v, k);
        };
      }
    }
    const first = step;
    return (f, k) => {
      const v = head(f);
      return v !== undefined && first(f, v, k);
    };
  });
  return (f) => f.v[out];
}

/** A built-in failed: undefined, as OPA does by default, or an error with `strictBuiltinErrors`. */
export function builtinFailed(err: unknown, c: Ctx, name: string, loc: Location): undefined {
  if (err instanceof BuiltinError) {
    if (c.env.strict) throw new RegoError(err.code, `${name}: ${err.message}`, loc);
    return undefined;
  }
  if (err instanceof RegoError) throw err;
  throw new RegoError("eval_builtin_error", `${name}: ${err instanceof Error ? err.message : String(err)}`, loc);
}

function callValue(g: Gen, t: Extract<Term, { t: "call" }>, bound: Set<VarInfo>, stages: Stage[]): Getter {
  const target = g.r.calls.get(t);
  if (!target) throw new RegoError("rego_compile_error", `unresolved call ${t.name.join(".")}`, t.loc);
  const args = t.args.map((a) => value(g, a, bound, stages));
  const loc = t.loc;
  if (target.k === "function") {
    const group = target.group;
    if (args.length !== group.arity) {
      throw new RegoError(
        "rego_type_error",
        `function ${group.name} takes ${group.arity} argument${group.arity === 1 ? "" : "s"}, got ${args.length}`,
        loc,
      );
    }
    g.node?.deps.add(group.node);
    return (f) => {
      const vals = allDefined(args, f);
      return vals === undefined ? undefined : callFunction(group, vals, f.c);
    };
  }
  const { name, builtin } = target;
  if (builtin.arity >= 0 && args.length !== builtin.arity) {
    throw new RegoError(
      "rego_type_error",
      `${name} takes ${builtin.arity} argument${builtin.arity === 1 ? "" : "s"}, got ${args.length}`,
      loc,
    );
  }
  if (builtin.check) {
    const problem = builtin.check(t.args.map(constOf));
    if (problem) throw new RegoError("rego_type_error", `${name}: ${problem}`, loc);
  }
  const fn = builtin.fn;
  if (name === "print") {
    return (f) => fn(args.map((a) => a(f)) as Value[], f.c);
  }
  const cmp = comparisons[name];
  if (cmp) {
    const [a, b] = args as [Getter, Getter];
    return (f) => {
      const x = a(f);
      if (x === undefined) return undefined;
      const y = b(f);
      return y === undefined ? undefined : cmp(x, y);
    };
  }
  const call = (vals: Value[], f: Frame): Value | undefined => {
    try {
      return fn(vals, f.c);
    } catch (err) {
      return builtinFailed(err, f.c, name, loc);
    }
  };
  switch (args.length) {
    case 0:
      return (f) => call([], f);
    case 1: {
      const [a] = args as [Getter];
      return (f) => {
        const x = a(f);
        return x === undefined ? undefined : call([x], f);
      };
    }
    case 2: {
      const [a, b] = args as [Getter, Getter];
      return (f) => {
        const x = a(f);
        if (x === undefined) return undefined;
        const y = b(f);
        return y === undefined ? undefined : call([x, y], f);
      };
    }
  }
  return (f) => {
    const vals = allDefined(args, f);
    if (vals === undefined) return undefined;
    return call(vals, f);
  };
}

function comprehension(
  g: Gen,
  t: Extract<Term, { t: "arraycompr" | "setcompr" | "objectcompr" }>,
  outer: Set<VarInfo>,
): Getter {
  const acc = g.unit.alloc();
  const bound = new Set(outer);
  const loc = t.loc;
  if (t.t === "objectcompr") {
    const body = compileBody(g, t.body, bound, (after) => {
      const stages: Stage[] = [];
      const key = value(g, t.key, after, stages);
      const val = value(g, t.value, after, stages);
      return wrap(stages, (f) => {
        const k = key(f);
        const v = val(f);
        if (k === undefined || v === undefined) return false;
        const o = f.v[acc] as RegoObject;
        const cur = o.get(k);
        if (cur !== undefined && !equal(cur, v))
          throw new RegoError("eval_conflict_error", "object keys must be unique", loc);
        o.set(k, v);
        return false;
      });
    });
    return (f) => {
      const o = new RegoObject();
      f.v[acc] = o;
      body(f, kFalse);
      return o;
    };
  }
  const isSet = t.t === "setcompr";
  const body = compileBody(g, t.body, bound, (after) => {
    const stages: Stage[] = [];
    const head = value(g, t.head, after, stages);
    return wrap(
      stages,
      isSet
        ? (f) => {
            const v = head(f);
            if (v !== undefined) (f.v[acc] as RegoSet).add(v);
            return false;
          }
        : (f) => {
            const v = head(f);
            if (v !== undefined) (f.v[acc] as Value[]).push(v);
            return false;
          },
    );
  });
  if (isSet) {
    return (f) => {
      const s = new RegoSet();
      f.v[acc] = s;
      body(f, kFalse);
      return s;
    };
  }
  return (f) => {
    const a: Value[] = [];
    f.v[acc] = a;
    body(f, kFalse);
    return a;
  };
}
