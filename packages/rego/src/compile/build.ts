import type { Literal, Module, Rule, Term } from "../ast.js";
import type { Location } from "../errors.js";
import { RegoError } from "../errors.js";
import type { DynamicRule } from "../eval/program.js";
import { Group, insertDynamic, Node } from "../eval/program.js";
import type { Body, Frame } from "../eval/runtime.js";
import type { Value } from "../value.js";
import { equal, type RegoObject, type RegoSet } from "../value.js";
import { compileBody, kFalse, pattern } from "./body.js";
import type { Need } from "./safety.js";
import { Safety, unsafe } from "./safety.js";
import type { Globals, VarInfo } from "./scope.js";
import { importAliases, Resolver, Scope, Unit } from "./scope.js";
import type { Gen, Stage } from "./values.js";
import { constOf, value, wrap } from "./values.js";

/** The compiled rules: the document tree and how many groups a rule cache holds. */
export interface Program {
  root: Node;
  groupCount: number;
}

type HeadKind = "single" | "function" | "multi" | "dynamic";

interface AltSpec {
  globals: Globals;
  root: Node;
  node: Node;
  kind: HeadKind;
  args?: Term[];
  body: Literal[];
  /** single/function/multi: [value or member]; dynamic: [...keys, value]. */
  heads: Term[];
  contains?: boolean;
  loc: Location;
  name: string;
}

function compileError(message: string, loc: Location): RegoError {
  return new RegoError("rego_compile_error", message, loc);
}

/** Compiles one way a rule yields (a body and its head), to a function that runs it in a frame. */
function compileAlternative(spec: AltSpec): { run: (f: Frame) => boolean; slots: number } {
  const unit = new Unit();
  const scope = new Scope(unit, undefined);
  const resolver = new Resolver(spec.globals, spec.root);
  for (const a of spec.args ?? []) resolver.declare(a, scope);
  resolver.body(spec.body, scope, spec.heads);
  const safety = new Safety(resolver);
  const g: Gen = { r: resolver, safety, unit, root: spec.root, node: spec.node };
  const bound = new Set<VarInfo>();
  const argStages: Stage[] = [];
  const args = (spec.args ?? []).map((a) => pattern(g, a, bound, argStages));
  const chain = compileBody(g, spec.body, bound, (after) => head(g, spec, after));
  let entry: Body = chain;
  for (let i = args.length - 1; i >= 0; i--) {
    const m = args[i]!(entry);
    const idx = i;
    entry = (f, k) => m(f, (f.args as Value[])[idx]!, k);
  }
  entry = wrap(argStages, entry);
  const run = entry;
  return { run: (f) => run(f, kFalse), slots: unit.slots };
}

/** What runs after a body's solution: the head value collected into the frame's `acc`. */
function head(g: Gen, spec: AltSpec, after: Set<VarInfo>): Body {
  const needs: Need[] = [];
  const scan = new Set(after);
  for (const h of spec.heads) g.safety.value(h, scan, needs);
  if (needs.length > 0) throw unsafe(needs[0]!);
  const stages: Stage[] = [];
  const loc = spec.loc;
  switch (spec.kind) {
    case "single":
    case "function": {
      const get = value(g, spec.heads[0]!, after, stages);
      const constant = constOf(spec.heads[0]!) !== undefined;
      const message =
        spec.kind === "function"
          ? `functions must not produce multiple outputs for same inputs (${spec.name})`
          : `complete rules must not produce multiple outputs (${spec.name})`;
      return wrap(stages, (f) => {
        const v = get(f);
        if (v === undefined) return false;
        if (f.acc === undefined) {
          f.acc = v;
          return constant;
        }
        if (!equal(f.acc as Value, v)) throw new RegoError("eval_conflict_error", message, loc);
        return false;
      });
    }
    case "multi": {
      const get = value(g, spec.heads[0]!, after, stages);
      return wrap(stages, (f) => {
        const v = get(f);
        if (v !== undefined) (f.acc as RegoSet).add(v);
        return false;
      });
    }
    case "dynamic": {
      const getters = spec.heads.map((h) => value(g, h, after, stages));
      const keys = getters.slice(0, -1);
      const val = getters[getters.length - 1]!;
      const contains = spec.contains === true;
      return wrap(stages, (f) => {
        const ks: Value[] = [];
        for (const k of keys) {
          const kv = k(f);
          if (kv === undefined) return false;
          ks.push(kv);
        }
        const v = val(f);
        if (v === undefined) return false;
        insertDynamic(f.acc as RegoObject, ks, v, contains, loc);
        return false;
      });
    }
  }
}

