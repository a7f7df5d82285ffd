/**
 * Rego values. Scalars and arrays are plain JavaScript values; objects are
 * either plain JSON objects (string keys, as `input` and `data` arrive) or a
 * `RegoObject` (any key type, built by policies); sets are `RegoSet`. Both
 * object forms compare equal when their entries do.
 */
export type Scalar = null | boolean | number | string;

/** A JSON object as `JSON.parse` builds it: string keys only. */
export interface PlainObject {
  [key: string]: Value;
}

/** Any Rego value. */
export type Value = Scalar | Value[] | PlainObject | RegoObject | RegoSet;

/** Map key for a value: scalars stand for themselves, composites for their canonical text. */
function isScalar(v: Value): v is Scalar {
  return v === null || typeof v !== "object";
}

/** An object built by a policy; keys may be any value. Entries come out in OPA's sort order. */
export class RegoObject {
  private readonly scalars = new Map<Scalar, Value>();
  private composites?: Map<string, [Value, Value]>;
  private sorted?: [Value, Value][];

  get size(): number {
    return this.scalars.size + (this.composites?.size ?? 0);
  }

  get(key: Value): Value | undefined {
    if (isScalar(key)) return this.scalars.get(key);
    return this.composites?.get(canonical(key))?.[1];
  }

  /** Adds or replaces an entry; only while the object is being built. */
  set(key: Value, value: Value): void {
    this.sorted = undefined;
    if (isScalar(key)) this.scalars.set(key, value);
    else {
      this.composites ??= new Map();
      this.composites.set(canonical(key), [key, value]);
    }
  }

  delete(key: Value): void {
    this.sorted = undefined;
    if (isScalar(key)) this.scalars.delete(key);
    else this.composites?.delete(canonical(key));
  }

  /** Entries sorted by key. */
  entries(): readonly [Value, Value][] {
    if (this.sorted) return this.sorted;
    const out: [Value, Value][] = [];
    for (const e of this.scalars) out.push(e);
    if (this.composites) for (const e of this.composites.values()) out.push(e);
    out.sort((a, b) => compare(a[0], b[0]));
    this.sorted = out;
    return out;
  }
}

/** A set; members come out in OPA's sort order. */
export class RegoSet {
  private readonly scalars = new Set<Scalar>();
  private composites?: Map<string, Value>;
  private sorted?: Value[];

  constructor(values?: Iterable<Value>) {
    if (values) for (const v of values) this.add(v);
  }

  get size(): number {
    return this.scalars.size + (this.composites?.size ?? 0);
  }

  has(v: Value): boolean {
    if (isScalar(v)) return this.scalars.has(v);
    return this.composites?.has(canonical(v)) ?? false;
  }

  /** Adds a member; only while the set is being built. */
  add(v: Value): void {
    this.sorted = undefined;
    if (isScalar(v)) this.scalars.add(v);
    else {
      this.composites ??= new Map();
      this.composites.set(canonical(v), v);
    }
  }

  /** Members sorted. */
  values(): readonly Value[] {
    if (this.sorted) return this.sorted;
    const out: Value[] = [...this.scalars];
    if (this.composites) for (const v of this.composites.values()) out.push(v);
    out.sort(compare);
    this.sorted = out;
    return out;
  }
}

const hasOwn = Object.prototype.hasOwnProperty;

/** Whether `v` is an object of either form. */
export function isObject(v: Value | undefined): v is PlainObject | RegoObject {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof RegoSet);
}

/** The value at `key` of an object of either form. */
export function objectGet(o: PlainObject | RegoObject, key: Value): Value | undefined {
  if (o instanceof RegoObject) return o.get(key);
  return typeof key === "string" && hasOwn.call(o, key) ? o[key] : undefined;
}

export function objectSize(o: PlainObject | RegoObject): number {
  return o instanceof RegoObject ? o.size : Object.keys(o).length;
}

/** Entries of an object of either form, sorted by key. */
export function objectEntries(o: PlainObject | RegoObject): readonly [Value, Value][] {
  if (o instanceof RegoObject) return o.entries();
  const keys = Object.keys(o).sort(compareStrings);
  const out: [Value, Value][] = new Array(keys.length);
  for (let i = 0; i < keys.length; i++) out[i] = [keys[i]!, o[keys[i]]!];
  return out;
}

/** Rego's type names, as `type_name` returns them. */
export type TypeName = "null" | "boolean" | "number" | "string" | "array" | "object" | "set";

export function typeName(v: Value): TypeName {
  switch (typeof v) {
    case "boolean":
      return "boolean";
    case "number":
      return "number";
    case "string":
      return "string";
  }
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (v instanceof RegoSet) return "set";
  return "object";
}

/** OPA's order of types: null < boolean < number < string < array < object < set. */
function typeRank(v: Value): number {
  switch (typeof v) {
    case "boolean":
      return 1;
    case "number":
      return 2;
    case "string":
      return 3;
  }
  if (v === null) return 0;
  if (Array.isArray(v)) return 6;
  if (v instanceof RegoSet) return 8;
  return 7;
}

/** UTF-16 surrogates sort above the rest of the BMP, as UTF-8 bytes (Go's string order) do. */
function codeUnitRank(c: number): number {
  return c >= 0xe000 ? c - 0x800 : c + 0x2000;
}

