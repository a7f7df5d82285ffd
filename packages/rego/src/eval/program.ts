import type { Rule } from "../ast.js";
import type { Location } from "../errors.js";
import { RegoError } from "../errors.js";
import type { Value } from "../value.js";
import { equal, isObject, objectEntries, RegoObject, RegoSet } from "../value.js";
import type { Ctx, Override } from "./runtime.js";
import { Frame, PENDING, UNDEF, walk } from "./runtime.js";

/**
 * One way a rule yields its value: a body and the head value after it. A
 * rule with `else` has several, tried in order; the first with a solution wins.
 */
export interface Alternative {
  /** Runs the body; the head value lands in the frame's `acc` (set members are added to it). */
  run: (f: Frame) => boolean;
  slots: number;
  loc: Location;
}

/** One rule as written (with its else chain), compiled. */
export interface Definition {
  alts: Alternative[];
  loc: Location;
}

/**
 * The rules sharing one static path: single-value rules (`p := v`, with
 * `default`), multi-value rules (`p contains x`) or functions (`f(x) := y`).
 */
export class Group {
  readonly defs: Definition[] = [];
  defaultValue: Value | undefined;
  /** Whether every alternative yields the same constant, so that the first success settles the value. */
  sameConstant = false;
  arity = 0;
  readonly rules: Rule[] = [];
  constructor(
    readonly id: number,
    readonly kind: "single" | "multi" | "function",
    readonly node: Node,
  ) {}

  get path(): readonly string[] {
    return this.node.path;
  }

  get name(): string {
    return ["data", ...this.node.path].join(".");
  }
}

/** A rule whose head has a variable part (`p[k] := v`, `a.b[x] contains y`): it adds entries to the object at its node. */
export interface DynamicRule {
  rule: Rule;
  /** Runs the body; each solution's keys and value are inserted into the object in `acc`. */
  run: (f: Frame) => boolean;
  slots: number;
  loc: Location;
}

/** A place in the `data` document that rules define: a package, a rule, or a prefix of ref-head rules. */
export class Node {
  readonly children = new Map<string, Node>();
  single: Group | undefined;
  multi: Group | undefined;
  fn: Group | undefined;
  readonly dynamic: DynamicRule[] = [];
  /** Nodes whose rules the rules here read; for the recursion check. */
  readonly deps = new Set<Node>();
  constructor(readonly path: readonly string[]) {}

  child(name: string): Node {
    let c = this.children.get(name);
    if (!c) {
      c = new Node([...this.path, name]);
      this.children.set(name, c);
    }
    return c;
  }

  get hasRules(): boolean {
    return this.single !== undefined || this.multi !== undefined || this.fn !== undefined || this.dynamic.length > 0;
  }
}

function conflict(message: string, loc: Location): RegoError {
  return new RegoError("eval_conflict_error", message, loc);
}

/** The value of a single- or multi-value group in this context (cached per context). */
export function groupValue(g: Group, c: Ctx): Value | undefined {
  if (c.overrides !== undefined) {
    const hit = overrideAt(g.path, c.overrides);
    if (hit !== NO_OVERRIDE) return hit;
  }
  const cached = c.cache[g.id];
  if (cached !== undefined) {
    if (cached === UNDEF) return undefined;
    if (cached === PENDING)
      throw new RegoError("eval_recursion_error", `rule ${g.name} depends on itself`, g.defs[0]?.loc);
    return cached as Value;
  }
  c.cache[g.id] = PENDING;
  let v = g.kind === "multi" ? multiValue(g, c) : singleValue(g, c, undefined);
  if (c.overrides !== undefined && v !== undefined) v = patchOverrides(g.path, v, c.overrides);
  c.cache[g.id] = v === undefined ? UNDEF : v;
  return v;
}

/** Evaluates a function group for these arguments. */
export function callFunction(g: Group, args: Value[], c: Ctx): Value | undefined {
  return singleValue(g, c, args);
}

function singleValue(g: Group, c: Ctx, args: Value[] | undefined): Value | undefined {
  let result: Value | undefined;
  for (const def of g.defs) {
    let value: Value | undefined;
    for (const alt of def.alts) {
      const f = new Frame(alt.slots, c);
      f.args = args;
      alt.run(f);
      if (f.acc !== undefined) {
        value = f.acc as Value;
        break;
      }
    }
    if (value === undefined) continue;
    if (result === undefined) {
      result = value;
      if (g.sameConstant) break;
    } else if (!equal(result, value)) {
      throw conflict(
        g.kind === "function"
          ? `functions must not produce multiple outputs for same inputs (${g.name})`
          : `complete rules must not produce multiple outputs (${g.name})`,
        def.loc,
      );
    }
  }
  return result === undefined ? g.defaultValue : result;
}

