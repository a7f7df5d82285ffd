import { BuiltinError } from "../errors.js";
import type { Value } from "../value.js";
import type { BuiltinTable } from "./args.js";
import { int, num, str, typeError } from "./args.js";

const rfc3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

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
  const frac = m[7] ? Number(m[7].padEnd(9, "0")) : 0;
  return ms * 1e6 + frac;
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
  return sign * total;
}

/** A date from ns since the epoch or [ns, "UTC"]; only UTC is supported as a time zone. */
function dateOf(args: Value[]): Date {
  const v = args[0]!;
  let ns: number;
  if (Array.isArray(v)) {
    if (v.length !== 2 || typeof v[0] !== "number" || typeof v[1] !== "string") {
      throw typeError(0, "either a number or [number, string]", v);
    }
    if (v[1] !== "" && v[1] !== "UTC")
      throw new BuiltinError(`time zone ${JSON.stringify(v[1])} is not supported (only UTC)`);
    ns = v[0];
  } else ns = num(args, 0);
  return new Date(Math.floor(ns / 1e6));
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
      const ns = num(args, 0);
      const ms = Math.floor(ns / 1e6);
      const rest = ns - ms * 1e6;
      const d = new Date(ms);
      d.setUTCFullYear(
        d.getUTCFullYear() + int(args, 1),
        d.getUTCMonth() + int(args, 2),
        d.getUTCDate() + int(args, 3),
      );
      return d.getTime() * 1e6 + rest;
    },
  },
};
