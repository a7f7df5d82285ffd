import { BuiltinError } from "../errors.js";
import type { Value } from "../value.js";
import type { BuiltinTable } from "./args.js";
import { int, str, typeError } from "./args.js";

/** Go's time.Parse(time.RFC3339, …): "T" and "Z" upper-case; a fraction after "." or "," (digits past nine are dropped). */
const rfc3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?(?:(Z)|([+-])(\d{2}):(\d{2}))$/;

/**
 * Nanoseconds since the epoch, computed exactly and rounded once to the
 * nearest double (today's timestamps are about 1.7e18, past 2^53, so the
 * double is a multiple of 256 ns; rounding keeps the order, never inverts
 * it). Go's time.UnixNano must hold it (int64): OPA's "time outside of
 * valid range" otherwise.
 */
function nsAt(ms: number, extraNs: bigint): number {
  const ns = BigInt(ms) * 1_000_000n + extraNs;
  if (ns < -(2n ** 63n) || ns >= 2n ** 63n) throw new BuiltinError("time outside of valid range");
  return Number(ns);
}

/** Whole milliseconds (rounded down) and the nanoseconds past them, exactly, of an integral ns value. */
function splitNs(ns: number): [ms: number, rest: bigint] {
  const big = BigInt(ns);
  let ms = big / 1_000_000n;
  let rest = big % 1_000_000n;
  if (rest < 0n) {
    ms -= 1n;
    rest += 1_000_000n;
  }
  return [Number(ms), rest];
}

function daysIn(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** Nanoseconds since the epoch, the double nearest the exact value (see nsAt). */
function parseRfc3339(s: string): number {
  const m = rfc3339.exec(s);
  if (!m) throw new BuiltinError(`parsing time ${JSON.stringify(s)} as RFC3339: cannot parse`);
  const [y, mo, d, h, mi, sec] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  if (mo < 1 || mo > 12 || d < 1 || d > daysIn(y, mo) || h > 23 || mi > 59 || sec > 59) {
    throw new BuiltinError(`parsing time ${JSON.stringify(s)}: value out of range`);
  }
  let offsetMin = 0;
  if (!m[8]) {
    const oh = Number(m[10]);
    const om = Number(m[11]);
    if (oh > 23 || om > 59) throw new BuiltinError(`parsing time ${JSON.stringify(s)}: time zone offset out of range`);
    offsetMin = (m[9] === "-" ? -1 : 1) * (oh * 60 + om);
  }
  const date = new Date(0);
  date.setUTCFullYear(y, mo - 1, d);
  date.setUTCHours(h, mi, sec, 0);
  const ms = date.getTime() - offsetMin * 60_000;
  if (Number.isNaN(ms)) throw new BuiltinError("time outside of valid range");
  const frac = m[7] ? BigInt(m[7].slice(0, 9).padEnd(9, "0")) : 0n;
  return nsAt(ms, frac);
}

const units: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, μs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** Go's time.ParseDuration, in nanoseconds. */
function parseDuration(s: string): number {
  let rest = s;
  let sign = 1;
  if (rest.startsWith("-") || rest.startsWith("+")) {
    if (rest[0] === "-") sign = -1;
    rest = rest.slice(1);
  }
  if (rest === "0") return 0;
  if (rest === "") throw new BuiltinError(`time: invalid duration ${JSON.stringify(s)}`);
  let total = 0;
  // Unambiguous (one way to split the digits), so a long run of digits does not backtrack.
  const part = /^(\d*(?:\.\d*)?)(ns|us|µs|μs|ms|s|m|h)/;
  while (rest !== "") {
    const m = part.exec(rest);
    if (!m || m[1] === "" || m[1] === ".") throw new BuiltinError(`time: invalid duration ${JSON.stringify(s)}`);
    total += Number(m[1]) * units[m[2]]!;
    rest = rest.slice(m[0].length);
  }
  if (total >= 2 ** 63) throw new BuiltinError(`time: invalid duration ${JSON.stringify(s)}`);
  return sign * total;
}

/** An integral number of nanoseconds that fits an int64, as OPA requires of time arguments. */
function nsOf(v: Value, i: number): number {
  if (typeof v !== "number") throw typeError(i, "either number (ns) or [number (ns), string (tz)]", v);
  if (!Number.isInteger(v) || v < -(2 ** 63) || v >= 2 ** 63) throw new BuiltinError("timestamp too big");
  return v;
}

/** Nanoseconds from ns or [ns, tz, …] (OPA's form); only UTC is supported as a time zone. */
function timeArg(args: Value[]): number {
  const v = args[0]!;
  if (!Array.isArray(v)) return nsOf(v, 0);
  if (v.length === 0) throw typeError(0, "either number (ns) or [number (ns), string (tz)]", v);
  if (v.length > 1) {
    const tz = v[1]!;
    if (typeof tz !== "string") throw typeError(0, "string", tz);
    if (tz !== "" && tz !== "UTC")
      throw new BuiltinError(`time zone ${JSON.stringify(tz)} is not supported (only UTC)`);
  }
  return nsOf(v[0]!, 0);
}

/** A date from ns since the epoch or [ns, "UTC"]. */
function dateOf(args: Value[]): Date {
  return new Date(splitNs(timeArg(args))[0]);
}

const weekdays = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

/** Time built-ins, in UTC. */
export const timeBuiltins: BuiltinTable = {
  "time.now_ns": {
    arity: 0,
    fn: (_args, c) => {
      c.env.nowNs ??= Date.now() * 1e6;
      return c.env.nowNs;
    },
  },
  "time.parse_rfc3339_ns": { arity: 1, fn: (args) => parseRfc3339(str(args, 0)) },
  "time.parse_duration_ns": { arity: 1, fn: (args) => parseDuration(str(args, 0)) },
  "time.date": {
    arity: 1,
    fn: (args) => {
      const d = dateOf(args);
      return [d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate()];
    },
  },
  "time.clock": {
    arity: 1,
    fn: (args) => {
      const d = dateOf(args);
      return [d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()];
    },
  },
  "time.weekday": { arity: 1, fn: (args) => weekdays[dateOf(args).getUTCDay()]! },
  "time.add_date": {
    arity: 4,
    fn: (args) => {
      const [ms, rest] = splitNs(timeArg(args));
      const d = new Date(ms);
      d.setUTCFullYear(
        d.getUTCFullYear() + int(args, 1),
        d.getUTCMonth() + int(args, 2),
        d.getUTCDate() + int(args, 3),
      );
      if (Number.isNaN(d.getTime())) throw new BuiltinError("time outside of valid range");
      return nsAt(d.getTime(), rest);
    },
  },
};
