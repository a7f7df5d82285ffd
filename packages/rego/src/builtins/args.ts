import { BuiltinError } from "../errors.js";
import type { Ctx } from "../eval/runtime.js";
import type { PlainObject, Value } from "../value.js";
import { isObject, RegoObject, RegoSet, typeName } from "../value.js";

/** A built-in function: fixed arity (or -1 for any), pure unless it reads the context. */
export interface Builtin {
  arity: number;
  fn: (args: Value[], c: Ctx) => Value | undefined;
  /** Checks arguments known at compile time (a regex pattern, say); returns a problem or undefined. */
  check?: (args: (Value | undefined)[]) => string | undefined;
}

/** A table of built-ins by name. */
export type BuiltinTable = Record<string, Builtin>;

export function typeError(i: number, expected: string, got: Value): BuiltinError {
  return new BuiltinError(`operand ${i + 1} must be ${expected} but got ${typeName(got)}`, "eval_type_error");
}

export function str(args: Value[], i: number): string {
  const v = args[i]!;
  if (typeof v !== "string") throw typeError(i, "string", v);
  return v;
}

export function num(args: Value[], i: number): number {
  const v = args[i]!;
  if (typeof v !== "number") throw typeError(i, "number", v);
  return v;
}

/**
 * An arithmetic result, refused when it left the double range (infinity, or
 * NaN from infinities): OPA's numbers are arbitrary precision, ours are not,
 * so an overflow is an error rather than a different number.
 */
export function finite(x: number): number {
  if (!Number.isFinite(x)) throw new BuiltinError("arithmetic overflow: the result is out of the IEEE double range");
  return x;
}

export function int(args: Value[], i: number): number {
  const v = num(args, i);
  if (!Number.isInteger(v))
    throw new BuiltinError(`operand ${i + 1} must be integer number but got floating-point number`, "eval_type_error");
  return v;
}

export function bool(args: Value[], i: number): boolean {
  const v = args[i]!;
  if (typeof v !== "boolean") throw typeError(i, "boolean", v);
  return v;
}

export function arr(args: Value[], i: number): Value[] {
  const v = args[i]!;
  if (!Array.isArray(v)) throw typeError(i, "array", v);
  return v;
}

export function set(args: Value[], i: number): RegoSet {
  const v = args[i]!;
  if (!(v instanceof RegoSet)) throw typeError(i, "set", v);
  return v;
}

export function obj(args: Value[], i: number): PlainObject | RegoObject {
  const v = args[i]!;
  if (!isObject(v)) throw typeError(i, "object", v);
  return v;
}

/** An array's or a set's members. */
export function members(args: Value[], i: number, expected = "one of {array, set}"): readonly Value[] {
  const v = args[i]!;
  if (Array.isArray(v)) return v;
  if (v instanceof RegoSet) return v.values();
  throw typeError(i, expected, v);
}

/** Strings of an array or a set. */
export function strings(args: Value[], i: number): string[] {
  const out: string[] = [];
  for (const m of members(args, i, "one of {array, set} of strings")) {
    if (typeof m !== "string") throw typeError(i, "one of {array, set} of strings", args[i]!);
    out.push(m);
  }
  return out;
}

/** Builds a RegoObject from entries. */
export function objectOf(entries: Iterable<[Value, Value]>): RegoObject {
  const out = new RegoObject();
  for (const [k, v] of entries) out.set(k, v);
  return out;
}

/** Whether a string has characters outside the BMP (so that code points and UTF-16 units differ). */
export function hasSurrogates(s: string): boolean {
  return /[\ud800-\udfff]/.test(s);
}

/** A string's code points, as Go's runes. */
export function runes(s: string): string[] {
  return hasSurrogates(s) ? Array.from(s) : s.split("");
}
