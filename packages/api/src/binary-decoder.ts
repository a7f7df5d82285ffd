import type { DescField, DescMessage, MessageShape } from "@bufbuild/protobuf";
import { create, fromBinary, ScalarType } from "@bufbuild/protobuf";
import { isWrapperName } from "./binary-encoder.js";
import { decodeUtf8 } from "./text-encoding.js";

/**
 * Protobuf binary decoding compiled from a message's descriptor, giving what
 * protobuf-es's `fromBinary` gives, several times faster on Struct-heavy
 * messages (a Set request, an Event, an Entity).
 *
 * It decodes only input it is sure to read exactly as protobuf-es does: the
 * fields of the schema with the wire type each expects, in any order, once
 * each for message fields, in canonical varints. Anything else (an unknown
 * field, a wire type that does not match, a repeated message field that
 * protobuf-es would merge, UTF-8 that is not valid, a Struct key
 * `__proto__`, nesting near protobuf-es's recursion limit, bytes that run
 * past their end) hands the whole input to `fromBinary`, which decodes it
 * or throws as it always has. Input from an attacker therefore meets
 * protobuf-es's own rules, and the test suite holds the two to the same
 * results over random and mutated messages of every API type.
 *
 * @example
 * const decode = createBinaryDecoder(EventSchema);
 * const event = decode(bytes); // deep-equal to fromBinary(EventSchema, bytes)
 */
export function createBinaryDecoder<Desc extends DescMessage>(
  schema: Desc,
  options: BinaryDecoderOptions = {},
): (bytes: Uint8Array) => MessageShape<Desc> {
  const plan = planOf(schema);
  const { onFallback } = options;
  if (plan === undefined) {
    return (bytes) => {
      onFallback?.();
      return fromBinary(schema, bytes);
    };
  }
  return (bytes) => {
    const reader: Reader = { buf: bytes, pos: 0, view: undefined };
    try {
      const message = create(schema) as unknown as Record<string, unknown>;
      readFields(plan, reader, message, bytes.length, 0);
      return message as MessageShape<Desc>;
    } catch (err) {
      if (err !== UNSURE) throw err;
      onFallback?.();
      return fromBinary(schema, bytes);
    }
  };
}

/** Options of createBinaryDecoder. */
export interface BinaryDecoderOptions {
  /** Told each time an input is left to `fromBinary` (for tests, and for anyone counting). */
  onFallback?: () => void;
}

/** Thrown on input this decoder leaves to protobuf-es. */
const UNSURE = Symbol("left to protobuf-es");

/** Well below protobuf-es's limit of 100 nested messages, so it is the one to refuse. */
const MAX_DEPTH = 64;

enum WireType {
  Varint = 0,
  Bit64 = 1,
  LengthDelimited = 2,
  Bit32 = 5,
}

interface Reader {
  buf: Uint8Array;
  pos: number;
  view: DataView | undefined;
}

type FieldRead = (reader: Reader, message: Record<string, unknown>, depth: number) => void;

interface Plan {
  desc: DescMessage;
  /** Readers by field number; wire types by field number. */
  reads: (FieldRead | undefined)[];
  wires: number[];
  /** Field numbers of message fields, which must not come twice. */
  once: boolean[];
}

const plans = new Map<DescMessage, Plan | undefined>();

function planOf(desc: DescMessage): Plan | undefined {
  if (plans.has(desc)) return plans.get(desc);
  const plan: Plan = { desc, reads: [], wires: [], once: [] };
  plans.set(desc, plan);
  for (const field of desc.fields) {
    const read = fieldReader(field);
    if (read === undefined || field.number > 1000) {
      plans.set(desc, undefined);
      return undefined;
    }
    plan.reads[field.number] = read.read;
    plan.wires[field.number] = read.wire;
    plan.once[field.number] = read.once;
  }
  return plan;
}

