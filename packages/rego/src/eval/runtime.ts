import type { Value } from "../value.js";
import { objectEntries, objectGet, RegoObject, RegoSet } from "../value.js";

/** Settings of one evaluation, shared by every context it creates with `with`. */
export interface EvalEnv {
  strict: boolean;
  /** time.now_ns(), fixed at its first use so that one evaluation sees one time. */
  nowNs?: number;
  print?: (message: string) => void;
}

/** A `with data.path as value` in force. */
export interface Override {
  path: readonly string[];
  value: Value;
}

/**
 * The documents of an evaluation and its rule cache. `with` evaluates its
 * expression in a child context (another input or data, an empty cache).
 */
export class Ctx {
  /** Values of single- and multi-value rule groups by group id; UNDEF for undefined, PENDING while computed. */
  readonly cache: unknown[] = [];
  /** Values of document-tree nodes (packages, ref-head prefixes) computed whole. */
  nodes: Map<object, Value> | undefined;
  constructor(
    readonly input: Value | undefined,
    readonly data: Value,
    readonly env: EvalEnv,
    readonly overrides?: readonly Override[],
  ) {}
}

export const UNDEF = Symbol("undefined");
export const PENDING = Symbol("pending");

/**
 * The variables of one rule body (or query) while it is evaluated. Slots are
 * assigned at compile time; the compiler knows where each variable is bound,
 * so a slot is never read before it is written.
 */
export class Frame {
  readonly v: any[];
  /** What the body collects (a rule's value, a set being built). */
  acc: any;
  /** A function's arguments. */
  args: Value[] | undefined;
  constructor(
    size: number,
    public c: Ctx,
  ) {
    this.v = new Array(size);
  }
}

/** Continuation after a solution; returns true to stop looking for more. */
export type K = (f: Frame) => boolean;
/** A compiled (part of a) query: calls `k` for each solution; true once `k` said stop. */
export type Body = (f: Frame, k: K) => boolean;
/** A deterministic term: its value, or undefined. */
export type Getter = (f: Frame) => Value | undefined;
/** Takes a value produced by a term and goes on. */
export type Sink = (f: Frame, v: Value, k: K) => boolean;

/** `cur[key]`: array index, object key or set member; undefined when absent. */
export function lookup(cur: Value, key: Value): Value | undefined {
  if (typeof cur !== "object" || cur === null) return undefined;
  if (Array.isArray(cur)) {
    return typeof key === "number" && Number.isInteger(key) && key >= 0 && key < cur.length ? cur[key] : undefined;
  }
  if (cur instanceof RegoSet) return cur.has(key) ? key : undefined;
  return objectGet(cur, key);
}

/** The value at a static path, or undefined. */
export function walk(cur: Value | undefined, path: readonly Value[]): Value | undefined {
  for (let i = 0; i < path.length && cur !== undefined; i++) cur = lookup(cur, path[i]!);
  return cur;
}

/**
 * `doc` with the value at `path` replaced (objects made along the way as
 * needed): what `with input.a.b as v` evaluates against.
 */
export function setPath(doc: Value | undefined, path: readonly string[], value: Value): Value {
  if (path.length === 0) return value;
  const [head, ...rest] = path as [string, ...string[]];
  const out = new RegoObject();
  if (typeof doc === "object" && doc !== null && !Array.isArray(doc) && !(doc instanceof RegoSet)) {
    for (const [k, v] of objectEntries(doc)) out.set(k, v);
  }
  out.set(head, setPath(out.get(head), rest, value));
  return out;
}