function trueTerm(loc: Location): Term {
  return { t: "scalar", value: true, loc };
}

function ruleName(node: Node): string {
  return ["data", ...node.path].join(".");
}

function firstLoc(node: Node): Location | undefined {
  return (node.single ?? node.multi ?? node.fn)?.rules[0]?.loc ?? node.dynamic[0]?.loc;
}

/** Rules that cannot share their place: a value rule with rules under it, a function and a value rule, … */
function checkConflicts(node: Node): void {
  const loc = firstLoc(node);
  const name = ruleName(node);
  if (loc) {
    if (node.single && node.multi)
      throw compileError(`${name} is defined both as a single-value and a multi-value rule`, loc);
    if (node.fn && (node.single || node.multi || node.dynamic.length > 0)) {
      throw compileError(`${name} is defined both as a function and as a rule`, loc);
    }
    if ((node.single || node.multi) && node.dynamic.length > 0) {
      throw compileError(`${name} is defined both with and without variables in the rule head`, loc);
    }
    if ((node.single || node.multi || node.fn) && node.children.size > 0) {
      const [child] = node.children.keys();
      throw compileError(`rule ${name} conflicts with rules under it (${name}.${child})`, loc);
    }
  }
  for (const c of node.children.values()) checkConflicts(c);
}

/** Rules may not depend on themselves (OPA refuses recursion at compile time). */
function checkRecursion(root: Node): void {
  const state = new Map<Node, 1 | 2>();
  const stack: Node[] = [];
  const visit = (n: Node) => {
    state.set(n, 1);
    stack.push(n);
    for (const d of n.deps) {
      if (state.get(d) === 1) {
        const cycle = [...stack.slice(stack.indexOf(d)), d].map(ruleName).join(" → ");
        throw new RegoError("rego_recursion_error", `rule ${ruleName(d)} is recursive: ${cycle}`, firstLoc(d));
      }
      if (!state.has(d)) visit(d);
    }
    stack.pop();
    state.set(n, 2);
  };
  const all = (n: Node) => {
    if (!state.has(n)) visit(n);
    for (const c of n.children.values()) all(c);
  };
  all(root);
}

