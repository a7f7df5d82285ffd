import type { JsonValue } from "@bufbuild/protobuf";
import type { Entity, Event } from "@stategate/api";

/**
 * Exact sizes of messages in the binary protobuf encoding, computed without
 * encoding them (protobuf-es takes seconds to encode a large Struct). This is
 * the size gRPC clients receive and limit (4 MiB by default), and the unit of
 * STATEGATE_MAX_REQUEST_BYTES for binary requests. JSON encodings of the same
 * message differ, usually by little: arrays of small numbers are smaller in
 * JSON, strings full of escaped characters larger.
 *
 * Every field number here is below 16, so each tag takes one byte.
 */

/** Bytes of a varint: an unsigned length, or an int64 (negative ones take ten). */
export function varintSize(n: number | bigint): number {
  let v = BigInt(n);
  if (v < 0n) return 10;
  let size = 1;
  while (v >= 0x80n) {
    v >>= 7n;
    size++;
  }
  return size;
}

/** Bytes of a length-delimited field (tag, length, payload) whose payload has `n` bytes. */
function delimited(n: number): number {
  return 1 + varintSize(n) + n;
}

/** Bytes of a string field's payload (UTF-8; unpaired surrogates become U+FFFD, 3 bytes, as TextEncoder does). */
function utf8(s: string): number {
  return Buffer.byteLength(s, "utf8");
}

/** A google.protobuf.Value holding `v` (its kind is a oneof: always written, even null, false and ""). */
export function valueSize(v: JsonValue): number {
  if (v === null) return 2; // null_value = 1, varint 0
  switch (typeof v) {
    case "number":
      return 9; // number_value = 2, fixed64
    case "boolean":
      return 2; // bool_value = 4, varint
    case "string":
      return delimited(utf8(v)); // string_value = 3
    default:
      // struct_value = 5, list_value = 6
      return delimited(Array.isArray(v) ? listSize(v) : structSize(v as { [k: string]: JsonValue }));
  }
}

/** A google.protobuf.ListValue: repeated Value values = 1. */
function listSize(list: JsonValue[]): number {
  let size = 0;
  for (const item of list) size += delimited(valueSize(item));
  return size;
}

/** A google.protobuf.Struct: map<string, Value> fields = 1, each entry a message {key = 1, value = 2}. */
export function structSize(object: { [k: string]: JsonValue }): number {
  let size = 0;
  for (const [key, value] of Object.entries(object)) {
    if (value === undefined) continue;
    size += delimited(delimited(utf8(key)) + delimited(valueSize(value)));
  }
  return size;
}

/** A proto3 string field: left out when empty. */
function stringField(s: string): number {
  return s === "" ? 0 : delimited(utf8(s));
}

/** A proto3 int64 or enum field: left out when zero. */
function intField(n: number | bigint): number {
  return BigInt(n) === 0n ? 0 : 1 + varintSize(n);
}

/** A stategate.v1.Entity. */
export function entitySize(entity: Entity): number {
  return (
    stringField(entity.domain) +
    stringField(entity.type) +
    stringField(entity.key) +
    (entity.values === undefined ? 0 : delimited(structSize(entity.values))) +
    intField(entity.version)
  );
}

/** A stategate.v1.Event. */
export function eventSize(event: Event): number {
  return (
    stringField(event.id) +
    (event.entity === undefined ? 0 : delimited(entitySize(event.entity))) +
    stringField(event.method) +
    (event.claims === undefined ? 0 : delimited(structSize(event.claims))) +
    intField(event.time) +
    intField(event.version) +
    intField(event.position) +
    intField(event.operation)
  );
}

/** A message field (or one element of a repeated one) holding a message of `n` bytes. */
export function fieldSize(n: number): number {
  return delimited(n);
}
