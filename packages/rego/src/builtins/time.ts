import { BuiltinError } from "../errors.js";
import type { Value } from "../value.js";
import type { BuiltinTable } from "./args.js";
import { int, str, typeError } from "./args.js";

/** Go's time.Parse(time.RFC3339, …): "T" and "Z" upper-case; a fraction after "." or "," (digits past nine are dropped). */
const rfc3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?(?:(Z)|([+-])(\d{2}):(\d{2}))$/;

/** Nanoseconds since the epoch that Go's time.UnixNano can hold (int64): OPA's "time outside of valid range" otherwise. */
function safeNs(ns: number): number {
  if (!(ns >= -(2 ** 63) && ns < 2 ** 63)) throw new BuiltinError("time outside of valid range");
  return ns;
}

function daysIn(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** Nanoseconds since the epoch (as a double: about a quarter microsecond of precision today). */
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
  const frac = m[7] ? Number(m[7].slice(0, 9).padEnd(9, "0")) : 0;
  return safeNs(ms * 1e6 + frac);
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
  const part = /^(\d*\.?\d*)(ns|us|µs|μs|ms|s|m|h)/;
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
  return new Date(Math.floor(timeArg(args) / 1e6));
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
      const ns = timeArg(args);
      const ms = Math.floor(ns / 1e6);
      const rest = ns - ms * 1e6;
      const d = new Date(ms);
      d.setUTCFullYear(
        d.getUTCFullYear() + int(args, 1),
        d.getUTCMonth() + int(args, 2),
        d.getUTCDate() + int(args, 3),
      );
      return safeNs(d.getTime() * 1e6 + rest);
    },
  },
};
