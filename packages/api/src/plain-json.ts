import type { DescMessage, JsonObject, JsonValue } from "@bufbuild/protobuf";
import type { Transport } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";

/**
 * Entity values, message bodies and cache values are plain JS values, which
 * protobuf-es encodes differently by format: binary writes `undefined` as null
 * and a lone surrogate as U+FFFD, JSON fails on the first and sends the second
 * for the gateway to refuse. Turning them into JSON here, before any encoder
 * sees them, makes every protocol and encoding send the same thing.
 */

/** An unpaired surrogate: UTF-8, so binary protobuf, cannot carry it. */
const loneSurrogate = /\p{Cs}/u;
const identifier = /^[A-Za-z_$][\w$]*$/;

function refuse(path: string, problem: string): never {
  throw new ConnectError(`${path}: ${problem}`, Code.InvalidArgument);
}

/** `values.name`, `values["a b"]`: where a member is, as a JS reader would write it. */
function memberPath(path: string, key: string): string {
  return identifier.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

/**
 * A plain JS value as the JSON it stands for, by JSON.stringify's rules: a
 * `toJSON` method is called, an undefined object member is left out and an
 * undefined array element becomes null (undefined itself stays undefined).
 * What JSON cannot hold (a lone surrogate, NaN, ±Infinity, a function, a
 * symbol, a bigint, a cycle) is refused with INVALID_ARGUMENT naming `path`.
 */
export function plainJson(value: unknown, path: string): JsonValue | undefined {
  return convert(value, path, "", new Set());
}

function convert(value: unknown, path: string, key: string, ancestors: Set<object>): JsonValue | undefined {
  if (value !== null && typeof value === "object" && typeof (value as { toJSON?: unknown }).toJSON === "function") {
    value = (value as { toJSON(key: string): unknown }).toJSON(key);
  }
  switch (typeof value) {
    case "undefined":
      return undefined;
    case "boolean":
      return value;
    case "string":
      return loneSurrogate.test(value) ? refuse(path, "must not contain unpaired UTF-16 surrogates") : value;
    case "number":
      return Number.isFinite(value) ? value : refuse(path, `must be a finite number, not ${value}`);
    case "bigint":
      return refuse(path, "must not be a bigint: JSON numbers are doubles (send it as a string)");
    case "function":
    case "symbol":
      return refuse(path, `must not be a ${typeof value}`);
  }
  if (value === null) return null;
  const object = value as object;
  if (ancestors.has(object)) refuse(path, "must not contain itself");
  ancestors.add(object);
  try {
    if (Array.isArray(object)) {
      return object.map((item, i) => convert(item, `${path}[${i}]`, String(i), ancestors) ?? null);
    }
    const out: JsonObject = {};
    for (const [k, v] of Object.entries(object)) {
      // The object is named, as the gateway names it: a key with a lone surrogate cannot be quoted in a message.
      if (loneSurrogate.test(k)) refuse(path, "must not contain unpaired UTF-16 surrogates");
      const json = convert(v, memberPath(path, k), k, ancestors);
      // defineProperty: a "__proto__" key stays a key.
      if (json !== undefined) Object.defineProperty(out, k, { value: json, enumerable: true, writable: true });
    }
    return out;
  } finally {
    ancestors.delete(object);
  }
}

/** `input` with each google.protobuf.Struct field (public type: a plain object) made JSON by `plainJson`. */
function withPlainJson(desc: DescMessage, input: unknown): unknown {
  if (input === null || typeof input !== "object") return input;
  let out: Record<string, unknown> | undefined;
  for (const field of desc.fields) {
    if (field.fieldKind !== "message") continue;
    const value = (input as Record<string, unknown>)[field.localName];
    if (value === undefined) continue;
    const typeName = field.message.typeName;
    let json: unknown;
    if (typeName === "google.protobuf.Struct") json = plainJson(value, field.name);
    else if (typeName.startsWith("google.protobuf.")) continue;
    else json = withPlainJson(field.message, value);
    if (json !== value) {
      out ??= { ...(input as Record<string, unknown>) };
      out[field.localName] = json;
    }
  }
  return out ?? input;
}

/**
 * `transport`, with the plain JSON of every request made JSON by `plainJson`
 * before the transport encodes it: what it cannot send is refused before
 * anything is sent, the same on every protocol and encoding.
 */
export function plainJsonTransport(transport: Transport): Transport {
  return {
    unary(method, signal, timeoutMs, header, input, contextValues) {
      let checked: typeof input;
      try {
        checked = withPlainJson(method.input, input) as typeof input;
      } catch (err) {
        return Promise.reject(err);
      }
      return transport.unary(method, signal, timeoutMs, header, checked, contextValues);
    },
    stream(method, signal, timeoutMs, header, input, contextValues) {
      async function* checked() {
        for await (const message of input) yield withPlainJson(method.input, message) as typeof message;
      }
      return transport.stream(method, signal, timeoutMs, header, checked(), contextValues);
    },
  };
}