function readFields(plan: Plan, reader: Reader, message: Record<string, unknown>, end: number, depth: number): void {
  if (depth > MAX_DEPTH) throw UNSURE;
  let seen: number[] | undefined;
  while (reader.pos < end) {
    const tag = varint32(reader);
    const number = tag >>> 3;
    const read = plan.reads[number];
    if (read === undefined || plan.wires[number] !== (tag & 7)) throw UNSURE;
    if (plan.once[number]) {
      // A second copy of a message field is merged by protobuf-es: left to it.
      seen ??= [];
      if (seen.includes(number)) throw UNSURE;
      seen.push(number);
    }
    read(reader, message, depth);
    if (reader.pos > end) throw UNSURE;
  }
}

/** An unsigned varint of at most four bytes (below 2^28); longer ones are left to protobuf-es. */
function varint32(reader: Reader): number {
  const buf = reader.buf;
  let pos = reader.pos;
  let b = buf[pos++] as number;
  if (b === undefined) throw UNSURE;
  let value = b & 0x7f;
  if (b & 0x80) {
    b = buf[pos++] as number;
    value |= (b & 0x7f) << 7;
    if (b & 0x80) {
      b = buf[pos++] as number;
      value |= (b & 0x7f) << 14;
      if (b & 0x80) {
        b = buf[pos++] as number;
        value |= (b & 0x7f) << 21;
        if (b & 0x80) throw UNSURE;
      }
    }
  }
  // A byte read past the end is undefined, which the masks above turn into 0: caught here.
  if (pos > buf.length) throw UNSURE;
  reader.pos = pos;
  return value;
}

/**
 * A varint of at most nine bytes (below 2^63) as a bigint: seven bytes are
 * read as a number, exact below 2^49, and the rest as bigints. A ten-byte
 * varint (a negative int64) is left to protobuf-es.
 */
function varint63(reader: Reader): bigint {
  const buf = reader.buf;
  let pos = reader.pos;
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 7; i++) {
    const b = buf[pos++];
    if (b === undefined) throw UNSURE;
    value += (b & 0x7f) * scale;
    if ((b & 0x80) === 0) {
      reader.pos = pos;
      return BigInt(value);
    }
    scale *= 128;
  }
  let big = BigInt(value);
  for (let shift = 49n; shift <= 56n; shift += 7n) {
    const b = buf[pos++];
    if (b === undefined) throw UNSURE;
    big |= BigInt(b & 0x7f) << shift;
    if ((b & 0x80) === 0) {
      reader.pos = pos;
      return big;
    }
  }
  throw UNSURE;
}

/** Where the length-delimited value starting here ends (its length read first). */
function endOf(reader: Reader): number {
  const length = varint32(reader);
  return reader.pos + length;
}

/** The bytes of a length-delimited value, as a view of the input (as protobuf-es's bytes are). */
function delimited(reader: Reader): Uint8Array {
  const length = varint32(reader);
  const start = reader.pos;
  const end = start + length;
  if (end > reader.buf.length) throw UNSURE;
  reader.pos = end;
  return reader.buf.subarray(start, end);
}

function text(reader: Reader, validate: boolean): string {
  const length = varint32(reader);
  const buf = reader.buf;
  const start = reader.pos;
  const end = start + length;
  if (end > buf.length) throw UNSURE;
  reader.pos = end;
  // Short ASCII (names, keys, ids) is read byte by byte.
  if (length < 64) {
    let out = "";
    let i = start;
    for (; i < end; i++) {
      const c = buf[i] as number;
      if (c >= 0x80) break;
      out += String.fromCharCode(c);
    }
    if (i === end) return out;
  }
  const bytes = buf.subarray(start, end);
  try {
    return decodeUtf8(bytes, validate);
  } catch {
    throw UNSURE;
  }
}

function view(reader: Reader): DataView {
  reader.view ??= new DataView(reader.buf.buffer, reader.buf.byteOffset, reader.buf.byteLength);
  return reader.view;
}

function double(reader: Reader): number {
  const pos = reader.pos;
  if (pos + 8 > reader.buf.length) throw UNSURE;
  reader.pos = pos + 8;
  return view(reader).getFloat64(pos, true);
}

