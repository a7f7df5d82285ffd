import type { DescField, DescMessage } from "@bufbuild/protobuf";
import { ScalarType } from "@bufbuild/protobuf";
import { ListValueSchema, StructSchema, TimestampSchema, ValueSchema } from "@bufbuild/protobuf/wkt";
import * as api from "@stategate/api";

/**
 * Random messages of every API type, for the tests that hold the compiled
 * codecs to protobuf-es: values that trip codecs up (empty and long strings,
 * non-ASCII text and unpaired surrogates, negative and extreme integers, -0,
 * NaN and infinities, Structs holding every JSON kind, deep nesting,
 * lengths past one varint byte).
 */

/** A small seeded generator, so a failure can be replayed. */
export function rng(seed: number) {
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x100000000;
  };
  return {
    next,
    int: (n: number) => Math.floor(next() * n),
    pick: <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)] as T,
    chance: (p: number) => next() < p,
  };
}
export type Rng = ReturnType<typeof rng>;

const strings = [
  "",
  "a",
  "user 1",
  "héllo wörld",
  "日本語のテキスト",
  "emoji 😀 and 🧪",
  "lone \ud800 high",
  "lone \udc00 low",
  "end \ud83d",
  "x".repeat(127),
  "y".repeat(128),
  "z".repeat(300),
  "é".repeat(70),
  "\u0000 nul and \n newline",
];

function randomString(r: Rng): string {
  if (r.chance(0.7)) return r.pick(strings);
  const n = r.int(400);
  let out = "";
  for (let i = 0; i < n; i++) {
    const kind = r.int(10);
    out +=
      kind < 6
        ? String.fromCharCode(32 + r.int(95))
        : kind < 8
          ? String.fromCharCode(0x80 + r.int(0x700))
          : kind < 9
            ? String.fromCharCode(0x800 + r.int(0xd000))
            : String.fromCodePoint(0x10000 + r.int(0x1000));
  }
  return out;
}

const doubles = [0, -0, 1, -1, 0.5, 1e308, -1e308, 5e-324, Number.NaN, Number.POSITIVE_INFINITY, -Infinity, 2 ** 53];
const int32s = [0, 1, -1, 127, 128, 300, 2 ** 31 - 1, -(2 ** 31), 16384, -129];
const int64s = [0n, 1n, -1n, 127n, 128n, 2n ** 53n + 1n, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 32n, -(2n ** 32n)];

function randomJson(r: Rng, depth: number): unknown {
  const kind = depth > 5 ? r.int(4) : r.int(7);
  switch (kind) {
    case 0:
      return null;
    case 1:
      return r.pick(doubles);
    case 2:
      return randomString(r);
    case 3:
      return r.chance(0.5);
    case 4: {
      // Long lists and objects only near the top, so a message stays small enough to compare quickly.
      const n = depth <= 1 && r.chance(0.1) ? 200 + r.int(300) : r.int(4);
      return Array.from({ length: n }, () => randomJson(r, depth + 1));
    }
    default:
      return randomObject(r, depth + 1);
  }
}

function randomObject(r: Rng, depth: number): Record<string, unknown> {
  // Parsed from text, so keys such as __proto__ are own keys as in a request body.
  const obj: Record<string, unknown> = JSON.parse("{}");
  const n = depth <= 1 && r.chance(0.05) ? 60 + r.int(100) : r.int(5);
  for (let i = 0; i < n; i++) {
    const key = r.pick(["a", "b", "name", "10", "2", "__proto__", "", "clé", randomString(r)]);
    Object.defineProperty(obj, key, {
      value: r.chance(0.05) ? undefined : randomJson(r, depth),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return obj;
}

function randomScalar(r: Rng, type: ScalarType): unknown {
  switch (type) {
    case ScalarType.STRING:
      return randomString(r);
    case ScalarType.BOOL:
      return r.chance(0.5);
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return r.pick(doubles.filter((d) => type === ScalarType.DOUBLE || !Number.isFinite(d) || Math.abs(d) < 1e38));
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return r.pick(int64s);
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return r.pick(int64s.filter((v) => v >= 0n));
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return r.pick(int32s.filter((v) => v >= 0));
    case ScalarType.BYTES:
      return new Uint8Array(r.int(200)).map(() => r.int(256));
    default:
      return r.pick(int32s);
  }
}

function randomField(r: Rng, field: DescField, depth: number): unknown {
  switch (field.fieldKind) {
    case "scalar":
      return randomScalar(r, field.scalar);
    case "enum":
      return r.pick(field.enum.values).number;
    case "message":
      return randomMessageValue(r, field.message, field.parent.typeName, depth);
    case "list":
      return Array.from({ length: r.int(4) }, () =>
        field.listKind === "message"
          ? randomMessageValue(r, field.message, field.parent.typeName, depth)
          : field.listKind === "enum"
            ? r.pick(field.enum.values).number
            : randomScalar(r, field.scalar),
      );
    case "map":
      return Object.fromEntries(
        Array.from({ length: r.int(4) }, () => [
          randomString(r),
          field.mapKind === "message"
            ? randomInit(r, field.message, depth + 1)
            : field.mapKind === "enum"
              ? r.pick(field.enum.values).number
              : randomScalar(r, field.scalar),
        ]),
      );
  }
}

/** A Struct field outside Value is a JSON object in protobuf-es. */
function randomMessageValue(r: Rng, message: DescMessage, parent: string, depth: number): unknown {
  if (message.typeName === "google.protobuf.Struct" && parent !== "google.protobuf.Value")
    return randomObject(r, depth);
  return randomInit(r, message, depth + 1);
}

export function randomInit(r: Rng, desc: DescMessage, depth: number): Record<string, unknown> {
  const init: Record<string, unknown> = {};
  if (depth > 6) return init;
  for (const member of desc.members) {
    if (!r.chance(0.75)) continue;
    if (member.kind === "oneof") {
      const field = r.pick(member.fields);
      init[member.localName] = { case: field.localName, value: randomField(r, field, depth) };
    } else {
      init[member.localName] = randomField(r, member, depth);
    }
  }
  return init;
}

/** Every message type of the API, and the well-known types it uses. */
export const schemas: DescMessage[] = [
  ...(Object.values(api) as unknown[]).filter(
    (v): v is DescMessage => typeof v === "object" && v !== null && (v as { kind?: string }).kind === "message",
  ),
  StructSchema,
  ValueSchema,
  ListValueSchema,
  TimestampSchema,
];