function multiValue(g: Group, c: Ctx): Value {
  const set = new RegoSet();
  for (const def of g.defs) {
    for (const alt of def.alts) {
      const f = new Frame(alt.slots, c);
      f.acc = set;
      alt.run(f);
    }
  }
  return set;
}

/** Stands for "no override applies" (undefined is a possible overridden value). */
const NO_OVERRIDE = Symbol("no override");

/** The value a `with data.…` gives at `path` when it covers the whole path (it or a prefix). */
function overrideAt(path: readonly string[], overrides: readonly Override[]): Value | undefined | typeof NO_OVERRIDE {
  let hit: Value | undefined | typeof NO_OVERRIDE = NO_OVERRIDE;
  for (const o of overrides) {
    if (o.path.length <= path.length && o.path.every((p, i) => p === path[i])) {
      hit = walk(o.value, path.slice(o.path.length));
    }
  }
  return hit;
}

/** A value with the overrides set below its path applied. */
function patchOverrides(path: readonly string[], value: Value, overrides: readonly Override[]): Value {
  let out = value;
  for (const o of overrides) {
    if (o.path.length > path.length && path.every((p, i) => p === o.path[i])) {
      out = setIn(out, o.path.slice(path.length), o.value);
    }
  }
  return out;
}

function setIn(doc: Value, path: readonly string[], value: Value): Value {
  if (path.length === 0) return value;
  const out = new RegoObject();
  if (isObject(doc)) for (const [k, v] of objectEntries(doc)) out.set(k, v);
  const [head, ...rest] = path as [string, ...string[]];
  out.set(head, setIn(out.get(head) ?? null, rest, value));
  return out;
}

/**
 * The whole object at a node: base data there, the values of the rules
 * below it (functions excepted), and the entries its variable-head rules add.
 */
export function nodeValue(node: Node, c: Ctx): Value | undefined {
  if (c.overrides !== undefined) {
    const hit = overrideAt(node.path, c.overrides);
    if (hit !== NO_OVERRIDE) return hit;
  }
  if (node.single || node.multi) return groupValue((node.single ?? node.multi)!, c);
  const cached = c.nodes?.get(node);
  if (cached !== undefined) return cached;
  const out = new RegoObject();
  const base = walk(c.data, node.path);
  if (isObject(base)) for (const [k, v] of objectEntries(base)) out.set(k, v);
  for (const [name, child] of node.children) {
    if (child.fn && !child.single && !child.multi && child.children.size === 0 && child.dynamic.length === 0) continue;
    const v = nodeValue(child, c);
    if (v !== undefined) out.set(name, v);
  }
  for (const d of node.dynamic) {
    const f = new Frame(d.slots, c);
    f.acc = out;
    d.run(f);
  }
  let v: Value = out;
  if (c.overrides !== undefined) v = patchOverrides(node.path, v, c.overrides);
  c.nodes ??= new Map();
  c.nodes.set(node, v);
  return v;
}

/** Objects and sets that insertDynamic made, so may still add to; any other value is shared and copied first. */
const building = new WeakSet<object>();

/**
 * Inserts one solution of a variable-head rule: `keys` lead from the node's
 * object to the entry, `value` goes there (or, for `contains`, into the set there).
 */
export function insertDynamic(root: RegoObject, keys: Value[], value: Value, contains: boolean, loc: Location): void {
  let obj = root;
  for (let i = 0; i < keys.length - 1; i++) {
    const k = keys[i]!;
    const cur = obj.get(k);
    if (cur !== undefined && cur instanceof RegoObject && building.has(cur)) {
      obj = cur;
      continue;
    }
    if (cur !== undefined && !isObject(cur)) throw conflict("object keys must be unique", loc);
    const next = new RegoObject();
    if (cur !== undefined) for (const [ck, cv] of objectEntries(cur as RegoObject)) next.set(ck, cv);
    building.add(next);
    obj.set(k, next);
    obj = next;
  }
  const last = keys[keys.length - 1]!;
  const cur = obj.get(last);
  if (contains) {
    if (cur instanceof RegoSet && building.has(cur)) {
      cur.add(value);
      return;
    }
    if (cur !== undefined && !(cur instanceof RegoSet)) throw conflict("object keys must be unique", loc);
    const set = new RegoSet(cur instanceof RegoSet ? cur.values() : undefined);
    set.add(value);
    building.add(set);
    obj.set(last, set);
    return;
  }
  if (cur === undefined) obj.set(last, value);
  else if (!equal(cur, value)) throw conflict("object keys must be unique", loc);
}
