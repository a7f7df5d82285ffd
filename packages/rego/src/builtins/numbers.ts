import { BuiltinError } from "../errors.js";
import type { Value } from "../value.js";
import { compare, equal, RegoSet, typeName } from "../value.js";
import type { BuiltinTable } from "./args.js";
import { finite, int, num, typeError } from "./args.js";

/** Go's math.Round: halves away from zero. */
function goRound(x: number): number {
  return Math.sign(x) * Math.round(Math.abs(x));
}

/** A decimal number, written so that a long run of digits never backtracks (each digit has one place to go). */
const decimal = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

function toNumber(v: Value): number {
  switch (typeof v) {
    case "number":
      return v;
    case "boolean":
      return v ? 1 : 0;
    case "string": {
      const s = v.trim() === v ? v : "";
      if (!decimal.test(s)) throw new BuiltinError(`invalid syntax: ${JSON.stringify(v)} is not a number`);
      const n = Number(s);
      if (!Number.isFinite(n)) throw new BuiltinError(`${JSON.stringify(v)} is out of range`);
      // An integer past 2^53 would come out as another integer: refused, as such literals are.
      if (!Number.isSafeInteger(n) && /^[+-]?\d+$/.test(s) && (n < 0 ? -BigInt(s) : BigInt(s)) > 2n ** 53n) {
        throw new BuiltinError(`${JSON.stringify(v)} is too large to be exact (integers are exact only up to 2^53)`);
      }
      return n;
    }
  }
  if (v === null) return 0;
  throw typeError(0, "one of {null, boolean, number, string}", v);
}

/** An exact integer result as a double; one that a double cannot hold exactly is an error, not a rounded number. */
function exact(n: bigint): number {
  const x = Number(n);
  if (!Number.isFinite(x) || BigInt(x) !== n)
    throw new BuiltinError(`the result ${n} cannot be held exactly as an IEEE double`);
  return x;
}

function bits(args: Value[], op: (a: bigint, b: bigint) => bigint): number {
  return exact(op(BigInt(int(args, 0)), BigInt(int(args, 1))));
}

/** Comparison, arithmetic, rounding, ranges, to_number and bits. */
export const numberBuiltins: BuiltinTable = {
  equal: { arity: 2, fn: ([a, b]) => equal(a!, b!) },
  neq: { arity: 2, fn: ([a, b]) => !equal(a!, b!) },
  lt: { arity: 2, fn: ([a, b]) => compare(a!, b!) < 0 },
  lte: { arity: 2, fn: ([a, b]) => compare(a!, b!) <= 0 },
  gt: { arity: 2, fn: ([a, b]) => compare(a!, b!) > 0 },
  gte: { arity: 2, fn: ([a, b]) => compare(a!, b!) >= 0 },
  plus: { arity: 2, fn: (args) => finite(num(args, 0) + num(args, 1)) },
  minus: {
    arity: 2,
    fn: (args) => {
      const [a, b] = args as [Value, Value];
      if (typeof a === "number" && typeof b === "number") return finite(a - b);
      if (a instanceof RegoSet && b instanceof RegoSet) return new RegoSet(a.values().filter((x) => !b.has(x)));
      if (typeof a !== "number" && !(a instanceof RegoSet)) throw typeError(0, "one of {number, set}", a);
      throw typeError(1, typeName(a), b);
    },
  },
  mul: { arity: 2, fn: (args) => finite(num(args, 0) * num(args, 1)) },
  div: {
    arity: 2,
    fn: (args) => {
      const a = num(args, 0);
      const b = num(args, 1);
      if (b === 0) throw new BuiltinError("divide by zero");
      return finite(a / b);
    },
  },
  rem: {
    arity: 2,
    fn: (args) => {
      const a = num(args, 0);
      const b = num(args, 1);
      if (!Number.isInteger(a) || !Number.isInteger(b)) throw new BuiltinError("modulo on floating-point number");
      if (b === 0) throw new BuiltinError("modulo by zero");
      const r = a % b;
      return r === 0 ? 0 : r;
    },
  },
  abs: { arity: 1, fn: (args) => Math.abs(num(args, 0)) },
  round: { arity: 1, fn: (args) => goRound(num(args, 0)) },
  ceil: { arity: 1, fn: (args) => Math.ceil(num(args, 0)) },
  floor: { arity: 1, fn: (args) => Math.floor(num(args, 0)) },
  "numbers.range": {
    arity: 2,
    fn: (args) => {
      const a = int(args, 0);
      const b = int(args, 1);
      const out: number[] = [];
      if (Math.abs(b - a) > 10_000_000) throw new BuiltinError("range too large");
      if (a <= b) for (let i = a; i <= b; i++) out.push(i);
      else for (let i = a; i >= b; i--) out.push(i);
      return out;
    },
  },
  "numbers.range_step": {
    arity: 3,
    fn: (args) => {
      const a = int(args, 0);
      const b = int(args, 1);
      const step = int(args, 2);
      if (step <= 0) throw new BuiltinError("step must be a positive number above zero");
      if (Math.abs(b - a) / step > 10_000_000) throw new BuiltinError("range too large");
      const out: number[] = [];
      if (a <= b) for (let i = a; i <= b; i += step) out.push(i);
      else for (let i = a; i >= b; i -= step) out.push(i);
      return out;
    },
  },
  to_number: { arity: 1, fn: ([v]) => toNumber(v!) },
  "bits.and": { arity: 2, fn: (args) => bits(args, (a, b) => a & b) },
  "bits.or": { arity: 2, fn: (args) => bits(args, (a, b) => a | b) },
  "bits.xor": { arity: 2, fn: (args) => bits(args, (a, b) => a ^ b) },
  "bits.negate": { arity: 1, fn: (args) => exact(~BigInt(int(args, 0))) },
  "bits.lsh": {
    arity: 2,
    fn: (args) => {
      if (int(args, 1) < 0) throw new BuiltinError("shift count must be non-negative");
      return bits(args, (a, b) => a << b);
    },
  },
  "bits.rsh": {
    arity: 2,
    fn: (args) => {
      if (int(args, 1) < 0) throw new BuiltinError("shift count must be non-negative");
      return bits(args, (a, b) => a >> b);
    },
  },
};