/** A scalar's value reader and wire type, or undefined for a kind this leaves to protobuf-es. */
function scalarReader(
  type: ScalarType,
  validate: boolean,
): { value: (reader: Reader) => unknown; wire: WireType } | undefined {
  switch (type) {
    case ScalarType.STRING:
      return { value: (r) => text(r, validate), wire: WireType.LengthDelimited };
    case ScalarType.BYTES:
      return { value: delimited, wire: WireType.LengthDelimited };
    case ScalarType.BOOL:
      return {
        value: (r) => {
          const b = r.buf[r.pos];
          // Canonical bools only: one byte, 0 or 1.
          if (b !== 0 && b !== 1) throw UNSURE;
          r.pos++;
          return b === 1;
        },
        wire: WireType.Varint,
      };
    case ScalarType.DOUBLE:
      return { value: double, wire: WireType.Bit64 };
    case ScalarType.INT32:
    case ScalarType.UINT32:
      // A negative int32 is a ten-byte varint: left to protobuf-es, like anything of 2^28 or more.
      return { value: varint32, wire: WireType.Varint };
    case ScalarType.INT64:
    case ScalarType.UINT64:
      return { value: varint63, wire: WireType.Varint };
  }
  return undefined;
}

/** How to read one field, or undefined for a field kind this decoder leaves to protobuf-es. */
function fieldReader(field: DescField): { read: FieldRead; wire: WireType; once: boolean } | undefined {
  const name = field.localName;
  const oneof = field.oneof?.localName;
  const put = oneof
    ? (message: Record<string, unknown>, value: unknown) => {
        message[oneof] = { case: name, value };
      }
    : (message: Record<string, unknown>, value: unknown) => {
        message[name] = value;
      };
  switch (field.fieldKind) {
    case "scalar": {
      const scalar = scalarReader(field.scalar, field.utf8Validation === true);
      if (scalar === undefined) return undefined;
      const value = scalar.value;
      return { read: (r, m) => put(m, value(r)), wire: scalar.wire, once: false };
    }
    case "enum":
      // A closed enum keeps unknown numbers as unknown fields: left to protobuf-es.
      if (!field.enum.open) return undefined;
      return { read: (r, m) => put(m, varint32(r)), wire: WireType.Varint, once: false };
    case "message": {
      if (field.delimitedEncoding || isWrapperName(field.message.typeName)) return undefined;
      const value = messageValueReader(field);
      if (value === undefined) return undefined;
      return { read: (r, m, depth) => put(m, value(r, depth)), wire: WireType.LengthDelimited, once: true };
    }
    case "list": {
      if (field.listKind !== "message" || field.delimitedEncoding) return undefined;
      const value = messageValueReader(field);
      if (value === undefined) return undefined;
      return {
        read: (r, m, depth) => {
          (m[name] as unknown[]).push(value(r, depth));
        },
        wire: WireType.LengthDelimited,
        once: false,
      };
    }
    case "map": {
      if (field.mapKey !== ScalarType.STRING || field.mapKind !== "message") return undefined;
      const plan = planOf(field.message);
      if (plan === undefined) return undefined;
      const message = field.message;
      const validate = field.utf8Validation === true;
      return {
        read: (r, m, depth) => {
          const end = endOf(r);
          if (end > r.buf.length) throw UNSURE;
          // Key first, then value, once each: any other entry is left to protobuf-es.
          let key = "";
          let value: Record<string, unknown> | undefined;
          if (r.pos < end && r.buf[r.pos] === 0x0a) {
            r.pos++;
            key = text(r, validate);
          }
          if (r.pos < end && r.buf[r.pos] === 0x12) {
            r.pos++;
            const valueEnd = endOf(r);
            value = create(message) as unknown as Record<string, unknown>;
            readFields(plan, r, value, valueEnd, depth + 1);
            if (r.pos !== valueEnd) throw UNSURE;
          }
          if (r.pos !== end || key === "__proto__") throw UNSURE;
          (m[name] as Record<string, unknown>)[key] = value ?? create(message);
        },
        wire: WireType.LengthDelimited,
        once: false,
      };
    }
  }
  return undefined;
}

