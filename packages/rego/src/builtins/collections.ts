import { lookup } from "../eval/runtime.js";
import type { PlainObject, Value } from "../value.js";
import { isObject, objectEntries, RegoObject, RegoSet } from "../value.js";
import type { BuiltinTable } from "./args.js";
import { arr, int, obj, objectOf, typeError } from "./args.js";

/** Keys given as an array, a set, or an object's keys. */
function keysOf(args: Value[], i: number): Value[] {
  const v = args[i]!;
  if (Array.isArray(v)) return v;
  if (v instanceof RegoSet) return [...v.values()];
  if (isObject(v)) return objectEntries(v).map(([k]) => k);
  throw typeError(i, "one of {array, object, set}", v);
}

/** object.union: b's entries win; where both hold objects, they are merged the same way. */
function union(a: PlainObject | RegoObject, b: PlainObject | RegoObject): RegoObject {
  const out = objectOf(objectEntries(a));
  for (const [k, v] of objectEntries(b)) {
    const cur = out.get(k);
    out.set(k, cur !== undefined && isObject(cur) && isObject(v) ? union(cur, v) : v);
  }
  return out;
}

/** Arrays and objects. */
export const collectionBuiltins: BuiltinTable = {
  "array.concat": { arity: 2, fn: (args) => [...arr(args, 0), ...arr(args, 1)] },
  "array.slice": {
    arity: 3,
    fn: (args) => {
      const a = arr(args, 0);
      let start = int(args, 1);
      let stop = int(args, 2);
      if (start < 0) start = 0;
      if (stop > a.length) stop = a.length;
      return start >= stop ? [] : a.slice(start, stop);
    },
  },
  "array.reverse": { arity: 1, fn: (args) => [...arr(args, 0)].reverse() },
  "object.get": {
    arity: 3,
    fn: (args) => {
      const o = obj(args, 0);
      const key = args[1]!;
      const fallback = args[2]!;
      if (!Array.isArray(key)) return lookup(o, key) ?? fallback;
      let cur: Value | undefined = o;
      // As OPA's Value.Find: through objects, arrays (by index) and sets (by member).
      for (const k of key) {
        if (cur === undefined || typeof cur !== "object" || cur === null) return fallback;
        cur = lookup(cur, k);
      }
      return cur ?? fallback;
    },
  },
  "object.keys": { arity: 1, fn: (args) => new RegoSet(objectEntries(obj(args, 0)).map(([k]) => k)) },
  "object.union": { arity: 2, fn: (args) => union(obj(args, 0), obj(args, 1)) },
  "object.union_n": {
    arity: 1,
    fn: (args) => {
      let out = new RegoObject();
      for (const o of arr(args, 0)) {
        if (!isObject(o)) throw typeError(0, "array of objects", args[0]!);
        out = union(out, o);
      }
      return out;
    },
  },
  "object.remove": {
    arity: 2,
    fn: (args) => {
      const out = objectOf(objectEntries(obj(args, 0)));
      for (const k of keysOf(args, 1)) out.delete(k);
      return out;
    },
  },
  "object.filter": {
    arity: 2,
    fn: (args) => {
      const o = obj(args, 0);
      const keep = new RegoSet(keysOf(args, 1));
      return objectOf(objectEntries(o).filter(([k]) => keep.has(k)));
    },
  },
};
