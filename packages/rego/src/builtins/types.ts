import type { Value } from "../value.js";
import { formatValue, isObject, RegoSet, typeName } from "../value.js";
import type { BuiltinTable } from "./args.js";

/** Type checks, type_name, and print (which writes to the print hook, if any, and is always true). */
export const typeBuiltins: BuiltinTable = {
  is_number: { arity: 1, fn: ([v]) => typeof v === "number" },
  is_string: { arity: 1, fn: ([v]) => typeof v === "string" },
  is_boolean: { arity: 1, fn: ([v]) => typeof v === "boolean" },
  is_array: { arity: 1, fn: ([v]) => Array.isArray(v) },
  is_set: { arity: 1, fn: ([v]) => v instanceof RegoSet },
  is_object: { arity: 1, fn: ([v]) => isObject(v) },
  is_null: { arity: 1, fn: ([v]) => v === null },
  type_name: { arity: 1, fn: ([v]) => typeName(v!) },
  print: {
    arity: -1,
    fn: (args, c) => {
      c.env.print?.(
        args
          .map((a: Value | undefined) => (a === undefined ? "<undefined>" : typeof a === "string" ? a : formatValue(a)))
          .join(" "),
      );
      return true;
    },
  },
  trace: {
    arity: 1,
    fn: () => true,
  },
};