/** Builds the document tree from parsed modules and compiles every rule. */
export function buildProgram(modules: Module[]): Program {
  const root = new Node([]);
  let groupCount = 0;
  const ruleNames = new Map<string, Set<string>>();
  for (const m of modules) {
    const key = m.pkg.join(".");
    const names = ruleNames.get(key) ?? new Set<string>();
    ruleNames.set(key, names);
    for (const r of m.rules) names.add((r.ref[0] as { name: string }).name);
  }
  const work: (() => void)[] = [];
  for (const m of modules) {
    const globals: Globals = {
      pkg: m.pkg,
      ruleNames: ruleNames.get(m.pkg.join("."))!,
      imports: importAliases(m.imports),
    };
    for (const imp of m.imports) {
      if (globals.ruleNames.has(imp.alias) && globals.imports.has(imp.alias)) {
        throw compileError(`import ${imp.alias} conflicts with the rule ${imp.alias} of this package`, imp.loc);
      }
    }
    let pkgNode = root;
    for (const p of m.pkg) pkgNode = pkgNode.child(p);
    for (const r of m.rules) place(r, pkgNode, globals);
  }
  checkConflicts(root);
  for (const w of work) w();
  checkRecursion(root);
  return { root, groupCount };

  function place(r: Rule, pkgNode: Node, globals: Globals): void {
    const first = r.ref[0] as { name: string; loc: Location };
    if (first.name === "input" || first.name === "data")
      throw compileError(`a rule cannot be named ${first.name}`, first.loc);
    let node = pkgNode;
    let i = 0;
    for (; i < r.ref.length; i++) {
      const part = r.ref[i]!;
      if (!("name" in part)) break;
      node = node.child(part.name);
    }
    const at = node;
    if (i < r.ref.length) {
      if (r.isDefault) throw compileError("a default rule cannot have variables in its head", r.loc);
      if (r.elses.length > 0)
        throw compileError('"else" cannot follow a rule with variables in its head', r.elses[0]!.loc);
      const keys = r.ref.slice(i).map((p): Term => ("name" in p ? { t: "scalar", value: p.name, loc: p.loc } : p.term));
      const val = r.kind === "contains" ? r.member! : (r.value ?? trueTerm(r.loc));
      for (const body of r.bodies) {
        const dyn: DynamicRule = { rule: r, run: () => false, slots: 0, loc: r.loc };
        at.dynamic.push(dyn);
        work.push(() => {
          const c = compileAlternative({
            globals,
            root,
            node: at,
            kind: "dynamic",
            body,
            heads: [...keys, val],
            contains: r.kind === "contains",
            loc: r.loc,
            name: ruleName(at),
          });
          dyn.run = c.run;
          dyn.slots = c.slots;
        });
      }
      return;
    }
    const kind = r.kind === "function" ? "function" : r.kind === "contains" ? "multi" : "single";
    const slot = kind === "function" ? "fn" : kind;
    let group = at[slot];
    if (!group) {
      group = new Group(groupCount++, kind, at);
      at[slot] = group;
      if (kind === "function") group.arity = r.args!.length;
    }
    if (kind === "function" && group.arity !== r.args!.length) {
      throw compileError(
        `function ${ruleName(at)} is defined with ${group.arity} and ${r.args!.length} arguments`,
        r.loc,
      );
    }
    group.rules.push(r);
    const grp = group;
    if (r.isDefault) {
      if (grp.defaultValue !== undefined) throw compileError(`multiple default rules for ${ruleName(at)}`, r.loc);
      const v = r.value ? constOf(r.value) : undefined;
      if (v === undefined)
        throw compileError("a default rule's value must be a constant (no variables, references or calls)", r.loc);
      grp.defaultValue = v;
      return;
    }
    work.push(() => {
      const value = kind === "multi" ? r.member! : (r.value ?? trueTerm(r.loc));
      r.bodies.forEach((body, bi) => {
        const branches: { body: Literal[]; value: Term; loc: Location }[] = [{ body, value, loc: r.loc }];
        if (bi === 0)
          for (const e of r.elses) branches.push({ body: e.body, value: e.value ?? trueTerm(e.loc), loc: e.loc });
        const alts = branches.map((b) => {
          const c = compileAlternative({
            globals,
            root,
            node: at,
            kind,
            args: r.args,
            body: b.body,
            heads: [b.value],
            loc: b.loc,
            name: ruleName(at),
          });
          return { run: c.run, slots: c.slots, loc: b.loc };
        });
        grp.defs.push({ alts, loc: r.loc });
      });
      // The first success settles the value when every rule yields the same constant.
      const values = grp.rules
        .filter((x) => !x.isDefault)
        .flatMap((x) => [x.value ?? trueTerm(x.loc), ...x.elses.map((e) => e.value ?? trueTerm(e.loc))]);
      const consts = values.map(constOf);
      grp.sameConstant =
        kind !== "multi" &&
        grp.rules.every((x) => x.elses.length === 0) &&
        consts.every((c) => c !== undefined && equal(c, consts[0]!));
    });
  }
}
