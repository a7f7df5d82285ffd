import type { DescField, DescMessage, JsonObject, JsonValue } from "@bufbuild/protobuf";
import { ScalarType } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";

/** Says why a field cannot come from the query (bound by the path, carried by the body), or undefined. */
export type Taken = (fields: readonly DescField[]) => string | undefined;

const integer = /^-?\d+$/;
const wrappers = new Set(
  ["Double", "Float", "Int64", "UInt64", "Int32", "UInt32", "Bool", "String", "Bytes"].map(
    (n) => `google.protobuf.${n}Value`,
  ),
);
/** Well-known types whose JSON form is one string, so one query value can carry them. */
const stringForms = new Set(["google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask"]);
/** Well-known types with a JSON form of their own: their inner fields cannot be addressed one by one. */
const ownJsonForm = new Set([
  ...wrappers,
  ...stringForms,
  "google.protobuf.Any",
  "google.protobuf.Struct",
  "google.protobuf.Value",
  "google.protobuf.ListValue",
]);

function invalid(message: string): ConnectError {
  return new ConnectError(message, Code.InvalidArgument);
}

/**
 * Turns one string from the URL (a query value, a path segment) into the
 * proto3 JSON value its field reads, checking the form here so the error can
 * name the parameter: integers as digits, bools as `true`/`false`, enums by
 * name or number. Ranges and enum names are left to `fromJson`.
 */
export function urlValueToJson(field: DescField, raw: string, what: string): JsonValue {
  if (field.fieldKind === "enum" || (field.fieldKind === "list" && field.listKind === "enum")) {
    return integer.test(raw) ? Number(raw) : raw;
  }
  if (field.fieldKind === "scalar" || (field.fieldKind === "list" && field.listKind === "scalar")) {
    return scalarToJson(field.scalar, raw, what);
  }
  if (field.fieldKind === "message") {
    if (wrappers.has(field.message.typeName)) return scalarToJson(field.message.fields[0].scalar!, raw, what);
    if (stringForms.has(field.message.typeName)) return raw;
    throw invalid(`${what} is a message: set its fields one by one (${what}.field=…)`);
  }
  throw invalid(`${what} cannot be given in the URL`);
}

function scalarToJson(scalar: ScalarType, raw: string, what: string): JsonValue {
  switch (scalar) {
    case ScalarType.STRING:
    case ScalarType.BYTES:
      return raw;
    case ScalarType.BOOL:
      if (raw === "true" || raw === "false") return raw === "true";
      throw invalid(`${what}: expected true or false, got "${raw}"`);
    case ScalarType.INT64:
    case ScalarType.UINT64:
    case ScalarType.SINT64:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      // Kept as a string: a JS number would round values past 2^53.
      if (integer.test(raw)) return raw;
      throw invalid(`${what}: expected an integer, got "${raw}"`);
    case ScalarType.FLOAT:
    case ScalarType.DOUBLE: {
      if (raw === "NaN" || raw === "Infinity" || raw === "-Infinity") return raw;
      const n = Number(raw);
      if (raw.trim() !== "" && Number.isFinite(n)) return n;
      throw invalid(`${what}: expected a number, got "${raw}"`);
    }
    default:
      if (integer.test(raw)) return Number(raw);
      throw invalid(`${what}: expected an integer, got "${raw}"`);
  }
}

/**
 * Turns query parameters into a proto3 JSON object for `input`. Keys are field
 * names (lowerCamelCase or as in the proto), dotted for nested fields
 * (`sort.field=name`); repeating a key fills a repeated field. A key that names
 * no field, or a field filled elsewhere, is INVALID_ARGUMENT naming the key.
 */
export function queryToJson(input: DescMessage, params: URLSearchParams, taken: Taken): JsonObject {
  // Grouped by field, so `min_time` and `minTime` are one field given twice, not two.
  const byField = new Map<string, { key: string; fields: DescField[]; values: string[] }>();
  for (const [key, value] of params) {
    const fields = resolve(input, key);
    if (!fields) throw invalid(`unknown query parameter "${key}"`);
    const reason = taken(fields);
    if (reason) throw invalid(`query parameter "${key}": ${reason}`);
    const id = fields.map((f) => f.name).join(".");
    const entry = byField.get(id) ?? { key, fields, values: [] };
    entry.values.push(value);
    byField.set(id, entry);
  }
  const json: JsonObject = {};
  for (const { key, fields, values } of byField.values()) {
    const what = `query parameter "${key}"`;
    const field = fields[fields.length - 1]!;
    let value: JsonValue;
    if (field.fieldKind === "list") {
      if (field.listKind === "message") throw invalid(`${what}: a repeated message cannot be given in the URL`);
      value = values.map((v) => urlValueToJson(field, v, what));
    } else {
      if (values.length > 1) throw invalid(`${what} is given more than once, but the field is not repeated`);
      value = urlValueToJson(field, values[0]!, what);
    }
    setPath(
      json,
      fields.map((f) => f.jsonName),
      value,
    );
  }
  return json;
}

/** The fields a dotted key names, or undefined when it names none. */
function resolve(input: DescMessage, key: string): DescField[] | undefined {
  const fields: DescField[] = [];
  let message: DescMessage | undefined = input;
  for (const name of key.split(".")) {
    const field: DescField | undefined = message?.fields.find((f) => f.jsonName === name || f.name === name);
    if (!field) return undefined;
    fields.push(field);
    const nested: boolean = field.fieldKind === "message" && !ownJsonForm.has(field.message.typeName);
    message = nested ? field.message : undefined;
  }
  return fields;
}

/** Sets `value` at `path` inside `json`, creating the objects on the way. */
export function setPath(json: JsonObject, path: readonly string[], value: JsonValue): void {
  let target = json;
  for (const name of path.slice(0, -1)) {
    const next = target[name];
    if (typeof next === "object" && next !== null && !Array.isArray(next)) {
      target = next;
    } else {
      const created: JsonObject = {};
      target[name] = created;
      target = created;
    }
  }
  target[path[path.length - 1]!] = value;
}