/** Go's string order (by UTF-8 bytes, that is by code point). */
export function compareStrings(a: string, b: string): number {
  if (a === b) return 0;
  const n = a.length < b.length ? a.length : b.length;
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return x >= 0xd800 && y >= 0xd800 ? codeUnitRank(x) - codeUnitRank(y) : x - y;
  }
  return a.length - b.length;
}

/** OPA's total order on values (negative, zero or positive). */
export function compare(a: Value, b: Value): number {
  if (a === b) return 0;
  const ta = typeRank(a);
  const tb = typeRank(b);
  if (ta !== tb) return ta - tb;
  switch (ta) {
    case 1:
      return a ? 1 : -1;
    case 2:
      return (a as number) < (b as number) ? -1 : (a as number) > (b as number) ? 1 : 0;
    case 3:
      return compareStrings(a as string, b as string);
    case 6: {
      const x = a as Value[];
      const y = b as Value[];
      const n = Math.min(x.length, y.length);
      for (let i = 0; i < n; i++) {
        const c = compare(x[i]!, y[i]!);
        if (c !== 0) return c;
      }
      return x.length - y.length;
    }
    case 7: {
      const x = objectEntries(a as PlainObject);
      const y = objectEntries(b as PlainObject);
      const n = Math.min(x.length, y.length);
      for (let i = 0; i < n; i++) {
        const k = compare(x[i]![0], y[i]![0]);
        if (k !== 0) return k;
        const c = compare(x[i]![1], y[i]![1]);
        if (c !== 0) return c;
      }
      return x.length - y.length;
    }
    case 8: {
      const x = (a as RegoSet).values();
      const y = (b as RegoSet).values();
      const n = Math.min(x.length, y.length);
      for (let i = 0; i < n; i++) {
        const c = compare(x[i]!, y[i]!);
        if (c !== 0) return c;
      }
      return x.length - y.length;
    }
  }
  return 0;
}

/** Value equality (1 equals 1.0; objects of either form with the same entries are equal). */
export function equal(a: Value, b: Value): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!equal(a[i]!, b[i]!)) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  if (a instanceof RegoSet) {
    if (!(b instanceof RegoSet) || a.size !== b.size) return false;
    for (const v of a.values()) if (!b.has(v)) return false;
    return true;
  }
  if (b instanceof RegoSet) return false;
  const oa = a as PlainObject | RegoObject;
  const ob = b as PlainObject | RegoObject;
  if (objectSize(oa) !== objectSize(ob)) return false;
  if (oa instanceof RegoObject) {
    for (const [k, v] of oa.entries()) {
      const w = objectGet(ob, k);
      if (w === undefined || !equal(v, w)) return false;
    }
    return true;
  }
  for (const k in oa) {
    if (!hasOwn.call(oa, k)) continue;
    const w = objectGet(ob, k);
    if (w === undefined || !equal(oa[k]!, w)) return false;
  }
  return true;
}

/** A text that two values share exactly when they are equal: the key of composite map entries. */
export function canonical(v: Value): string {
  switch (typeof v) {
    case "string":
      return JSON.stringify(v);
    case "number":
      return Object.is(v, -0) ? "0" : String(v);
    case "boolean":
      return v ? "true" : "false";
  }
  if (v === null) return "null";
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (v instanceof RegoSet) return `<${v.values().map(canonical).join(",")}>`;
  return `{${objectEntries(v)
    .map(([k, x]) => `${canonical(k)}:${canonical(x)}`)
    .join(",")}}`;
}

/** Rego's text for a value, as OPA prints terms: `{"a": 1}`, `{1, 2}`, `set()`. */
export function formatValue(v: Value): string {
  switch (typeof v) {
    case "string":
      return JSON.stringify(v);
    case "number":
      return formatNumber(v);
    case "boolean":
      return v ? "true" : "false";
  }
  if (v === null) return "null";
  if (Array.isArray(v)) return `[${v.map(formatValue).join(", ")}]`;
  if (v instanceof RegoSet) return v.size === 0 ? "set()" : `{${v.values().map(formatValue).join(", ")}}`;
  return `{${objectEntries(v)
    .map(([k, x]) => `${formatValue(k)}: ${formatValue(x)}`)
    .join(", ")}}`;
}

/** Integers print without exponent up to 1e21, as OPA prints them. */
export function formatNumber(n: number): string {
  if (Object.is(n, -0)) return "0";
  if (Number.isInteger(n) && Math.abs(n) < 1e21) return n.toFixed(0);
  return String(n);
}

/**
 * A value as JSON would carry it: sets become sorted arrays, object keys
 * that are not strings become their JSON text (as OPA does).
 */
export function toJson(v: Value): unknown {
  if (v === null || typeof v !== "object") return v;
  if (Array.isArray(v)) return v.map(toJson);
  if (v instanceof RegoSet) return v.values().map(toJson);
  const out: Record<string, unknown> = {};
  for (const [k, x] of objectEntries(v)) {
    const key = typeof k === "string" ? k : JSON.stringify(toJson(k));
    // A key named __proto__ must stay an entry, not change the prototype.
    if (key === "__proto__") Object.defineProperty(out, key, { value: toJson(x), enumerable: true, writable: true });
    else out[key] = toJson(x);
  }
  return out;
}