/**
 * Reads one value of a message-typed field. A Struct outside
 * google.protobuf.Value is a plain JSON object in protobuf-es, and is read
 * into one directly.
 */
function messageValueReader(
  field: DescField & { message: DescMessage },
): ((reader: Reader, depth: number) => unknown) | undefined {
  if (field.message.typeName === "google.protobuf.Struct" && field.parent.typeName !== "google.protobuf.Value") {
    return (r, depth) => {
      return readStructJson(r, endOf(r), depth + 1);
    };
  }
  const plan = planOf(field.message);
  if (plan === undefined) return undefined;
  const message = field.message;
  return (r, depth) => {
    const end = endOf(r);
    const value = create(message) as unknown as Record<string, unknown>;
    readFields(plan, r, value, end, depth + 1);
    return value;
  };
}

/** A Struct's entries (field 1: key = 1, value = 2) as a JSON object, as protobuf-es makes one. */
function readStructJson(r: Reader, end: number, depth: number): Record<string, unknown> {
  if (depth > MAX_DEPTH || end > r.buf.length) throw UNSURE;
  const json: Record<string, unknown> = {};
  while (r.pos < end) {
    if (r.buf[r.pos] !== 0x0a) throw UNSURE;
    r.pos++;
    const entryEnd = endOf(r);
    if (entryEnd > end) throw UNSURE;
    let key = "";
    let value: unknown = null;
    if (r.pos < entryEnd && r.buf[r.pos] === 0x0a) {
      r.pos++;
      key = text(r, true);
    }
    if (r.pos < entryEnd && r.buf[r.pos] === 0x12) {
      r.pos++;
      const valueEnd = endOf(r);
      value = readValueJson(r, valueEnd, depth + 1);
    }
    // protobuf-es assigns each key to a plain object, where __proto__ would set the prototype.
    if (r.pos !== entryEnd || key === "__proto__") throw UNSURE;
    json[key] = value;
  }
  if (r.pos !== end) throw UNSURE;
  return json;
}

/** A google.protobuf.Value's content as JSON: one kind (null when none), as protobuf-es reads it. */
function readValueJson(r: Reader, end: number, depth: number): unknown {
  if (depth > MAX_DEPTH || end > r.buf.length) throw UNSURE;
  let value: unknown = null;
  let kinds = 0;
  while (r.pos < end) {
    const tag = r.buf[r.pos++];
    kinds++;
    switch (tag) {
      case 0x08: // null_value
        if (r.buf[r.pos++] !== 0) throw UNSURE;
        value = null;
        break;
      case 0x11: // number_value
        value = double(r);
        break;
      case 0x1a: // string_value
        value = text(r, true);
        break;
      case 0x20: {
        // bool_value
        const b = r.buf[r.pos++];
        if (b !== 0 && b !== 1) throw UNSURE;
        value = b === 1;
        break;
      }
      case 0x2a: // struct_value
        value = readStructJson(r, endOf(r), depth + 1);
        break;
      case 0x32: {
        // list_value: repeated Value values = 1
        const listEnd = endOf(r);
        if (listEnd > end) throw UNSURE;
        const list: unknown[] = [];
        while (r.pos < listEnd) {
          if (r.buf[r.pos++] !== 0x0a) throw UNSURE;
          const itemEnd = endOf(r);
          list.push(readValueJson(r, itemEnd, depth + 1));
        }
        if (r.pos !== listEnd) throw UNSURE;
        value = list;
        break;
      }
      default:
        throw UNSURE;
    }
    // Two kinds in one Value: the last wins in protobuf-es, but a message kind would merge; left to it.
    if (kinds > 1) throw UNSURE;
  }
  if (r.pos !== end) throw UNSURE;
  return value;
}
