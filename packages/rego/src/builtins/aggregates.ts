import type { Value } from "../value.js";
import { compare, equal, isObject, objectEntries, objectGet, objectSize, RegoSet } from "../value.js";
import type { BuiltinTable } from "./args.js";
import { finite, hasSurrogates, members, set, typeError } from "./args.js";

function numbers(args: Value[]): number[] {
  const out: number[] = [];
  for (const m of members(args, 0)) {
    if (typeof m !== "number") throw typeError(0, "one of {array, set} of numbers", args[0]!);
    out.push(m);
  }
  return out;
}

/** Whether `x` equals a member of the collection (array elements, set members, object values). */
function member(x: Value, coll: Value): boolean {
  if (Array.isArray(coll)) return coll.some((v) => equal(v, x));
  if (coll instanceof RegoSet) return coll.has(x);
  if (isObject(coll)) return objectEntries(coll).some(([, v]) => equal(v, x));
  return false;
}

/** Aggregates, set operations and the membership operator `in`. */
export const aggregateBuiltins: BuiltinTable = {
  count: {
    arity: 1,
    fn: ([v]) => {
      if (typeof v === "string") return hasSurrogates(v) ? Array.from(v).length : v.length;
      if (Array.isArray(v)) return v.length;
      if (v instanceof RegoSet) return v.size;
      if (isObject(v)) return objectSize(v);
      throw typeError(0, "one of {array, object, set, string}", v!);
    },
  },
  sum: { arity: 1, fn: (args) => finite(numbers(args).reduce((a, b) => a + b, 0)) },
  product: { arity: 1, fn: (args) => finite(numbers(args).reduce((a, b) => a * b, 1)) },
  max: {
    arity: 1,
    fn: (args) => {
      const ms = members(args, 0);
      if (ms.length === 0) return undefined;
      return ms.reduce((a, b) => (compare(b, a) > 0 ? b : a));
    },
  },
  min: {
    arity: 1,
    fn: (args) => {
      const ms = members(args, 0);
      if (ms.length === 0) return undefined;
      return ms.reduce((a, b) => (compare(b, a) < 0 ? b : a));
    },
  },
  sort: { arity: 1, fn: (args) => [...members(args, 0)].sort(compare) },
  and: {
    arity: 2,
    fn: (args) => {
      const a = set(args, 0);
      const b = set(args, 1);
      return new RegoSet(a.values().filter((x) => b.has(x)));
    },
  },
  or: {
    arity: 2,
    fn: (args) => {
      const out = new RegoSet(set(args, 0).values());
      for (const x of set(args, 1).values()) out.add(x);
      return out;
    },
  },
  intersection: {
    arity: 1,
    fn: (args) => {
      const sets = set(args, 0).values();
      for (const s of sets) if (!(s instanceof RegoSet)) throw typeError(0, "set of sets", args[0]!);
      if (sets.length === 0) return new RegoSet();
      const [first, ...rest] = sets as RegoSet[];
      return new RegoSet(first!.values().filter((x) => rest.every((s) => s.has(x))));
    },
  },
  union: {
    arity: 1,
    fn: (args) => {
      const out = new RegoSet();
      for (const s of set(args, 0).values()) {
        if (!(s instanceof RegoSet)) throw typeError(0, "set of sets", args[0]!);
        for (const x of s.values()) out.add(x);
      }
      return out;
    },
  },
  "internal.member_2": { arity: 2, fn: ([x, coll]) => member(x!, coll!) },
  "internal.member_3": {
    arity: 3,
    fn: ([k, v, coll]) => {
      if (Array.isArray(coll)) {
        return typeof k === "number" && Number.isInteger(k) && k >= 0 && k < coll.length && equal(coll[k]!, v!);
      }
      if (isObject(coll)) {
        const w = objectGet(coll, k!);
        return w !== undefined && equal(w, v!);
      }
      return false;
    },
  },
};
